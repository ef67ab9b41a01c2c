"""Slices and camera poses for 3D-reconstruction models: numbered PNGs plus a nerfstudio /
instant-ngp ``transforms.json`` whose cameras sit at the slices' real positions."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radpipe.errors import FormatError, GeometryError
from radpipe.io.atomic import (
    atomic_folder,
    check_folder_replaceable,
    guard_output,
    inputs_of,
)
from radpipe.volume import Volume
from radpipe.windowing import Normalization, Window, apply_window, auto_window

#: Default camera translation per millimetre (1 mm → 0.001 units, as the original converter).
DEFAULT_SCALE = 0.001


#: The intensity mappings a slice export offers.
EXPORT_NORMALIZATIONS = (Normalization.MINMAX, Normalization.WINDOW, Normalization.PERCENTILE)


@dataclass(frozen=True)
class SliceStack:
    """Display-ready slices and the world geometry of their pixels.

    Attributes
    ----------
    values : (N, H, W) array
        Slice n is ``values[n]``; rows go down the image, columns to the right.
    affine : (4, 4) float64
        Maps ``(n, row, column, 1)`` to LPS mm.
    """

    values: NDArray[Any]
    affine: NDArray[np.float64]


def slice_stack(
    volume: Volume, *, plane: str | None = "axial", axis: int | None = None
) -> SliceStack:
    """The volume cut into slices: by patient ``plane`` (radiological display) or by ``axis``
    of the stored array (no reorientation).

    Raises
    ------
    GeometryError
        A 2-D image (one slice, no volume), a colour volume, or an axis other than 0, 1, 2.
    """
    from radpipe import geometry
    from radpipe.render import Plane, canonical

    volume.require_grey("a NeRF export")
    if volume.array.ndim != 3:
        raise GeometryError(
            f"{volume.source_name}: a NeRF export needs a grey (S, R, C) volume, got shape "
            f"{volume.shape}"
        )
    if min(volume.spatial_shape) < 2 and axis is None:
        raise GeometryError(f"shape {volume.spatial_shape} is a 2-D image, not a volume")
    if axis is not None:
        if axis not in (0, 1, 2):
            raise GeometryError(f"--axis must be 0, 1 or 2 (array order), got {axis}")
        order = {0: (0, 1, 2), 1: (1, 0, 2), 2: (2, 0, 1)}[axis]
        data = np.transpose(volume.array, order)
        affine = volume.affine.copy()
        affine[:, :3] = volume.affine[:, list(order)]
        if data.shape[0] < 2:
            raise GeometryError(f"axis {axis} has a single slice; nothing to stack")
        return SliceStack(data, affine)
    chosen = Plane(plane or "axial")
    shown = canonical(volume)
    array, base = shown.array, shown.affine
    s, r, c = array.shape
    if chosen is Plane.AXIAL:
        data, mapping = array, np.eye(4)
    elif chosen is Plane.CORONAL:
        # display slice j: rows = k reversed (head up), columns = i
        data = np.transpose(array[::-1], (1, 0, 2))
        mapping = np.array([[0, -1, 0, s - 1], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], float)
    else:
        # display slice i: rows = k reversed, columns = j (anterior on the left)
        data = np.transpose(array[::-1], (2, 0, 1))
        mapping = np.array([[0, -1, 0, s - 1], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], float)
    del r, c
    return SliceStack(np.ascontiguousarray(data), geometry.check_affine(base @ mapping))


def to_grey_levels(
    values: NDArray[Any],
    *,
    mode: Normalization | str = Normalization.MINMAX,
    window: Window | None = None,
    percentiles: tuple[float, float] = (1.0, 99.0),
    bit_depth: int = 8,
) -> tuple[NDArray[Any], tuple[float, float]]:
    """Whole-volume intensity mapping to 8- or 16-bit grey; returns the levels and range used."""
    chosen = Normalization.choose(mode, EXPORT_NORMALIZATIONS, option="--normalization")
    if bit_depth not in (8, 16):
        raise FormatError(f"--bit-depth must be 8 or 16, got {bit_depth}")
    if chosen is Normalization.WINDOW:
        if window is None:
            raise FormatError(
                "--normalization window needs --window or --window-center/--window-width"
            )
        low, high = window.low, window.high
    elif chosen is Normalization.PERCENTILE:
        auto = auto_window(values, percentiles=percentiles)
        low, high = auto.low, auto.high
    else:
        low, high = float(values.min()), float(values.max())
    if high <= low:
        high = low + 1.0
    if bit_depth == 8:
        levels = apply_window(values, Window((low + high) / 2, high - low))
    else:
        scaled = (values.astype(np.float32) - np.float32(low)) * np.float32(65535.0 / (high - low))
        levels = np.rint(np.clip(scaled, 0, 65535)).astype(np.uint16)
    return levels, (low, high)


def camera_to_world(
    affine: NDArray[np.float64],
    index: float,
    shape: tuple[int, int],
    centre: NDArray[np.float64],
    scale: float,
) -> NDArray[np.float64]:
    """OpenGL camera-to-world matrix of slice ``index``: +X along the image's columns, +Y up the
    image (against its rows), looking down −Z through the slice; placed at the slice centre."""
    rows, columns = shape
    column_direction = affine[:3, 2] / np.linalg.norm(affine[:3, 2])
    row_direction = affine[:3, 1] / np.linalg.norm(affine[:3, 1])
    x_axis = column_direction
    y_axis = -row_direction
    y_axis = y_axis - np.dot(y_axis, x_axis) * x_axis
    y_axis /= np.linalg.norm(y_axis)
    z_axis = np.cross(x_axis, y_axis)
    position = affine[:3, :3] @ np.array([index, (rows - 1) / 2, (columns - 1) / 2]) + affine[:3, 3]
    matrix = np.eye(4)
    matrix[:3, 0], matrix[:3, 1], matrix[:3, 2] = x_axis, y_axis, z_axis
    matrix[:3, 3] = (position - centre) * scale
    return matrix


@dataclass
class NerfExport:
    """What an export wrote, for the printed summary."""

    folder: Path
    volume_shape: tuple[int, ...]
    spacing_mm: tuple[float, float, float]
    slice_spacing_mm: float
    original_range: tuple[float, float]
    normalized_range: tuple[int, int]
    image_shape: tuple[int, int]
    focal_length: float
    principal_point: tuple[float, float]
    z_step: float
    files: list[str] = field(default_factory=list)


_SHARED: dict[str, Any] = {}


def _encode_chunk(job: tuple[str, list[tuple[int, str]]]) -> int:
    from PIL import Image

    token, items = job
    levels = _SHARED[token]
    for index, path in items:
        # uint8 → mode L, uint16 → mode I;16 (16-bit grey PNG)
        Image.fromarray(np.ascontiguousarray(levels[index])).save(
            path, format="PNG", compress_level=1
        )
    return len(items)


def export_nerf(
    volume: Volume,
    folder: str | Path,
    *,
    plane: str | None = "axial",
    axis: int | None = None,
    mode: Normalization | str = Normalization.MINMAX,
    window: Window | None = None,
    bit_depth: int = 8,
    focal_length: float | None = None,
    scale: float = DEFAULT_SCALE,
    selection: tuple[int | None, int | None] = (None, None),
    every: int = 1,
    split: tuple[float, float, float] | None = None,
    camera_model: str = "OPENCV",
    overwrite: bool = False,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> NerfExport:
    """Write ``001.png`` … and ``transforms.json`` for a volume into ``folder`` (atomically).

    Camera k sits at the centre of slice k in patient coordinates, minus the volume's centre,
    times ``scale``; consecutive cameras are one slice spacing × scale apart.
    """
    from radpipe.parallel import default_workers, run_map

    if every < 1:
        raise FormatError(f"--every must be at least 1, got {every}")
    if not (math.isfinite(scale) and scale > 0):
        raise FormatError(f"--scale must be a positive number of scene units per mm, got {scale}")
    if focal_length is not None and not (math.isfinite(focal_length) and focal_length > 0):
        raise FormatError(f"--focal-length must be a positive number of pixels, got {focal_length}")
    target = Path(folder)
    guard_output(target, **inputs_of(volume))
    check_folder_replaceable(target, overwrite=overwrite)
    stack = slice_stack(volume, plane=plane, axis=axis)
    levels, used_range = to_grey_levels(stack.values, mode=mode, window=window, bit_depth=bit_depth)
    count = levels.shape[0]
    indices = list(range(count))[slice(selection[0], selection[1], every)]
    if not indices:
        raise FormatError(
            f"the slice selection {selection} every {every} keeps no slice of {count}"
        )
    height, width = levels.shape[1:]
    digits = max(3, len(str(len(indices))))
    focal = float(focal_length or width)
    corners = np.array([[0, 0, 0], [count - 1, height - 1, width - 1]], float)
    ends = corners @ stack.affine[:3, :3].T + stack.affine[:3, 3]
    centre = ends.mean(axis=0)
    spacing = float(np.linalg.norm(stack.affine[:3, 0]))
    names = [f"{number:0{digits}d}.png" for number in range(1, len(indices) + 1)]
    frames = []
    for name, index in zip(names, indices, strict=True):
        matrix = camera_to_world(stack.affine, index, (height, width), centre, scale)
        frames.append(
            {"file_path": name, "transform_matrix": matrix.tolist(), "slice_index": index}
        )
    document: dict[str, Any] = {
        "camera_model": camera_model,
        "fl_x": focal,
        "fl_y": focal,
        "cx": width / 2,
        "cy": height / 2,
        "w": width,
        "h": height,
        "camera_angle_x": 2 * math.atan(width / (2 * focal)),
        "camera_angle_y": 2 * math.atan(height / (2 * focal)),
        "frames": frames,
        "radpipe": {
            "units_per_mm": scale,
            "centre_lps_mm": centre.tolist(),
            "slice_affine_lps": stack.affine.tolist(),
            "volume_affine_lps": volume.affine.tolist(),
            "volume_shape": list(volume.shape),
            "spacing_mm": list(volume.spacing),
            "orientation": volume.orientation_code,
            "plane": None if axis is not None else (plane or "axial"),
            "axis": axis,
            "intensity": {
                "mode": str(Normalization.choose(mode, EXPORT_NORMALIZATIONS, option="mode")),
                "range": list(used_range),
                "bit_depth": bit_depth,
            },
            "convention": "OpenGL camera-to-world: +X image right, +Y image up, looks down -Z",
        },
    }
    if split is not None:
        document.update(_split(names, split))

    token = f"nerf-{os.getpid()}-{id(levels)}"
    _SHARED[token] = levels
    try:
        with atomic_folder(target, overwrite=overwrite, **inputs_of(volume)) as temporary:
            parts = max(1, min(workers or default_workers(), len(indices)))
            items = [
                (index, str(temporary / name)) for name, index in zip(names, indices, strict=True)
            ]
            jobs = [(token, items[start::parts]) for start in range(parts)]
            for done in run_map(_encode_chunk, jobs, workers=parts, chunksize=1):
                if progress is not None:
                    progress(done)
            (temporary / "transforms.json").write_text(json.dumps(document, indent=2))
    finally:
        _SHARED.pop(token, None)
    return NerfExport(
        folder=target,
        volume_shape=volume.shape,
        spacing_mm=volume.spacing,
        slice_spacing_mm=spacing,
        original_range=(float(stack.values.min()), float(stack.values.max())),
        normalized_range=(int(levels.min()), int(levels.max())),
        image_shape=(height, width),
        focal_length=focal,
        principal_point=(width / 2, height / 2),
        z_step=spacing * scale * every,
        files=names,
    )


def _split(names: list[str], fractions: tuple[float, float, float]) -> dict[str, list[str]]:
    """Train / val / test file lists, evenly interleaved so each covers the whole volume."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise FormatError(f"--split needs three fractions that add up to 1, got {fractions}")
    count = len(names)
    val = round(count * fractions[1])
    test = round(count * fractions[2])
    spread = np.linspace(0, count - 1, val + test + 2)[1:-1] if val + test else np.empty(0)
    held = list(dict.fromkeys(round(float(p)) for p in spread))
    val_set = set(held[::2][:val]) if test else set(held[:val])
    test_set = set(held) - val_set
    return {
        "train_filenames": [
            n for i, n in enumerate(names) if i not in val_set and i not in test_set
        ],
        "val_filenames": [n for i, n in enumerate(names) if i in val_set],
        "test_filenames": [n for i, n in enumerate(names) if i in test_set],
    }


