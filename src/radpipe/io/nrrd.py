"""NRRD through pynrrd: LPS space with per-axis space directions, as 3D Slicer writes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from radpipe.errors import FormatError, ReadError
from radpipe.io.atomic import atomic_path
from radpipe.volume import Volume, VolumeMeta

_SPACE_SIGNS = {
    "left-posterior-superior": (1.0, 1.0, 1.0),
    "LPS": (1.0, 1.0, 1.0),
    "right-anterior-superior": (-1.0, -1.0, 1.0),
    "RAS": (-1.0, -1.0, 1.0),
    "left-anterior-superior": (1.0, -1.0, 1.0),
    "LAS": (1.0, -1.0, 1.0),
}


def read_nrrd(path: str | Path) -> Volume:
    """Read a 3-D (or 3-D + one non-spatial axis) NRRD image into LPS.

    Raises
    ------
    ReadError
        If the file cannot be parsed or has no 3 spatial axes.
    """
    import nrrd

    name = str(path)
    try:
        data, header = nrrd.read(name, index_order="C")
    except FileNotFoundError as exc:
        raise ReadError(f"{name}: no such file") from exc
    except (nrrd.NRRDError, OSError, ValueError, KeyError, TypeError, StopIteration) as exc:
        raise ReadError(
            f"{name}: cannot read as NRRD ({type(exc).__name__}: {exc or 'empty file'})"
        ) from None
    directions = header.get("space directions")
    space = header.get("space", "left-posterior-superior")
    if space not in _SPACE_SIGNS:
        raise ReadError(f"{name}: NRRD space {space!r} is not a patient space radpipe knows")
    signs = np.array(_SPACE_SIGNS[space])
    # In C order the array axes are the file's axes reversed.
    file_axes = list(range(data.ndim))[::-1]
    spatial: list[int] = []
    vectors: list[Any] = []
    if directions is None:
        directions = [np.eye(3)[a] for a in range(min(3, data.ndim))]
    for file_axis, vector in enumerate(directions):
        if vector is not None and not np.all(np.isnan(np.asarray(vector, dtype=float))):
            spatial.append(file_axis)
            vectors.append(np.asarray(vector, dtype=np.float64) * signs)
    if len(spatial) != 3 or data.ndim not in (3, 4):
        raise ReadError(f"{name}: expected 3 spatial axes, found {len(spatial)} in {data.ndim}-D")
    array_axes = [file_axes.index(a) for a in spatial]  # C-order axis of each spatial file axis
    order = array_axes[::-1] + [a for a in range(data.ndim) if a not in array_axes]
    array = np.ascontiguousarray(np.transpose(data, order))
    affine = np.eye(4)
    for column, vector in enumerate(vectors[::-1]):
        affine[:3, column] = vector
    origin = header.get("space origin")
    if origin is not None:
        affine[:3, 3] = np.asarray(origin, dtype=np.float64) * signs
    meta = VolumeMeta(
        source_format="NRRD",
        source_files=(name,),
        extra_axis="channel" if data.ndim == 4 else None,
        header=header,
    )
    return Volume(array, affine, meta=meta)


def write_nrrd(
    volume: Volume, path: str | Path, *, overwrite: bool = False, compress: bool = True
) -> Path:
    """Write ``volume`` as NRRD in left-posterior-superior space (gzip-compressed by default)."""
    import nrrd

    target = Path(path)
    if not target.name.lower().endswith(".nrrd"):
        raise FormatError(f"{target}: an NRRD file name must end in .nrrd")
    # In C order pynrrd lists axes fastest first: a trailing array axis comes first in the file.
    directions: list[Any] = [volume.affine[:3, column].tolist() for column in (2, 1, 0)]
    kinds = ["domain", "domain", "domain"]
    if volume.array.ndim == 4:
        directions.insert(0, None)
        kinds.insert(0, "vector" if volume.meta.extra_axis in ("rgb", "channel") else "list")
    header = {
        "space": "left-posterior-superior",
        "space directions": directions,
        "space origin": volume.affine[:3, 3].tolist(),
        "kinds": kinds,
        "encoding": "gzip" if compress else "raw",
    }
    with atomic_path(target, overwrite=overwrite) as temporary:
        nrrd.write(str(temporary), np.ascontiguousarray(volume.array), header, index_order="C")
    return target
