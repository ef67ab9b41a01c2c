"""NIfTI, Analyze and MINC through nibabel: RAS (i, j, k) on disk, LPS (k, j, i) in radpipe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from radpipe.errors import FormatError, ReadError
from radpipe.io.atomic import atomic_path
from radpipe.volume import Volume, VolumeMeta


def read_nifti(path: str | Path) -> Volume:
    """Read a NIfTI-1/2, Analyze 7.5, MINC 1/2 or MGH image.

    Returns
    -------
    Volume
        Axes reversed to (slice, row, column) and the affine converted to LPS; 4-D data keeps
        its fourth axis; header scaling applied (float32 unless identity on integers).
    """
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    name = str(path)
    try:
        image = nib.load(name)
        _check_size(image, name)
        kind = type(image).__name__.replace("Image", "")
        meta = VolumeMeta(source_format=kind, source_files=(name,), header=image.header)
        volume = Volume.from_nibabel(image, meta=meta)
    except FileNotFoundError as exc:
        raise ReadError(f"{name}: no such file") from exc
    except (ImageFileError, OSError, EOFError, ValueError) as exc:
        raise ReadError(f"{name}: cannot read as NIfTI / Analyze / MINC ({exc})") from exc
    if volume.array.ndim == 4:
        volume = Volume(volume.array, volume.affine, meta=meta.replace(extra_axis="time"))
    return volume


#: Largest image radpipe decodes into memory (bytes): larger headers are refused up front.
MAX_ARRAY_BYTES = 16 * 1024**3


def _check_size(image: Any, name: str) -> None:
    """Refuse dimensions that are not positive, or that the file cannot hold, before any data
    is read (a damaged or hostile header must not allocate gigabytes)."""
    import os

    shape = tuple(int(n) for n in image.shape)
    if not shape or min(shape) <= 0:
        raise ReadError(f"{name}: the header gives dimensions {list(shape)}; they must be positive")
    dtype = np.dtype(image.get_data_dtype())
    needed = int(np.prod(shape, dtype=np.float64) * dtype.itemsize)
    if needed > MAX_ARRAY_BYTES:
        raise ReadError(
            f"{name}: the header gives {list(shape)} {dtype} voxels ({needed / 1024**3:.0f} GiB), "
            f"more than radpipe reads ({MAX_ARRAY_BYTES // 1024**3} GiB); the header is damaged"
        )
    offset = int(getattr(image.dataobj, "offset", 0) or 0)
    size = os.path.getsize(name)
    if name.lower().endswith(".gz"):
        return  # a truncated stream fails while decompressing, with a ReadError
    if hasattr(image.dataobj, "offset") and offset + needed > size:
        raise ReadError(
            f"{name}: the header announces {list(shape)} {dtype} voxels ({needed} bytes) but "
            f"the file holds {max(0, size - offset)}; it is truncated or the header is wrong"
        )


def write_nifti(volume: Volume, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``volume`` as NIfTI-1 (``.nii`` or ``.nii.gz``) with sform = qform, code scanner.

    Raises
    ------
    FormatError
        If the path does not end in ``.nii`` or ``.nii.gz``.
    """
    target = Path(path)
    if not str(target).lower().endswith((".nii", ".nii.gz")):
        raise FormatError(f"{target}: a NIfTI file name must end in .nii or .nii.gz")
    image = volume.to_nibabel()
    header: Any = image.header
    header.set_xyzt_units("mm", "sec")
    if volume.meta.series_description:
        header["descrip"] = volume.meta.series_description.encode()[:79]
    if np.issubdtype(volume.dtype, np.floating):
        image.set_data_dtype(np.float32)
    with atomic_path(target, overwrite=overwrite) as temporary:
        image.to_filename(str(temporary))
    return target