def export_mvsplat(
    volumes: list[tuple[str, Volume]],
    folder: str | Path,
    *,
    plane: str | None = "axial",
    axis: int | None = None,
    mode: Normalization | str = Normalization.MINMAX,
    window: Window | None = None,
    focal_length: float | None = None,
    scale: float = DEFAULT_SCALE,
    chunk_size: int = 16,
    overwrite: bool = False,
) -> list[Path]:
    """Write volumes in MVSplat's RealEstate10K dataset layout (``*.torch`` chunks + index.json).

    Each volume is one example: ``key``, ``url``, ``timestamps`` (V,) int64, ``cameras``
    (V, 18) float32 — normalised ``fx, fy, cx, cy``, two zeros, then the 3×4 world-to-camera
    matrix row by row in the OpenCV convention (x right, y down, z forward) — and ``images``, a
    list of V uint8 tensors holding encoded PNGs. Needs ``pip install 'radpipe[torch]'``.
    """
    import io

    from PIL import Image

    from radpipe._optional import import_optional

    torch = import_optional("torch", extra="torch")
    target = Path(folder)
    check_folder_replaceable(target, overwrite=overwrite)
    opengl_to_opencv = np.diag([1.0, -1.0, -1.0, 1.0])
    examples = []
    for key, volume in volumes:
        stack = slice_stack(volume, plane=plane, axis=axis)
        levels, _ = to_grey_levels(stack.values, mode=mode, window=window)
        count, height, width = levels.shape
        focal = float(focal_length or width)
        corners = np.array([[0, 0, 0], [count - 1, height - 1, width - 1]], float)
        centre = (corners @ stack.affine[:3, :3].T + stack.affine[:3, 3]).mean(axis=0)
        cameras = np.zeros((count, 18), dtype=np.float32)
        images = []
        for k in range(count):
            camera = (
                camera_to_world(stack.affine, k, (height, width), centre, scale) @ opengl_to_opencv
            )
            world_to_camera = np.linalg.inv(camera)
            cameras[k, :4] = (focal / width, focal / height, 0.5, 0.5)
            cameras[k, 6:] = world_to_camera[:3].reshape(-1)
            buffer = io.BytesIO()
            Image.fromarray(levels[k]).convert("RGB").save(buffer, format="PNG", compress_level=1)
            images.append(torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8))
        examples.append(
            {
                "key": key,
                "url": "",
                "timestamps": torch.arange(count, dtype=torch.int64),
                "cameras": torch.from_numpy(cameras),
                "images": images,
            }
        )
    index: dict[str, str] = {}
    written = []
    sources = [inputs_of(volume) for _, volume in volumes]
    with atomic_folder(
        target,
        overwrite=overwrite,
        inputs=[name for found in sources for name in found["inputs"]],
        input_folders=[name for found in sources for name in found["input_folders"]],
    ) as staging:
        for number, start in enumerate(range(0, len(examples), chunk_size)):
            name = f"{number:06d}.torch"
            chunk = examples[start : start + chunk_size]
            torch.save(chunk, staging / name)
            index.update({example["key"]: name for example in chunk})
            written.append(target / name)
        (staging / "index.json").write_text(json.dumps(index, indent=2))
    return written


def export_nerf_each(
    volumes: Iterable[tuple[str, Volume]],
    output: str | Path,
    *,
    on_export: Callable[[NerfExport], None] | None = None,
    **options: Any,
) -> list[NerfExport]:
    """:func:`export_nerf` for each named volume into ``output/<name>`` (e.g. from
    :func:`radpipe.catalog.patients.image_volumes`), one volume in memory at a time.

    ``options`` are :func:`export_nerf`'s; ``on_export`` is called with each result.
    """
    results = []
    for name, volume in volumes:
        result = export_nerf(volume, Path(output) / name, **options)
        results.append(result)
        if on_export is not None:
            on_export(result)
    return results
