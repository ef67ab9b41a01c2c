"""The core types: ``Volume`` (an array on an index-to-LPS affine), its ``VolumeMeta`` record,
``LabelMap`` (integer labels with names) and ``Heatmap`` (model output values). Each keeps its type,
names and affine through every operation that returns a new one."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from radpipe import geometry
from radpipe.errors import GeometryError

if TYPE_CHECKING:
    import nibabel
    import SimpleITK


@dataclass(frozen=True)
class VolumeMeta:
    """What a volume is, as a small typed record (not a header dump).

    Patient identifiers (``patient_id``, ``patient_name``, ``patient_birth_date``,
    ``accession_number``, ``institution``) stay on the machine: exports use
    :func:`radpipe.privacy.pseudonym` instead unless the user asks otherwise.
    """

    modality: str | None = None
    patient_id: str | None = None
    patient_name: str | None = None
    patient_birth_date: str | None = None
    accession_number: str | None = None
    institution: str | None = None
    study_uid: str | None = None
    study_date: str | None = None
    study_description: str | None = None
    series_uid: str | None = None
    series_number: int | None = None
    series_description: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    body_part: str | None = None
    image_type: tuple[str, ...] = ()
    photometric: str | None = None
    units: str | None = None
    rescale_slope: float | None = None
    rescale_intercept: float | None = None
    window_center: tuple[float, ...] = ()
    window_width: tuple[float, ...] = ()
    slice_thickness_mm: float | None = None
    slice_spacing_regular: bool | None = None
    gantry_tilt_deg: float = 0.0
    extra_axis: str | None = None
    slice_timing_s: tuple[float, ...] = ()
    phase_encoding_direction: str | None = None
    source_format: str | None = None
    source_files: tuple[str, ...] = ()
    skipped_files: int = 0
    warnings: tuple[str, ...] = ()
    header: Any = field(default=None, repr=False, compare=False)

    def replace(self, **changes: Any) -> VolumeMeta:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)


class Volume:
    """A 3-D image (optionally with a trailing channel / time axis) on an LPS affine.

    Parameters
    ----------
    array : (S, R, C) or (S, R, C, N) array_like
        Voxels in DICOM order: slice, row, column, then an optional channel (RGB) or time axis.
    affine : (4, 4) array_like
        Maps ``(k, j, i, 1)`` to patient coordinates in LPS mm. Validated and copied.
    meta : VolumeMeta, optional
        What the volume is; empty when omitted.

    Examples
    --------
    >>> axial = [[0, 0, 0.7, 0], [0, 0.7, 0, 0], [2.5, 0, 0, 0], [0, 0, 0, 1]]
    >>> vol = Volume(np.zeros((2, 3, 4), np.int16), axial)
    >>> vol.spacing
    (2.5, 0.7, 0.7)
    >>> vol.orientation_code
    'LPS'
    """

    __slots__ = ("_affine", "_array", "meta")

    def __init__(self, array: ArrayLike, affine: ArrayLike, *, meta: VolumeMeta | None = None):
        data = np.asarray(array)
        if data.ndim not in (3, 4):
            raise GeometryError(
                f"a Volume needs 3 spatial axes (slice, row, column) and at most one more, "
                f"got an array of shape {data.shape}"
            )
        self._array = data
        self._affine = geometry.check_affine(affine)
        self._affine.setflags(write=False)
        self.meta = meta if meta is not None else VolumeMeta()

    @property
    def array(self) -> NDArray[Any]:
        """The voxel array, (S, R, C[, N])."""
        return self._array

    @property
    def affine(self) -> NDArray[np.float64]:
        """Read-only (4, 4) index-to-LPS affine."""
        return self._affine

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the whole array."""
        return tuple(int(n) for n in self._array.shape)

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """Number of slices, rows and columns."""
        s, r, c = self._array.shape[:3]
        return (int(s), int(r), int(c))

    @property
    def dtype(self) -> np.dtype[Any]:
        """Voxel data type."""
        return self._array.dtype

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel spacing in mm along slice, row and column."""
        return geometry.spacing_of(self._affine)

    @property
    def direction(self) -> NDArray[np.float64]:
        """(3, 3) unit direction of each array axis as columns (slice, row, column)."""
        return geometry.direction_of(self._affine)

    @property
    def origin(self) -> tuple[float, float, float]:
        """LPS position (x, y, z) in mm of voxel (0, 0, 0)."""
        x, y, z = self._affine[:3, 3]
        return (float(x), float(y), float(z))

    @property
    def orientation_code(self) -> str:
        """Directions of the column, row and slice axes, e.g. ``"LPS"`` (see geometry)."""
        return geometry.orientation_code(self._affine)

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel in mm³ (exact for sheared affines too)."""
        return float(abs(np.linalg.det(self._affine[:3, :3])))

    def index_to_world(self, indices: ArrayLike) -> NDArray[np.float64]:
        """Map (slice, row, column) indices ``(..., 3)`` to LPS mm."""
        return geometry.index_to_world(self._affine, indices)

    def world_to_index(self, points: ArrayLike) -> NDArray[np.float64]:
        """Map LPS mm points ``(..., 3)`` to fractional (slice, row, column) indices."""
        return geometry.world_to_index(self._affine, points)

    def like(
        self, array: ArrayLike, affine: ArrayLike | None = None, *, meta: VolumeMeta | None = None
    ) -> Self:
        """An object of this type (label names, heatmap source kept) holding ``array``.

        Parameters
        ----------
        array : (S, R, C[, N]) array_like
        affine : (4, 4) array_like, optional
            The new geometry; this object's affine by default.
        meta : VolumeMeta, optional
            This object's meta by default.
        """
        return type(self)(
            array,
            self._affine if affine is None else affine,
            meta=self.meta if meta is None else meta,
        )

    def with_array(self, array: ArrayLike, *, meta: VolumeMeta | None = None) -> Self:
        """The same type and geometry (and meta unless given) holding ``array``."""
        data = np.asarray(array)
        if data.shape[:3] != self._array.shape[:3]:
            raise GeometryError(
                f"new array's spatial shape {data.shape[:3]} differs from {self.spatial_shape}"
            )
        return self.like(data, meta=meta)

    def reoriented(self, code: str = "LPS") -> Self:
        """The same voxels transposed / flipped so the axes point as ``code`` says.

        No interpolation: every voxel keeps its value and its world position; the result has
        this object's type (a ``LabelMap`` keeps its names).
        """
        order, flips, new_affine = geometry.reorientation(self._affine, self.spatial_shape, code)
        if list(order) == [0, 1, 2] and not any(flips):
            return self
        data = np.transpose(self._array, (*order, *range(3, self._array.ndim)))
        index = tuple(slice(None, None, -1) if flip else slice(None) for flip in flips)
        return self.like(np.ascontiguousarray(data[index]), new_affine)

    @property
    def source_name(self) -> str:
        """Where the volume came from (its first source file or folder), for messages."""
        files = self.meta.source_files
        if not files:
            return "the volume"
        first = str(files[0])
        return first if len(files) == 1 else first.rsplit("/", 1)[0]

    def require_grey(self, purpose: str) -> None:
        """Refuse a volume with a fourth axis other than RGB colour, naming it.

        Raises
        ------
        FormatError
            ``"<source>: has 4 images per position (time); <purpose> needs (S, R, C)…"``
        """
        from radpipe.errors import FormatError

        if self._array.ndim == 4 and not (
            self._array.shape[3] == 3 and self.meta.extra_axis == "rgb"
        ):
            axis = self.meta.extra_axis or "a fourth axis"
            raise FormatError(
                f"{self.source_name}: has {self._array.shape[3]} images per position ({axis}); "
                f"{purpose} needs one 3-D volume (slice, row, column) — convert one of them first"
            )

    def same_grid(self, other: Volume, *, atol_mm: float = 1e-3) -> bool:
        """Whether ``other`` has the same voxels in the same world places (shape and affine)."""
        return geometry.same_grid(
            self._affine, self.spatial_shape, other.affine, other.spatial_shape, atol_mm=atol_mm
        )

    def describe_grid(self) -> str:
        """Shape, spacing, origin and orientation in one phrase, for error messages."""
        spacing = ", ".join(f"{v:.4g}" for v in self.spacing)
        origin = ", ".join(f"{v:.2f}" for v in self.origin)
        return (
            f"shape {self.spatial_shape}, spacing ({spacing}) mm, origin ({origin}) mm, "
            f"orientation {self.orientation_code}"
        )

    def to_sitk(self) -> SimpleITK.Image:
        """Convert to a SimpleITK image (a trailing axis becomes the vector components)."""
        import SimpleITK as sitk

        is_vector = self._array.ndim == 4
        image = sitk.GetImageFromArray(self._array, isVector=is_vector)
        s, r, c = self.spacing
        image.SetSpacing((c, r, s))
        image.SetOrigin(self.origin)
        direction = self.direction[:, ::-1]  # ITK axes are column, row, slice
        image.SetDirection(tuple(float(v) for v in direction.ravel()))
        return image

    @classmethod
    def from_sitk(cls, image: SimpleITK.Image, *, meta: VolumeMeta | None = None) -> Volume:
        """Build a Volume from a 3-D SimpleITK image (LPS, like radpipe)."""
        import SimpleITK as sitk

        if image.GetDimension() != 3:
            raise GeometryError(f"expected a 3-D SimpleITK image, got {image.GetDimension()}-D")
        array = sitk.GetArrayFromImage(image)
        direction = np.array(image.GetDirection(), dtype=np.float64).reshape(3, 3)[:, ::-1]
        spacing = np.array(image.GetSpacing(), dtype=np.float64)[::-1]
        affine = np.eye(4)
        affine[:3, :3] = direction * spacing
        affine[:3, 3] = image.GetOrigin()
        return cls(array, affine, meta=meta)

    def to_nibabel(self) -> nibabel.Nifti1Image:
        """Convert to a nibabel NIfTI-1 image: axes (i, j, k[, n]) on a RAS affine."""
        import nibabel as nib

        data = np.transpose(self._array, (2, 1, 0, *range(3, self._array.ndim)))
        ras = geometry.affine_to_ras_ijk(self._affine)
        image = nib.Nifti1Image(data, ras)
        image.set_sform(ras, code=1)
        image.set_qform(ras, code=1)
        return image

    @classmethod
    def from_nibabel(cls, image: Any, *, meta: VolumeMeta | None = None) -> Volume:
        """Build a Volume from any nibabel spatial image (NIfTI, Analyze, MINC, ...).

        Scaling stored in the header is applied; integer data with identity scaling keeps its
        integer type.
        """
        proxy = image.dataobj
        slope = getattr(proxy, "slope", 1.0)
        inter = getattr(proxy, "inter", 0.0)
        if slope == 1.0 and inter == 0.0 and hasattr(proxy, "dtype"):
            data = np.asarray(proxy)
        else:
            data = np.asarray(image.get_fdata(dtype=np.float32))
        if data.ndim < 3:
            data = data.reshape(data.shape + (1,) * (3 - data.ndim))
        if data.ndim > 4:
            extra = int(np.prod(data.shape[3:]))
            data = data.reshape(*data.shape[:3], extra)
        array = np.transpose(data, (2, 1, 0, *range(3, data.ndim)))
        affine = geometry.affine_from_ras_ijk(image.affine)
        return cls(np.ascontiguousarray(array), affine, meta=meta)

    def __repr__(self) -> str:
        spacing = ", ".join(f"{v:.4g}" for v in self.spacing)
        return (
            f"{type(self).__name__}(shape={self.shape}, dtype={self.dtype}, "
            f"spacing=({spacing}) mm, orientation={self.orientation_code}, "
            f"modality={self.meta.modality})"
        )


