"""Slices and camera poses for 3D-reconstruction models: numbered PNGs plus a nerfstudio /
instant-ngp ``transforms.json`` whose cameras sit at the slices' real positions."""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radpipe.errors import FormatError, GeometryError, RadpipeWarning
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

#: ``VolumeMeta.source_format`` prefixes of the readers whose files store voxels as (i, j, k),
#: i fastest, and hand radpipe the array (k, j, i): nibabel's (NIfTI, Analyze, MINC, MGH),
#: NRRD and MetaImage. ``--axis`` counts those files' own axes.
FILE_AXIS_FORMATS = {
    "Nifti": "NIfTI",
    "Analyze": "Analyze",
    "Spm": "Analyze",
    "Minc": "MINC",
    "MGH": "MGH",
    "NRRD": "NRRD",
    "MetaImage": "MetaImage",
}

#: Pixel-aspect tolerance under which fl_y is written equal to fl_x.
SQUARE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class SliceStack:
    """Display-ready slices and the world geometry of their pixels.

    Attributes
    ----------
    values : (N, H, W) array
        Slice n is ``values[n]``; rows go down the image, columns to the right.
    affine : (4, 4) float64
        Maps ``(n, row, column, 1)`` to LPS mm.
    array_axis : int or None
        The volume's array axis (0 slice, 1 row, 2 column) the slices are taken along; None for a
        patient plane of the reoriented volume.
    axis_meaning : str
        What the slicing axis is, in words (recorded in ``transforms.json``).
    """

    values: NDArray[Any]
    affine: NDArray[np.float64]
    array_axis: int | None = None
    axis_meaning: str = ""

    @property
    def pixel_spacing_mm(self) -> tuple[float, float]:
        """(row, column) spacing of the frames' pixels in mm: pixel height, pixel width."""
        return (
            float(np.linalg.norm(self.affine[:3, 1])),
            float(np.linalg.norm(self.affine[:3, 2])),
        )

    @property
    def slice_spacing_mm(self) -> float:
        """Distance between consecutive slices in mm."""
        return float(np.linalg.norm(self.affine[:3, 0]))


def file_axis_format(volume: Volume) -> str | None:
    """The name of the voxel-file format (``"NIfTI"``, ``"NRRD"``, …) whose own (i, j, k) axes
    ``--axis`` counts for this volume, or None where it counts the array's (slice, row, column)
    (DICOM series, the phantom, volumes built in Python)."""
    kind = volume.meta.source_format or ""
    return next(
        (name for prefix, name in FILE_AXIS_FORMATS.items() if kind.startswith(prefix)), None
    )


def array_axis_of(volume: Volume, axis: int) -> tuple[int, str]:
    """The array axis that ``--axis axis`` names, and what it means in words.

    For a volume read from a NIfTI (or another (i, j, k) voxel file, see
    :func:`file_axis_format`) ``axis`` 0, 1, 2 is the file's own i, j, k, as in the original
    NIfTI-to-NeRF converter: 2 is the axial slices of a usual axial NIfTI. The reader reverses the
    axes (array axis 0 = k, 1 = j, 2 = i); where the volume has since been reoriented, the array
    axis that runs along the file's axis in the world is found from the file's header. For any
    other volume (DICOM) ``axis`` is the array's own axis: 0 slice, 1 row, 2 column.

    Raises
    ------
    GeometryError
        ``axis`` is not 0, 1 or 2, or no array axis of a resampled volume follows the file's axis.

    Examples
    --------
    >>> from radpipe.phantom import make_phantom
    >>> array_axis_of(make_phantom(shape=(8, 16, 12), tumours=0).ct, 2)
    (2, 'array axis 2 (column) of the (slice, row, column) volume')
    """
    from radpipe import geometry

    kind = file_axis_format(volume)
    if axis not in (0, 1, 2):
        order = "the file's i, j, k" if kind else "the array's slice, row, column"
        raise GeometryError(
            f"{volume.source_name}: --axis must be 0, 1 or 2 ({order}), got {axis}; "
            f"or use --plane axial|coronal|sagittal"
        )
    if kind is None:
        name = ("slice", "row", "column")[axis]
        return axis, f"array axis {axis} ({name}) of the (slice, row, column) volume"
    letter = "ijk"[axis]
    meaning = f"{kind} voxel axis {letter} (--axis 0, 1, 2 = the file's i, j, k)"
    best_affine = getattr(volume.meta.header, "get_best_affine", None)
    if best_affine is None:
        return 2 - axis, meaning
    file_affine = geometry.affine_from_ras_ijk(best_affine())  # columns: the file's k, j, i
    wanted = file_affine[:3, 2 - axis] / np.linalg.norm(file_affine[:3, 2 - axis])
    directions = volume.affine[:3, :3] / np.linalg.norm(volume.affine[:3, :3], axis=0)
    cosines = np.abs(wanted @ directions)
    chosen = int(np.argmax(cosines))
    if cosines[chosen] < 1 - 1e-4:
        raise GeometryError(
            f"{volume.source_name}: --axis {axis} is the {kind} file's {letter} axis, but the "
            f"volume was resampled since it was read and no array axis runs along it; pass the "
            f"volume as read, or use --plane"
        )
    return chosen, meaning


