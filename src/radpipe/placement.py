"""Putting a mask or a heatmap on an image's grid by world position: the one geometry rule of
every command that combines two spatial objects.

Same grid → as is. The same voxel centres in another order or a part of the grid (a flipped
label map, a SEG of some slices) → placed exactly. Another grid that overlaps → resampled by world
position (nearest neighbour for labels, linear for heatmaps) with a
:class:`~radpipe.errors.ResampledWarning`. No overlap → :class:`~radpipe.errors.GeometryError`
naming both geometries. Pure: arrays and Volumes only.
"""

from __future__ import annotations

import warnings
from enum import StrEnum
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from radpipe import geometry
from radpipe.errors import FormatError, GeometryError, ResampledWarning
from radpipe.volume import Heatmap, LabelMap, Volume

AnyVolume = TypeVar("AnyVolume", bound=Volume)

__all__ = [
    "Resize",
    "copy_coinciding",
    "heatmap_on",
    "labels_on",
    "place_plane",
    "resample_onto",
    "resize_values",
    "voxels_coincide",
]


class Resize(StrEnum):
    """How a heatmap without geometry whose shape differs from the image's is fitted."""

    BILINEAR = "bilinear"
    NEAREST = "nearest"


def _mismatch(name: str, source: Volume, target: Volume) -> str:
    return f"the {name} ({source.describe_grid()}) and the image ({target.describe_grid()})"


def resample_onto(
    values: NDArray[Any],
    affine: ArrayLike,
    target: Volume,
    *,
    order: int,
    fill: float = 0.0,
) -> NDArray[Any]:
    """Sample an (S, R, C) array on ``target``'s grid at the same world positions.

    Parameters
    ----------
    values : (S, R, C) ndarray
        On the grid of ``affine``.
    affine : (4, 4) array_like
        Index-to-LPS affine of ``values``.
    target : Volume
        The grid to sample on.
    order : {0, 1}
        0 nearest neighbour (labels), 1 linear (intensities, probabilities). Linear sampling
        treats NaN as "no value": output voxels nearer to NaN than to numbers become NaN.
    fill : float
        Value outside ``values`` (NaN is allowed for float output).

    Returns
    -------
    (S', R', C') ndarray
        ``target.spatial_shape``; ``values``' dtype for order 0, float32 for order 1.
    """
    source_affine = geometry.check_affine(affine)
    if _is_orthogonal(source_affine) and _is_orthogonal(target.affine):
        return _resample_sitk(values, source_affine, target, order=order, fill=fill)
    return _resample_scipy(values, source_affine, target, order=order, fill=fill)


def _is_orthogonal(affine: NDArray[np.float64]) -> bool:
    """Whether the grid's axes are at right angles (no gantry-tilt shear)."""
    return geometry.shear_angle_deg(affine) < 1e-3


def _reference_grid(target: Volume) -> Any:
    """An empty SimpleITK image with ``target``'s grid."""
    import SimpleITK as sitk

    reference = sitk.Image([int(n) for n in target.spatial_shape[::-1]], sitk.sitkUInt8)
    reference.SetSpacing([float(v) for v in target.spacing[::-1]])
    reference.SetOrigin(target.origin)
    reference.SetDirection(tuple(float(v) for v in target.direction[:, ::-1].ravel()))
    return reference