#: More distinct values than this make a "label map" an image (whole-body atlases hold ~200).
MAX_LABEL_COUNT = 1000


class LabelMap(Volume):
    """Integer labels on the geometry of the image they annotate.

    Parameters
    ----------
    array : (S, R, C) integer array_like
        0 is background.
    affine : (4, 4) array_like
    labels : mapping of int to str, optional
        Names of the labels, e.g. ``{1: "liver", 2: "tumor"}``.
    meta : VolumeMeta, optional
    """

    __slots__ = ("labels",)

    def __init__(
        self,
        array: ArrayLike,
        affine: ArrayLike,
        *,
        labels: Mapping[int, str] | None = None,
        meta: VolumeMeta | None = None,
    ):
        data = np.asarray(array)
        if data.ndim != 3:
            raise GeometryError(f"a LabelMap is (slice, row, column), got shape {data.shape}")
        if data.dtype == np.bool_:
            data = data.astype(np.uint8)
        if not np.issubdtype(data.dtype, np.integer):
            raise GeometryError(f"a LabelMap needs integer labels, got dtype {data.dtype}")
        super().__init__(data, affine, meta=meta)
        self.labels: dict[int, str] = {int(k): str(v) for k, v in (labels or {}).items()}

    def like(
        self, array: ArrayLike, affine: ArrayLike | None = None, *, meta: VolumeMeta | None = None
    ) -> Self:
        """A label map with these names holding ``array`` (see :meth:`Volume.like`)."""
        return type(self)(
            array,
            self._affine if affine is None else affine,
            labels=self.labels,
            meta=self.meta if meta is None else meta,
        )

    @classmethod
    def from_volume(cls, volume: Volume, *, labels: Mapping[int, str] | None = None) -> LabelMap:
        """A label map of a volume's integer values (names kept from a LabelMap unless given).

        Raises
        ------
        GeometryError
            If the values are not whole numbers (NaN, 1.46) or the volume has a fourth axis.
        """
        if isinstance(volume, LabelMap) and labels is None:
            return volume
        data = volume.array
        if data.ndim != 3:
            raise GeometryError(f"a label map is (slice, row, column), got shape {data.shape}")
        if not np.issubdtype(data.dtype, np.integer) and data.dtype != np.bool_:
            finite = np.isfinite(data)
            if not finite.all():
                raise GeometryError(
                    f"label values must be whole numbers; {int((~finite).sum())} voxel(s) are "
                    "NaN or infinite"
                )
            rounded = np.rint(data)
            if not np.array_equal(rounded, data):
                odd = np.unique(data[rounded != data])[:5]
                raise GeometryError(
                    f"label values must be whole numbers, found {odd.tolist()}; is this an "
                    "image or a probability map rather than a label map?"
                )
            if rounded.min() < 0 or rounded.max() > np.iinfo(np.int32).max:
                raise GeometryError("label values must lie between 0 and 2147483647")
            data = rounded.astype(np.int32 if rounded.max() > 65535 else np.uint16)
        if data.dtype != np.bool_ and data.size:
            low, high = int(data.min()), int(data.max())
            if low < 0:
                raise GeometryError(
                    f"label values must not be negative (found {low}); is this an image (CT in "
                    "HU) rather than a label map?"
                )
            if high > MAX_LABEL_COUNT:
                counts = np.unique(data).size
            else:
                counts = int(np.count_nonzero(np.bincount(data.ravel(), minlength=1)))
            if counts > MAX_LABEL_COUNT:
                raise GeometryError(
                    f"{counts} different values: more than a label map holds "
                    f"({MAX_LABEL_COUNT} at most); is this an image rather than a label map?"
                )
        names = labels if labels is not None else getattr(volume, "labels", None)
        return cls(data, volume.affine, labels=names, meta=volume.meta)

    def voxel_count(self, label: int) -> int:
        """Number of voxels carrying ``label``."""
        return int(np.count_nonzero(self._array == label))

    def present(self) -> list[int]:
        """The non-zero labels that occur, in increasing order."""
        return [int(v) for v in np.unique(self._array) if v != 0]

    def name_of(self, label: int) -> str:
        """The label's name, or ``"label N"`` when it has none."""
        return self.labels.get(int(label), f"label {int(label)}")

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, labels={self.labels})"


