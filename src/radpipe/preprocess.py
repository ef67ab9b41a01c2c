"""Preprocessing for training: resampling to a spacing (SimpleITK), reorientation, N4 bias-field
correction, intensity normalisation, cropping to the body and padding to a size. Pure: Volumes
in, Volumes out."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from radpipe import geometry
from radpipe.errors import FormatError, GeometryError
from radpipe.volume import LabelMap, Volume
from radpipe.windowing import Normalization, Window

#: A Volume or any of its subclasses (LabelMap, Heatmap): operations return the same type.
AnyVolume = TypeVar("AnyVolume", bound=Volume)


class Interpolation(StrEnum):
    """Resampling kernels."""

    LINEAR = "linear"
    BSPLINE = "bspline"
    NEAREST = "nearest"


#: Largest grid preprocessing makes (voxels): beyond it a typo (1e-9 mm, a size of 100000)
#: would exhaust the memory instead of giving an error.
MAX_VOXELS = 2**31


def _check_voxel_count(shape: tuple[int, ...], what: str) -> None:
    count = float(np.prod([float(n) for n in shape]))
    if count > MAX_VOXELS:
        raise GeometryError(
            f"{what} makes a {' × '.join(map(str, shape))} grid ({count:.3g} voxels), more than "
            f"radpipe allocates ({MAX_VOXELS:.3g}); check the value"
        )


def target_grid(
    volume: Volume, spacing: float | Sequence[float]
) -> tuple[tuple[int, int, int], NDArray[np.float64]]:
    """Shape and affine of ``volume``'s field of view at ``spacing`` (slice, row, column mm).

    The first voxel centre stays where it is; the extent is kept (rounded to whole voxels).
    """
    given = np.atleast_1d(np.asarray(spacing, dtype=np.float64))
    if given.size not in (1, 3):
        raise GeometryError(
            f"spacing is one value or three (slice, row, column mm), got {given.tolist()}"
        )
    wanted = np.broadcast_to(given, (3,)).copy()
    if not np.all(np.isfinite(wanted)) or np.any(wanted <= 0):
        raise GeometryError(f"spacing must be positive numbers of mm, got {wanted.tolist()}")
    current = np.asarray(volume.spacing)
    extent = np.asarray(volume.spatial_shape) * current
    shape = tuple(max(1, round(float(e / w))) for e, w in zip(extent, wanted, strict=True))
    _check_voxel_count(shape, f"resampling to {wanted.tolist()} mm")
    affine = volume.affine.copy()
    affine[:3, :3] = geometry.direction_of(volume.affine) * wanted
    return (shape[0], shape[1], shape[2]), affine


def resample(
    volume: AnyVolume,
    *,
    spacing: float | Sequence[float] | None = None,
    reference: Volume | None = None,
    interpolation: Interpolation | str | None = None,
    fill: float | None = None,
) -> AnyVolume:
    """Resample onto a new spacing (same field of view) or onto a reference grid, with SimpleITK.

    Label maps use nearest neighbour and keep their labels; images use linear (or B-spline)
    interpolation and keep their dtype for integer data (rounded). Points outside the source
    take ``fill`` (default: 0 for labels, the image's minimum otherwise).
    """
    import SimpleITK as sitk

    if (spacing is None) == (reference is None):
        raise FormatError("give either spacing= or reference=")
    is_labels = isinstance(volume, LabelMap)
    method = Interpolation(
        interpolation or (Interpolation.NEAREST if is_labels else Interpolation.LINEAR)
    )
    if reference is not None:
        shape, affine = reference.spatial_shape, reference.affine
    else:
        assert spacing is not None
        shape, affine = target_grid(volume, spacing)
    grid = Volume(np.zeros((1, 1, 1), np.uint8), affine)
    spacing_xyz = tuple(reversed(geometry.spacing_of(affine)))
    direction = geometry.direction_of(affine)[:, ::-1]
    resampler = sitk.ResampleImageFilter()
    resampler.SetSize([int(shape[2]), int(shape[1]), int(shape[0])])
    resampler.SetOutputSpacing(spacing_xyz)
    resampler.SetOutputOrigin(tuple(float(v) for v in affine[:3, 3]))
    resampler.SetOutputDirection(tuple(float(v) for v in direction.ravel()))
    resampler.SetInterpolator(
        {
            Interpolation.NEAREST: sitk.sitkNearestNeighbor,
            Interpolation.LINEAR: sitk.sitkLinear,
            Interpolation.BSPLINE: sitk.sitkBSpline,
        }[method]
    )
    background = fill if fill is not None else 0.0 if is_labels else float(volume.array.min())
    resampler.SetDefaultPixelValue(background)
    source = (
        volume.to_sitk()
        if volume.array.dtype != np.bool_
        else Volume(volume.array.astype(np.uint8), volume.affine).to_sitk()
    )
    if (
        not is_labels
        and method is not Interpolation.NEAREST
        and np.issubdtype(volume.dtype, np.integer)
    ):
        source = sitk.Cast(source, sitk.sitkFloat32)
    output = sitk.GetArrayFromImage(resampler.Execute(source))
    if np.issubdtype(volume.dtype, np.integer) and output.dtype != volume.dtype:
        info = np.iinfo(volume.dtype)
        output = np.clip(np.rint(output), info.min, info.max).astype(volume.dtype)
    del grid
    return volume.like(output, affine)


def n4_bias_correction(
    volume: Volume,
    *,
    mask: NDArray[np.bool_] | None = None,
    shrink: int = 4,
    iterations: Sequence[int] = (50, 50, 30),
) -> tuple[Volume, NDArray[np.float32]]:
    """N4 bias-field correction (SimpleITK) fitted on a shrunk image, applied at full resolution.

    Returns
    -------
    corrected : Volume (float32)
    field : (S, R, C) float32
        The multiplicative bias field (corrected = original / field).
    """
    import SimpleITK as sitk

    image = sitk.Cast(volume.to_sitk(), sitk.sitkFloat32)
    if mask is None:
        mask_image = sitk.OtsuThreshold(image, 0, 1, 200)
    else:
        mask_image = Volume(mask.astype(np.uint8), volume.affine).to_sitk()
    factor = max(1, int(shrink))
    small = sitk.Shrink(image, [factor] * 3) if factor > 1 else image
    small_mask = sitk.Shrink(mask_image, [factor] * 3) if factor > 1 else mask_image
    corrector = sitk.N4BiasFieldCorrectionImageFilter()
    corrector.SetMaximumNumberOfIterations([int(i) for i in iterations])
    corrector.Execute(small, small_mask)
    log_field = corrector.GetLogBiasFieldAsImage(image)
    field = np.exp(sitk.GetArrayFromImage(log_field)).astype(np.float32)
    corrected = volume.array.astype(np.float32) / field
    return Volume(corrected, volume.affine, meta=volume.meta), field


#: The normalisations preprocessing applies for training.
TRAINING_NORMALIZATIONS = (
    Normalization.WINDOW,
    Normalization.ZSCORE,
    Normalization.PERCENTILE,
    Normalization.NONE,
)


def normalize_intensity(
    volume: Volume,
    method: Normalization | str = Normalization.ZSCORE,
    *,
    window: Window | None = None,
    mask: NDArray[np.bool_] | None = None,
    percentiles: tuple[float, float] = (0.5, 99.5),
) -> Volume:
    """Intensities as float32: a HU window mapped to [0, 1], z-score inside ``mask`` (or the
    body, above the 5th percentile), or percentile clipping mapped to [0, 1]."""
    chosen = Normalization.choose(method, TRAINING_NORMALIZATIONS, option="--normalization")
    data = volume.array.astype(np.float32)
    if chosen is Normalization.NONE:
        return Volume(data, volume.affine, meta=volume.meta)
    if chosen is Normalization.WINDOW:
        if window is None:
            raise FormatError("window normalisation needs a window (e.g. --window abdomen)")
        result = np.clip((data - window.low) / window.width, 0.0, 1.0)
    elif chosen is Normalization.ZSCORE:
        region = mask if mask is not None else data > np.percentile(data, 5)
        values = data[region] if region.any() else data
        std = float(values.std()) or 1.0
        result = (data - float(values.mean())) / std
    else:
        low, high = np.percentile(data, percentiles)
        result = np.clip((data - low) / max(float(high - low), 1e-6), 0.0, 1.0)
    return Volume(result.astype(np.float32), volume.affine, meta=volume.meta)


def body_box(
    volume: Volume, *, threshold: float | None = None, margin: int = 2
) -> tuple[slice, slice, slice]:
    """Bounding box of the foreground (values above ``threshold``; −500 HU for CT, else the
    mean), grown by ``margin`` voxels."""
    data = volume.array
    level = (
        threshold
        if threshold is not None
        else (-500.0 if volume.meta.units == "HU" else float(data.mean()))
    )
    foreground = data > level
    if not foreground.any():
        return (slice(0, data.shape[0]), slice(0, data.shape[1]), slice(0, data.shape[2]))
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        present = np.nonzero(foreground.any(axis=other))[0]
        box.append(
            slice(
                max(0, int(present[0]) - margin),
                min(data.shape[axis], int(present[-1]) + 1 + margin),
            )
        )
    return (box[0], box[1], box[2])


def crop(volume: AnyVolume, box: tuple[slice, slice, slice]) -> AnyVolume:
    """The sub-volume in ``box`` with its affine moved to the new first voxel."""
    affine = volume.affine.copy()
    affine[:3, 3] = volume.index_to_world([box[0].start, box[1].start, box[2].start])
    return volume.like(volume.array[box], affine)


def pad_or_crop(
    volume: AnyVolume, shape: Sequence[int], *, value: float | None = None
) -> AnyVolume:
    """Centre-pad (with ``value``, default the minimum) or centre-crop to ``shape``."""
    target = [int(n) for n in shape]
    if len(target) != 3 or min(target) < 1:
        raise GeometryError(f"size must be three positive numbers, got {list(shape)}")
    _check_voxel_count(tuple(target), f"a size of {target}")
    data = volume.array
    fill = float(data.min()) if value is None else value
    if isinstance(volume, LabelMap):
        fill = 0
    result = np.full(target + list(data.shape[3:]), fill, dtype=data.dtype)
    source, destination, start = [], [], []
    for n, size in zip(data.shape[:3], target, strict=True):
        if n >= size:
            offset = (n - size) // 2
            source.append(slice(offset, offset + size))
            destination.append(slice(0, size))
            start.append(offset)
        else:
            offset = (size - n) // 2
            source.append(slice(0, n))
            destination.append(slice(offset, offset + n))
            start.append(-offset)
    result[tuple(destination)] = data[tuple(source)]
    affine = volume.affine.copy()
    affine[:3, 3] = volume.index_to_world(start)
    return volume.like(result, affine)


def preprocess(
    volume: Volume,
    *,
    labels: LabelMap | None = None,
    spacing: float | Sequence[float] | None = None,
    orient: str | None = None,
    n4: bool = False,
    normalization: Normalization | str = Normalization.NONE,
    window: Window | None = None,
    crop_to_body: bool = False,
    size: Sequence[int] | None = None,
) -> tuple[Volume, LabelMap | None]:
    """The whole chain in a fixed order: reorient, resample (labels on the same grid with
    nearest neighbour), N4, crop to the body, pad / crop to ``size``, normalise."""
    volume.require_grey("preprocessing")
    image, mask = volume, labels
    if orient:
        image = image.reoriented(orient)
        mask = mask.reoriented(orient) if mask is not None else None
    if spacing is not None:
        image = resample(image, spacing=spacing)
        if mask is not None:
            mask = resample(mask, reference=image)
    if n4:
        image, _ = n4_bias_correction(image)
    if crop_to_body:
        box = body_box(image)
        image = crop(image, box)
        mask = crop(mask, box) if mask is not None else None
    if size is not None:
        image = pad_or_crop(image, size)
        mask = pad_or_crop(mask, size) if mask is not None else None
    chosen = Normalization.choose(normalization, TRAINING_NORMALIZATIONS, option="--normalization")
    if chosen is not Normalization.NONE:
        image = normalize_intensity(image, normalization, window=window, mask=None)
    return image, mask