def slice_stack(
    volume: Volume, *, plane: str | None = "axial", axis: int | None = None
) -> SliceStack:
    """The volume cut into slices: by patient ``plane`` (radiological display) or by ``axis``.

    Parameters
    ----------
    volume : Volume
        A grey (S, R, C) volume.
    plane : {"axial", "coronal", "sagittal"}
        Used when ``axis`` is None: the LPS-canonical volume shown as radiologists do (axial
        ``array[k]``, coronal ``array[::-1, j]``, sagittal ``array[::-1, :, i]``).
    axis : {0, 1, 2}, optional
        Slices along an axis of the input without reorientation (see :func:`array_axis_of`):
        the NIfTI file's i, j, k for a NIfTI, the array's slice, row, column for DICOM. A frame's
        rows and columns are the two remaining array axes in order, so for a NIfTI frame n of
        ``axis`` a is ``np.take(data, n, axis=a).T`` of nibabel's data array (rows along the
        later remaining file axis, columns along the earlier: rows j, columns i for axis 2).

    Returns
    -------
    SliceStack
        (N, H, W) values and the (n, row, column) → LPS mm affine.

    Raises
    ------
    GeometryError
        A 2-D image (one slice, no volume), a colour volume, or an axis other than 0, 1, 2.

    Examples
    --------
    >>> from radpipe.phantom import make_phantom
    >>> ct = make_phantom(shape=(8, 16, 12), tumours=0).ct
    >>> slice_stack(ct, plane="coronal").values.shape
    (16, 8, 12)
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
        raise GeometryError(
            f"{volume.source_name}: shape {volume.spatial_shape} is a 2-D image, not a volume; "
            f"a NeRF export needs a series of slices"
        )
    if axis is not None:
        array_axis, meaning = array_axis_of(volume, axis)
        order = {0: (0, 1, 2), 1: (1, 0, 2), 2: (2, 0, 1)}[array_axis]
        data = np.transpose(volume.array, order)
        affine = volume.affine.copy()
        affine[:, :3] = volume.affine[:, list(order)]
        if data.shape[0] < 2:
            raise GeometryError(
                f"{volume.source_name}: --axis {axis} ({meaning}) has a single slice; nothing "
                f"to stack; choose another --axis"
            )
        return SliceStack(data, affine, array_axis, meaning)
    chosen = Plane(plane or "axial")
    shown = canonical(volume)
    array, base = shown.array, shown.affine
    s = array.shape[0]
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
    meaning = f"{chosen.value} plane of the LPS-canonical volume (radiological display)"
    return SliceStack(
        np.ascontiguousarray(data), geometry.check_affine(base @ mapping), None, meaning
    )


def square_pixels(stack: SliceStack) -> SliceStack:
    """The stack with every frame resampled (linear, SimpleITK) to square pixels of the finer
    in-plane spacing, so that one focal length in pixels holds for both image axes.

    The pixel size becomes exactly the finer of the row and column spacing; the coarser axis
    gets ``round(size × coarse / fine)`` pixels centred on the same point, so each frame keeps
    its centre and its physical extent to within half a pixel, and samples beyond the outer
    pixel centres take the edge value. A stack whose frame size would not change is returned as
    it is.

    Parameters
    ----------
    stack : SliceStack
        (N, H, W) values with (row, column) spacing ``stack.pixel_spacing_mm``.

    Returns
    -------
    SliceStack
        (N, H', W') float32 values (the input's own values when nothing changes) and the affine
        of the new pixels.

    Examples
    --------
    >>> from radpipe.phantom import make_phantom
    >>> ct = make_phantom(shape=(8, 16, 12), spacing=(3.0, 1.0, 1.0), tumours=0).ct
    >>> square = square_pixels(slice_stack(ct, plane="coronal"))
    >>> square.values.shape, square.pixel_spacing_mm
    ((16, 24, 12), (1.0, 1.0))
    """
    import SimpleITK as sitk

    rows_mm, columns_mm = stack.pixel_spacing_mm
    finest = min(rows_mm, columns_mm)
    count, height, width = stack.values.shape
    new_height = max(1, round(height * rows_mm / finest))
    new_width = max(1, round(width * columns_mm / finest))
    if (new_height, new_width) == (height, width):
        return stack
    # output pixel o samples input index (o - (new - 1) / 2) * step + (old - 1) / 2
    row_step, column_step = finest / rows_mm, finest / columns_mm
    row_start = (height - 1) / 2 - row_step * (new_height - 1) / 2
    column_start = (width - 1) / 2 - column_step * (new_width - 1) / 2
    image = sitk.GetImageFromArray(np.ascontiguousarray(stack.values, dtype=np.float32))
    resampler = sitk.ResampleImageFilter()
    resampler.SetSize((new_width, new_height, count))  # SimpleITK: x = column, y = row, z = n
    resampler.SetOutputOrigin((column_start, row_start, 0.0))
    resampler.SetOutputSpacing((column_step, row_step, 1.0))
    resampler.SetInterpolator(sitk.sitkLinear)
    resampler.SetOutputPixelType(sitk.sitkFloat32)
    resampler.SetUseNearestNeighborExtrapolator(True)
    values = sitk.GetArrayFromImage(resampler.Execute(image))
    affine = stack.affine.copy()
    affine[:3, 1] = stack.affine[:3, 1] * row_step
    affine[:3, 2] = stack.affine[:3, 2] * column_step
    affine[:3, 3] = stack.affine[:3, :3] @ np.array([0.0, row_start, column_start]) + affine[:3, 3]
    return replace(stack, values=values, affine=affine)


def input_axes(volume: Volume) -> tuple[str, tuple[int, ...], tuple[float, ...]]:
    """The order ``--axis`` counts in for this volume, and its shape and spacing (mm) in that
    order, as the input's own tools show them: ``("i, j, k", (512, 512, 28), (0.45, 0.45, 5.0))``
    for a NIfTI (from its header where radpipe kept it), ``("slice, row, column", …)`` otherwise.
    """
    if file_axis_format(volume) is None:
        return "slice, row, column", volume.spatial_shape, volume.spacing
    header = volume.meta.header
    if hasattr(header, "get_data_shape") and hasattr(header, "get_zooms"):
        shape = tuple(int(n) for n in header.get_data_shape()[:3])
        zooms = tuple(float(v) for v in header.get_zooms()[:3])
        if len(shape) == 3 and len(zooms) == 3:
            return "i, j, k", shape, zooms
    return "i, j, k", volume.spatial_shape[::-1], volume.spacing[::-1]


def stack_frame_size(stack: SliceStack) -> tuple[int, int]:
    """(H, W) of the stack's frames in pixels."""
    return int(stack.values.shape[1]), int(stack.values.shape[2])


def focal_lengths(stack: SliceStack, focal_length: float | None = None) -> tuple[float, float]:
    """The pinhole focal lengths ``(fl_x, fl_y)`` in pixels of the stack's frames.

    ``fl_x`` is ``focal_length`` (default: the frame width, a 90° horizontal field of view). A
    pinhole's focal length in pixels is the focal distance divided by the pixel's size along that
    image axis, so for pixels ``column_mm`` wide and ``row_mm`` high
    ``fl_y = fl_x × column_mm / row_mm``: equal for square pixels, and the field of view then
    spans the frame's physical aspect (``tan(θy/2) / tan(θx/2) = H·row_mm / (W·column_mm)``).
    """
    rows_mm, columns_mm = stack.pixel_spacing_mm
    fl_x = float(focal_length or stack.values.shape[2])
    aspect = columns_mm / rows_mm
    return fl_x, fl_x if abs(aspect - 1) < SQUARE_TOLERANCE else fl_x * aspect


def intensity_range(
    values: NDArray[Any],
    *,
    mode: Normalization | str = Normalization.MINMAX,
    window: Window | None = None,
    percentiles: tuple[float, float] = (1.0, 99.0),
) -> tuple[float, float]:
    """The value range ``(low, high)`` that maps to black and white, from the whole volume.

    Raises
    ------
    FormatError
        An unknown ``mode``, or ``"window"`` without a window.
    """
    chosen = Normalization.choose(mode, EXPORT_NORMALIZATIONS, option="--normalization")
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
    return float(low), float(high)


def grey_levels(
    values: NDArray[Any], value_range: tuple[float, float], *, bit_depth: int = 8
) -> NDArray[Any]:
    """Map ``value_range`` linearly onto 0…255 (uint8) or 0…65535 (uint16), clipped.

    Raises
    ------
    FormatError
        ``bit_depth`` other than 8 or 16.
    """
    _check_bit_depth(bit_depth)
    low, high = value_range
    if bit_depth == 8:
        return apply_window(values, Window((low + high) / 2, high - low))
    scaled = (values.astype(np.float32) - np.float32(low)) * np.float32(65535.0 / (high - low))
    levels: NDArray[np.uint16] = np.rint(np.clip(scaled, 0, 65535)).astype(np.uint16)
    return levels


def to_grey_levels(
    values: NDArray[Any],
    *,
    mode: Normalization | str = Normalization.MINMAX,
    window: Window | None = None,
    percentiles: tuple[float, float] = (1.0, 99.0),
    bit_depth: int = 8,
) -> tuple[NDArray[Any], tuple[float, float]]:
    """Whole-volume intensity mapping to 8- or 16-bit grey; returns the levels and range used."""
    _check_bit_depth(bit_depth)
    used = intensity_range(values, mode=mode, window=window, percentiles=percentiles)
    return grey_levels(values, used, bit_depth=bit_depth), used


def _check_bit_depth(bit_depth: int) -> None:
    if bit_depth not in (8, 16):
        raise FormatError(f"--bit-depth must be 8 or 16, got {bit_depth}")


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
    """What an export wrote, for the printed summary.

    Attributes
    ----------
    folder : Path
    volume_shape : tuple of int
        The volume's array shape (slice, row, column).
    spacing_mm : (3,) float
        The volume's voxel spacing in array order, mm.
    axis_order : str
        The order ``--axis`` counts in: ``"i, j, k"`` (a NIfTI's own axes) or
        ``"slice, row, column"``.
    input_shape, input_spacing_mm : tuple
        Shape and spacing (mm) in ``axis_order``, as the input's own tools show them.
    slice_spacing_mm : float
        Distance between consecutive slices of the stack, mm.
    slice_step_mm : float
        Distance between consecutive frames (``slice_spacing_mm × every``), mm.
    original_range, normalized_range : (2,) tuple
        The values' range and the grey levels' range.
    image_shape : (H, W)
        Frame size in pixels after any resampling to square pixels.
    pixel_spacing_mm : (row, column) float
        The frames' pixel height and width, mm.
    resampled_from : (H, W) or None
        The frame size before resampling to square pixels; None when not resampled.
    focal_length : (fl_x, fl_y) float
        Pixels.
    principal_point : (cx, cy) float
        Pixels.
    z_step : float
        Camera translation between consecutive frames, scene units.
    files : list of str
    """

    folder: Path
    volume_shape: tuple[int, ...]
    spacing_mm: tuple[float, float, float]
    axis_order: str
    input_shape: tuple[int, ...]
    input_spacing_mm: tuple[float, ...]
    slice_spacing_mm: float
    slice_step_mm: float
    original_range: tuple[float, float]
    normalized_range: tuple[int, int]
    image_shape: tuple[int, int]
    pixel_spacing_mm: tuple[float, float]
    resampled_from: tuple[int, int] | None
    focal_length: tuple[float, float]
    principal_point: tuple[float, float]
    z_step: float
    files: list[str] = field(default_factory=list)


#: What nerfstudio and instant-ngp make of 16-bit PNG frames.
SIXTEEN_BIT_NOTE = (
    "16-bit PNG frames: nerfstudio and instant-ngp read PNG frames as 8-bit (nerfstudio's loader "
    "casts 16-bit values to uint8, so they wrap around), so train them on --bit-depth 8 frames; "
    "16-bit frames are for other consumers that read 16-bit PNG"
)


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
    square: bool = True,
    focal_length: float | None = None,
    scale: float = DEFAULT_SCALE,
    selection: tuple[int | None, int | None] = (None, None),
    every: int = 1,
    split: tuple[float, float, float] | None = None,
    camera_model: str = "OPENCV",
    overwrite: bool = False,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> NerfExport:
    """Write ``001.png`` … and ``transforms.json`` for a volume into ``folder`` (atomically).

    Camera k sits at the centre of slice k in patient coordinates, minus the volume's centre,
    times ``scale``; consecutive cameras are one slice spacing × scale apart.

    Parameters
    ----------
    volume : Volume
        A grey (S, R, C) volume.
    folder : path
        Output folder; refused when not empty unless ``overwrite``.
    plane : {"axial", "coronal", "sagittal"}
        Patient plane in radiological display, used when ``axis`` is None.
    axis : {0, 1, 2}, optional
        Slice along the input's own axis instead (see :func:`array_axis_of`): for a NIfTI the
        file's i, j, k (2 = the axial slices of an axial NIfTI), for DICOM the array's slice,
        row, column. Frames are ``np.take(nifti_data, n, axis).T`` (see :func:`slice_stack`).
    mode, window : normalization
        ``minmax``, ``window`` (with ``window``, HU) or ``percentile``, over the whole volume.
    bit_depth : {8, 16}
        16-bit frames warn (a :class:`~radpipe.errors.RadpipeWarning`): nerfstudio and
        instant-ngp read PNG frames as 8-bit.
    square : bool
        Resample frames whose pixels are not square (a coronal or sagittal frame of a CT with
        5 mm slices) to square pixels of the finer spacing, linear (:func:`square_pixels`), so
        ``fl_x = fl_y``. False keeps the frames' pixels and writes
        ``fl_y = fl_x × column spacing / row spacing`` (:func:`focal_lengths`).
    focal_length : float, optional
        ``fl_x`` in pixels; default the frame width.
    scale : float
        Scene units per mm.
    selection, every : slice subset
        ``(start, stop)`` of the stack, then every N-th slice.
    split : (train, val, test), optional
        Fractions adding up to 1: file lists interleaved over the volume.
    camera_model : {"OPENCV", "PINHOLE"}
    overwrite : bool
    workers : int, optional
        PNG encoding processes (default: one per core).
    progress : callable, optional
        Called with the number of frames written since the last call.
    on_total : callable, optional
        Called once with the number of frames before any is written.

    Returns
    -------
    NerfExport
        What was written, for a summary.

    Raises
    ------
    FormatError
        A bad option value (``every``, ``scale``, ``focal_length``, ``bit_depth``, ``split``,
        a selection that keeps nothing).
    GeometryError
        A 2-D image, a colour volume, or a bad ``axis``.

    Examples
    --------
    >>> import tempfile
    >>> from radpipe.phantom import make_phantom
    >>> ct = make_phantom(shape=(8, 32, 24), spacing=(3.0, 1.0, 1.0), tumours=0).ct
    >>> with tempfile.TemporaryDirectory() as out:
    ...     result = export_nerf(ct, f"{out}/nerf", plane="coronal", workers=1)
    >>> result.image_shape, result.resampled_from, result.focal_length
    ((24, 24), (8, 24), (24.0, 24.0))
    """
    from radpipe.parallel import default_workers, run_map

    if every < 1:
        raise FormatError(f"--every must be at least 1, got {every}")
    if not (math.isfinite(scale) and scale > 0):
        raise FormatError(f"--scale must be a positive number of scene units per mm, got {scale}")
    if focal_length is not None and not (math.isfinite(focal_length) and focal_length > 0):
        raise FormatError(f"--focal-length must be a positive number of pixels, got {focal_length}")
    _check_bit_depth(bit_depth)
    chosen_mode = Normalization.choose(mode, EXPORT_NORMALIZATIONS, option="--normalization")
    target = Path(folder)
    guard_output(target, **inputs_of(volume))
    check_folder_replaceable(target, overwrite=overwrite)
    stack = slice_stack(volume, plane=plane, axis=axis)
    used_range = intensity_range(stack.values, mode=chosen_mode, window=window)
    count = stack.values.shape[0]
    indices = list(range(count))[slice(selection[0], selection[1], every)]
    if not indices:
        raise FormatError(
            f"the slice selection {selection} every {every} keeps no slice of {count}"
        )
    if bit_depth == 16:
        warnings.warn(f"{target}: {SIXTEEN_BIT_NOTE}", RadpipeWarning, stacklevel=2)
    if on_total is not None:
        on_total(len(indices))
    # only the kept frames are resampled and encoded; frame m is slice indices[m]
    kept = replace(stack, values=stack.values[indices] if len(indices) < count else stack.values)
    frames_stack = square_pixels(kept) if square else kept
    levels = grey_levels(frames_stack.values, used_range, bit_depth=bit_depth)
    height, width = levels.shape[1:]
    resampled_from = None if frames_stack is kept else stack_frame_size(kept)
    digits = max(3, len(str(len(indices))))
    fl_x, fl_y = focal_lengths(frames_stack, focal_length)
    corners = np.array([[0, 0, 0], [count - 1, *(n - 1 for n in stack.values.shape[1:])]], float)
    centre = (corners @ stack.affine[:3, :3].T + stack.affine[:3, 3]).mean(axis=0)
    spacing = stack.slice_spacing_mm
    names = [f"{number:0{digits}d}.png" for number in range(1, len(indices) + 1)]
    frames = []
    for name, index in zip(names, indices, strict=True):
        matrix = camera_to_world(frames_stack.affine, index, (height, width), centre, scale)
        frames.append(
            {"file_path": name, "transform_matrix": matrix.tolist(), "slice_index": index}
        )
    axis_order, input_shape, input_spacing = input_axes(volume)
    document: dict[str, Any] = {
        "camera_model": camera_model,
        "fl_x": fl_x,
        "fl_y": fl_y,
        "cx": width / 2,
        "cy": height / 2,
        "w": width,
        "h": height,
        "camera_angle_x": 2 * math.atan(width / (2 * fl_x)),
        "camera_angle_y": 2 * math.atan(height / (2 * fl_y)),
        "frames": frames,
        "radpipe": {
            "units_per_mm": scale,
            "centre_lps_mm": centre.tolist(),
            "slice_affine_lps": frames_stack.affine.tolist(),
            "volume_affine_lps": volume.affine.tolist(),
            "volume_shape": list(volume.shape),
            "spacing_mm": list(volume.spacing),
            "orientation": volume.orientation_code,
            "plane": None if axis is not None else (plane or "axial"),
            "axis": axis,
            "axis_order": axis_order,
            "array_axis": stack.array_axis,
            "axis_meaning": stack.axis_meaning,
            "input_shape": list(input_shape),
            "slice_spacing_mm": spacing,
            "slice_step_mm": spacing * every,
            "pixel_spacing_mm": list(frames_stack.pixel_spacing_mm),
            "square_pixels": {
                "requested": square,
                "resampled_from": None if resampled_from is None else list(resampled_from),
                "interpolation": "linear" if resampled_from is not None else None,
            },
            "intensity": {
                "mode": str(chosen_mode),
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
            items = [(m, str(temporary / name)) for m, name in enumerate(names)]
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
        axis_order=axis_order,
        input_shape=tuple(input_shape),
        input_spacing_mm=tuple(input_spacing),
        slice_spacing_mm=spacing,
        slice_step_mm=spacing * every,
        original_range=(float(stack.values.min()), float(stack.values.max())),
        normalized_range=(int(levels.min()), int(levels.max())),
        image_shape=(height, width),
        pixel_spacing_mm=frames_stack.pixel_spacing_mm,
        resampled_from=resampled_from,
        focal_length=(fl_x, fl_y),
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
    square: bool = True,
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
    ``plane``, ``axis``, ``square`` and ``focal_length`` mean what they mean for
    :func:`export_nerf`.
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
        original = slice_stack(volume, plane=plane, axis=axis)
        used_range = intensity_range(original.values, mode=mode, window=window)
        stack = square_pixels(original) if square else original
        levels = grey_levels(stack.values, used_range)
        count, height, width = levels.shape
        fl_x, fl_y = focal_lengths(stack, focal_length)
        corners = np.array([[0, 0, 0], [count - 1, height - 1, width - 1]], float)
        centre = (corners @ stack.affine[:3, :3].T + stack.affine[:3, 3]).mean(axis=0)
        cameras = np.zeros((count, 18), dtype=np.float32)
        images = []
        for k in range(count):
            camera = (
                camera_to_world(stack.affine, k, (height, width), centre, scale) @ opengl_to_opencv
            )
            world_to_camera = np.linalg.inv(camera)
            cameras[k, :4] = (fl_x / width, fl_y / height, 0.5, 0.5)
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


def export_nerf_tree(
    root: str | Path,
    output: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    catalog: str | Path | None = None,
    on_export: Callable[[NerfExport], None] | None = None,
    **options: Any,
) -> list[NerfExport]:
    """:func:`export_nerf` for every 3-D image series under ``root`` into ``output/<name>``
    (``<patient>_<NNN>``), one series per job on local processes or a Dask cluster.

    Each worker loads its series from the catalog and writes its folder atomically, so a
    retried job (a lost worker) replaces, never duplicates, its output. On a cluster ``root``
    and ``output`` must be shared paths (the temporary catalog is made beside ``output``).

    Parameters
    ----------
    root : str or Path
        Folder, zip or dataset root scanned for 3-D image series.
    output : str or Path
        Folder receiving one export folder per series.
    workers, scheduler
        Local processes, or a Dask scheduler address.
    catalog : str or Path, optional
        Catalog to create or update (default: a temporary one).
    on_export : callable, optional
        Called with each series' result as it comes back.
    **options
        :func:`export_nerf`'s options.

    Returns
    -------
    list of NerfExport
        One per series, in catalog order.
    """
    from radpipe.catalog.patients import image_series
    from radpipe.catalog.store import scan
    from radpipe.errors import ReadError
    from radpipe.parallel import run_map, work_folder

    with work_folder(output, scheduler) as work:
        catalog_path = Path(catalog) if catalog is not None else Path(work) / "catalog.sqlite"
        found, _ = scan(root, catalog_path, workers=workers, scheduler=scheduler)
        with found:
            named = image_series(found)
        if not named:
            raise ReadError(f"{root}: no 3-D image series found")
        target = Path(output).resolve()
        jobs = [(str(catalog_path.resolve()), entry.key, str(target / name), options)
                for name, entry in named]  # fmt: skip
        results = []
        for result in run_map(_export_series_job, jobs, workers=workers, scheduler=scheduler,
                              chunksize=1):  # fmt: skip
            results.append(result)
            if on_export is not None:
                on_export(result)
    return results


def _export_series_job(job: tuple[str, str, str, dict[str, Any]]) -> NerfExport:
    from radpipe.catalog.store import open_catalog

    catalog_path, key, folder, options = job
    with open_catalog(catalog_path) as catalog:
        volume = catalog.load(key)
    return export_nerf(volume, folder, **options)


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