class Heatmap(Volume):
    """Model output values (probabilities, saliency) for an image or a volume.

    A heatmap read from a file with geometry (NIfTI, NRRD) carries its affine and is placed on
    an image by world position. One from a plain grid of numbers (JSON, CSV, NPY, PNG) has no
    geometry (``has_geometry`` is False, identity affine): it is placed by index, a 2-D one on one
    stored slice of the image.

    Parameters
    ----------
    values : (R, C) or (S, R, C) array_like
        Converted to float32; NaN or ±inf mark "no value". A 2-D grid is kept as one slice.
    affine : (4, 4) array_like, optional
        Index-to-LPS geometry; None when the values come without one.
    source : str
        Where the values came from (a file name), for messages.
    meta : VolumeMeta, optional

    Examples
    --------
    >>> heat = Heatmap(np.zeros((4, 5)), source="model.json")
    >>> heat.values.shape, heat.has_geometry
    ((4, 5), False)
    """

    __slots__ = ("has_geometry", "is_2d", "source")

    def __init__(
        self,
        values: ArrayLike,
        affine: ArrayLike | None = None,
        *,
        source: str = "",
        meta: VolumeMeta | None = None,
    ):
        data = np.asarray(values, dtype=np.float32)
        self.is_2d = data.ndim == 2
        if self.is_2d:
            data = data[None]
        if data.ndim != 3:
            raise GeometryError(
                f"{source or 'heatmap'}: a heatmap is 2-D (rows, columns) or 3-D (slice, row, "
                f"column), got shape {data.shape}"
            )
        self.has_geometry = affine is not None
        super().__init__(data, np.eye(4) if affine is None else affine, meta=meta)
        self.source = source

    def like(
        self, array: ArrayLike, affine: ArrayLike | None = None, *, meta: VolumeMeta | None = None
    ) -> Self:
        """A heatmap from the same source holding ``array`` (see :meth:`Volume.like`)."""
        has_geometry = self.has_geometry or affine is not None
        result = type(self)(
            array,
            (self._affine if affine is None else affine) if has_geometry else None,
            source=self.source,
            meta=self.meta if meta is None else meta,
        )
        return result

    @property
    def values(self) -> NDArray[np.float32]:
        """The values: (R, C) for a 2-D heatmap, else (S, R, C)."""
        data: NDArray[np.float32] = self._array[0] if self.is_2d else self._array
        return data

    @property
    def value_range(self) -> tuple[float, float]:
        """Smallest and largest finite value (NaN, NaN when there is none)."""
        finite = self._array[np.isfinite(self._array)]
        if finite.size == 0:
            return (float("nan"), float("nan"))
        return (float(finite.min()), float(finite.max()))

    def __repr__(self) -> str:
        return (
            f"Heatmap(shape={self.values.shape}, source={self.source!r}, "
            f"geometry={'yes' if self.has_geometry else 'no'}, range={self.value_range})"
        )