def _resample_sitk(
    values: NDArray[Any], affine: NDArray[np.float64], target: Volume, *, order: int, fill: float
) -> NDArray[Any]:
    """SimpleITK's resampler (multi-threaded): nearest for labels; linear, NaN-aware, for floats."""
    import SimpleITK as sitk

    reference = _reference_grid(target)
    identity = sitk.Transform()
    if order == 0:
        data = values.astype(np.uint8) if values.dtype == np.bool_ else values
        source = Volume(data, affine).to_sitk()
        result = sitk.Resample(source, reference, identity, sitk.sitkNearestNeighbor, fill)
        return np.asarray(sitk.GetArrayFromImage(result)).astype(values.dtype, copy=False)
    data = np.asarray(values, dtype=np.float32)
    holes = ~np.isfinite(data)
    if not holes.any():  # outside the source: ``fill`` (NaN allowed) straight from ITK
        whole = Volume(data, affine).to_sitk()
        result = sitk.Resample(whole, reference, identity, sitk.sitkLinear, fill, sitk.sitkFloat32)
        return np.asarray(sitk.GetArrayFromImage(result))
    known = Volume(np.where(holes, np.float32(0.0), data), affine).to_sitk()
    sampled = sitk.GetArrayFromImage(
        sitk.Resample(known, reference, identity, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    )
    weight = sitk.GetArrayFromImage(
        sitk.Resample(
            Volume((~holes).astype(np.float32), affine).to_sitk(), reference, identity,
            sitk.sitkLinear, 0.0, sitk.sitkFloat32,
        )
    )  # fmt: skip
    return _normalised(sampled, weight, fill)


def _normalised(
    sampled: NDArray[np.float32], weight: NDArray[np.float32], fill: float
) -> NDArray[np.float32]:
    """Linear samples of the known values divided by the known fraction; "no value" where less
    than half of the neighbourhood was known."""
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = np.where(weight > 1e-6, sampled / np.maximum(weight, 1e-6), fill)
    normalised[weight < 0.5] = fill
    result: NDArray[np.float32] = normalised.astype(np.float32)
    return result


def _resample_scipy(
    values: NDArray[Any], affine: NDArray[np.float64], target: Volume, *, order: int, fill: float
) -> NDArray[Any]:
    """scipy's affine_transform: the path for sheared (gantry-tilted) grids, which ITK images
    cannot describe."""
    from scipy import ndimage

    mapping = np.linalg.inv(affine) @ target.affine
    matrix, offset = mapping[:3, :3], mapping[:3, 3]
    if order == 0:
        # a border of ``fill`` gives every voxel its half-voxel reach, and lets positions a
        # rounding error past the last voxel still land on it
        padded = np.pad(values, 1, constant_values=fill)
        result = ndimage.affine_transform(
            padded, matrix, offset=offset + 1.0, output_shape=target.spatial_shape,
            order=0, mode="constant", cval=fill,
        )  # fmt: skip
        return np.asarray(result)
    data = np.asarray(values, dtype=np.float32)
    holes = ~np.isfinite(data)
    known = np.where(holes, 0.0, data).astype(np.float32)
    sampled = ndimage.affine_transform(
        known, matrix, offset=offset, output_shape=target.spatial_shape,
        order=1, mode="constant", cval=0.0,
    )  # fmt: skip
    weight = ndimage.affine_transform(
        (~holes).astype(np.float32), matrix, offset=offset, output_shape=target.spatial_shape,
        order=1, mode="constant", cval=0.0,
    )  # fmt: skip
    return _normalised(sampled, weight, fill)


def copy_coinciding(
    values: NDArray[Any], affine: ArrayLike, target: Volume, *, fill: float
) -> NDArray[Any]:
    """Place values whose voxel centres coincide with ``target``'s (see
    :func:`voxels_coincide`) by index arithmetic alone: a transpose, flips and one copy.

    Returns
    -------
    (S', R', C') ndarray
        ``target.spatial_shape``, ``values``' dtype; ``fill`` where ``values`` does not reach.
    """
    mapping = np.linalg.inv(geometry.check_affine(affine)) @ target.affine
    matrix, offset = mapping[:3, :3], mapping[:3, 3]
    sizes = target.spatial_shape
    source_axis: list[int | None] = [None, None, None]
    step = [1, 1, 1]
    for axis in range(3):
        if sizes[axis] > 1:
            source_axis[axis] = int(np.argmax(np.abs(matrix[:, axis])))
            step[axis] = int(np.rint(matrix[source_axis[axis], axis]))
    spare = [a for a in range(3) if a not in source_axis]
    axes = [a if a is not None else spare.pop(0) for a in source_axis]
    start = np.rint(offset).astype(int)
    view = np.transpose(values, axes)
    output = np.full(sizes, fill, dtype=values.dtype)
    target_slices, source_slices = [], []
    for axis in range(3):
        first, length = int(start[axes[axis]]), values.shape[axes[axis]]
        if step[axis] > 0:
            low, high = max(0, -first), min(sizes[axis] - 1, length - 1 - first)
        else:
            low, high = max(0, first - (length - 1)), min(sizes[axis] - 1, first)
        if high < low:
            return output
        target_slices.append(slice(low, high + 1))
        begin = first + step[axis] * low
        end = first + step[axis] * high
        source_slices.append(
            slice(begin, end + 1)
            if step[axis] > 0
            else slice(begin, end - 1 if end > 0 else None, -1)
        )
    output[tuple(target_slices)] = view[tuple(source_slices)]
    return output


def voxels_coincide(source: Volume, target: Volume, *, atol_voxel: float = 1e-3) -> bool:
    """Whether every voxel centre of ``target``'s grid falls on a voxel centre of ``source``'s.

    True for the same grid stored in another axis order or direction (a flipped label map),
    for part of it or more of it (a SEG covering some of the slices), or for one image plane of
    it: placing ``source`` on ``target`` then needs no interpolation. Axes of ``target`` with a
    single voxel only need their voxel on a centre.
    """
    mapping = np.linalg.inv(source.affine) @ target.affine
    matrix, offset = mapping[:3, :3], mapping[:3, 3]
    used = [axis for axis, size in enumerate(target.spatial_shape) if size > 1]
    columns = matrix[:, used]
    rounded = np.rint(columns)
    unit_steps = bool(np.all(np.abs(rounded).sum(axis=0) == 1)) and np.allclose(
        columns, rounded, atol=atol_voxel
    )
    return unit_steps and bool(np.allclose(offset, np.rint(offset), atol=atol_voxel))


def _check_overlap(name: str, source: Volume, target: Volume) -> None:
    if not geometry.grids_overlap(
        source.affine, source.spatial_shape, target.affine, target.spatial_shape
    ):
        raise GeometryError(
            f"the {name} ({source.describe_grid()}) does not overlap the image "
            f"({target.describe_grid()}) in the patient; was it made for another series?"
        )


def labels_on(labels: Volume, image: Volume, *, name: str = "mask") -> LabelMap:
    """A label map on ``image``'s grid, placed by world position.

    Parameters
    ----------
    labels : Volume or LabelMap
        Whole-number values on any grid that overlaps the image (names kept from a LabelMap).
        A plain Volume holding only 0 and one other value (0/255 masks) becomes label 1.
    image : Volume
        The image the labels annotate.
    name : str
        What the labels are, for messages (a file name).

    Returns
    -------
    LabelMap
        ``image.spatial_shape`` on exactly ``image.affine``.

    Raises
    ------
    GeometryError
        If the values are not whole numbers, the label map has a fourth axis, or the grids do
        not overlap.

    Warns
    -----
    ResampledWarning
        When the grids differ and the labels were resampled (nearest neighbour).

    Examples
    --------
    >>> from radpipe.phantom import make_phantom
    >>> phantom = make_phantom(shape=(24, 64, 64), tumours=1)
    >>> flipped = phantom.labels.like(phantom.labels.array[::-1],
    ...     phantom.labels.affine @ [[-1, 0, 0, 23], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    >>> import warnings; warnings.simplefilter("ignore")
    >>> bool((labels_on(flipped, phantom.ct).array == phantom.labels.array).all())
    True
    """
    if labels.array.ndim != 3:
        raise GeometryError(
            f"the {name} has shape {labels.array.shape}; a label map is (slice, row, column)"
        )
    if isinstance(labels, LabelMap):
        label_map = labels
    else:
        try:
            label_map = LabelMap.from_volume(labels)
        except GeometryError as exc:
            raise GeometryError(f"the {name}: {exc}") from None
        present = np.unique(label_map.array)
        if present.size == 2 and present[0] == 0 and present[1] != 1:
            label_map = label_map.like((label_map.array != 0).astype(np.uint8))
    return _place_by_world(label_map, image, name=name, order=0, fill=0)


def _place_by_world(
    source: AnyVolume, image: Volume, *, name: str, order: int, fill: float
) -> AnyVolume:
    """The geometry rule: same grid as is, coinciding voxels placed exactly, another
    overlapping grid resampled with a warning, no overlap refused."""
    if source.same_grid(image):
        return source.like(source.array, image.affine)
    _check_overlap(name, source, image)
    exact = voxels_coincide(source, image)
    if exact:
        moved = copy_coinciding(source.array, source.affine, image, fill=fill)
        return source.like(moved, image.affine)
    method = "nearest neighbour" if order == 0 else "linear"
    warnings.warn(
        ResampledWarning(
            f"{_mismatch(name, source, image)} lie on different grids; resampled onto the "
            f"image by world position ({method})"
        ),
        stacklevel=3,
    )
    moved = resample_onto(source.array, source.affine, image, order=order, fill=fill)
    return source.like(moved, image.affine)


def resize_values(
    values: NDArray[Any], shape: tuple[int, ...], *, method: Resize | str
) -> NDArray[np.float32]:
    """Resize a 2-D or 3-D float array to ``shape`` (bilinear / trilinear or nearest).

    NaN ("no value") stays NaN where it covered more than half of an output pixel.
    """
    from scipy import ndimage

    order = 0 if Resize(method) is Resize.NEAREST else 1
    data = np.asarray(values, dtype=np.float32)
    factors = [target / current for target, current in zip(shape, data.shape, strict=True)]
    resized = ndimage.zoom(
        np.nan_to_num(data, nan=0.0), factors, order=order, grid_mode=True, mode="nearest"
    )
    if np.isnan(data).any():
        holes = ndimage.zoom(
            np.isnan(data).astype(np.float32), factors, order=0, grid_mode=True, mode="nearest"
        )
        resized[holes > 0.5] = np.nan
    result: NDArray[np.float32] = resized.astype(np.float32)
    return result


def place_plane(
    values: NDArray[np.float32],
    image_shape: tuple[int, int],
    *,
    box: tuple[int, int, int, int] | None = None,
    method: Resize | str = Resize.BILINEAR,
    source: str = "heatmap",
) -> NDArray[np.float32]:
    """Fit a 2-D heatmap to one image plane: resize it (with a warning) or place it in a box.

    Parameters
    ----------
    values : (R, C) float32
    image_shape : (rows, columns)
    box : (row0, col0, rows, columns), optional
        Where a heatmap computed on a crop of the image belongs; outside is "no value".
    method : {"bilinear", "nearest"}
    source : str
        The heatmap's file, for messages.
    """
    if box is None:
        if values.shape != image_shape:
            warnings.warn(
                ResampledWarning(
                    f"{source}: heatmap shape {values.shape} differs from the image's "
                    f"{image_shape}; resized ({Resize(method).value})"
                ),
                stacklevel=3,
            )
            return resize_values(values, image_shape, method=method)
        return values
    row0, col0, rows, columns = box
    if (
        rows <= 0
        or columns <= 0
        or row0 < 0
        or col0 < 0
        or row0 + rows > image_shape[0]
        or col0 + columns > image_shape[1]
    ):
        raise GeometryError(f"heatmap box {box} does not fit in the image of shape {image_shape}")
    canvas = np.full(image_shape, np.nan, dtype=np.float32)
    fitted = (
        values
        if values.shape == (rows, columns)
        else resize_values(values, (rows, columns), method=method)
    )
    canvas[row0 : row0 + rows, col0 : col0 + columns] = fitted
    return canvas


def heatmap_on(
    heatmap: Heatmap | NDArray[Any],
    image: Volume,
    *,
    index: int | None = None,
    box: tuple[int, int, int, int] | None = None,
    resize: Resize | str = Resize.BILINEAR,
) -> Heatmap:
    """A heatmap on ``image``'s grid.

    Parameters
    ----------
    heatmap : Heatmap or (R, C) / (S, R, C) array
        With geometry (from NIfTI / NRRD): placed by world position, resampled linearly with a
        warning when the grids differ. Without geometry: a 3-D grid must have the image's
        shape (resized with a warning otherwise); a 2-D grid belongs to the stored slice
        ``image.array[index]`` (the middle one by default), optionally in ``box``, and the
        other slices get "no value" (NaN).
    image : Volume
    index : int, optional
        Stored slice of a 2-D heatmap.
    box : (row0, col0, rows, columns), optional
        Where a 2-D heatmap computed on a crop belongs.
    resize : {"bilinear", "nearest"}
        How a heatmap without geometry of another shape is fitted.

    Returns
    -------
    Heatmap
        (S, R, C) float32 on exactly ``image.affine``.

    Raises
    ------
    GeometryError
        If a heatmap with geometry does not overlap the image, or the slice / box lies outside.
    FormatError
        If a box is given for a 3-D heatmap.

    Examples
    --------
    >>> from radpipe.phantom import make_phantom
    >>> ct = make_phantom(shape=(24, 64, 64), tumours=1).ct
    >>> placed = heatmap_on(np.ones((64, 64)), ct, index=3)
    >>> placed.spatial_shape, int(np.isfinite(placed.array).sum())
    ((24, 64, 64), 4096)
    """
    given = heatmap if isinstance(heatmap, Heatmap) else Heatmap(heatmap, source="heatmap")
    name = f"heatmap {given.source}" if given.source else "heatmap"
    if given.has_geometry:
        if box is not None:
            raise FormatError(f"{given.source}: --heatmap-box applies to heatmaps without geometry")
        return _place_by_world(given, image, name=name, order=1, fill=np.nan)
    shape = image.spatial_shape
    if not given.is_2d:
        if box is not None:
            raise FormatError(f"{given.source}: --heatmap-box applies to 2-D heatmaps")
        values = given.array
        if values.shape != shape:
            warnings.warn(
                ResampledWarning(
                    f"{given.source or 'heatmap'}: shape {values.shape} differs from the "
                    f"image's {shape} and the heatmap has no geometry; resized to fit"
                ),
                stacklevel=2,
            )
            values = resize_values(values, shape, method=resize)
        return given.like(values, image.affine)
    k = shape[0] // 2 if index is None else index
    if not 0 <= k < shape[0]:
        raise GeometryError(f"slice {k} is outside 0..{shape[0] - 1}")
    full = np.full(shape, np.nan, dtype=np.float32)
    full[k] = place_plane(
        given.values, shape[1:], box=box, method=resize, source=given.source or "heatmap"
    )
    return given.like(full, image.affine)
