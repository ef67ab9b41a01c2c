"""Organ and tumour measurements as data: lesions by connected components (cc3d), their
volumes, RECIST-style diameters, surface and sphericity, intensity statistics, organ volumes
and the patient's tumour burden. Pure: arrays in, dataclasses out."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radpipe.errors import FormatError, GeometryError
from radpipe.masks import MaskSet
from radpipe.volume import Volume

#: Lesions smaller than this (mL) are listed apart as possible noise.
DEFAULT_MIN_VOLUME_ML = 0.1
PERCENTILES = (5, 25, 50, 75, 95)


@dataclass(frozen=True)
class Intensity:
    """Image values inside a region (HU for CT)."""

    mean: float
    std: float
    min: float
    max: float
    percentiles: dict[str, float]


@dataclass(frozen=True)
class Lesion:
    """One connected tumour component and its measurements."""

    lesion_id: int
    source: str
    voxels: int
    volume_ml: float
    centroid_mm: tuple[float, float, float]
    bbox: tuple[int, int, int, int, int, int]
    longest_axial_diameter_mm: float
    perpendicular_diameter_mm: float
    axial_slice: int
    longest_3d_diameter_mm: float
    surface_mm2: float
    sphericity: float
    intensity: Intensity | None
    organ: str | None
    fraction_in_organ: float
    small: bool

    def row(self) -> dict[str, Any]:
        """Flat dictionary for tables."""
        values = asdict(self)
        intensity = values.pop("intensity") or {}
        values["centroid_x_mm"], values["centroid_y_mm"], values["centroid_z_mm"] = values.pop(
            "centroid_mm"
        )
        values["bbox"] = " ".join(map(str, self.bbox))
        for name in ("mean", "std", "min", "max"):
            values[f"hu_{name}"] = intensity.get(name)
        for name, value in (intensity.get("percentiles") or {}).items():
            values[f"hu_{name}"] = value
        return values


@dataclass(frozen=True)
class Organ:
    """An organ mask's volume and intensity (and, for a contoured structure, the volume of its
    planar contours, which does not depend on the image grid)."""

    name: str
    voxels: int
    volume_ml: float
    intensity: Intensity | None
    contour_volume_ml: float | None = None


@dataclass
class PatientReport:
    """Everything measured for one patient."""

    patient: str
    organs: list[Organ]
    lesions: list[Lesion]
    small_lesions: list[Lesion]
    reference_organ: str | None
    tumour_count: int = 0
    total_tumour_volume_ml: float = 0.0
    tumour_burden_percent: float | None = None
    largest_lesion_ml: float | None = None
    reference_organ_volume_ml: float | None = None
    warnings: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        """Flat dictionary for the patients table."""
        row: dict[str, Any] = {
            "patient": self.patient,
            "tumour_count": self.tumour_count,
            "total_tumour_volume_ml": round(self.total_tumour_volume_ml, 4),
            "tumour_burden_percent": None
            if self.tumour_burden_percent is None
            else round(self.tumour_burden_percent, 4),
            "largest_lesion_ml": None
            if self.largest_lesion_ml is None
            else round(self.largest_lesion_ml, 4),
            "reference_organ": self.reference_organ,
            "reference_organ_volume_ml": None
            if self.reference_organ_volume_ml is None
            else round(self.reference_organ_volume_ml, 4),
            "small_lesions": len(self.small_lesions),
        }
        for organ in self.organs:
            row[f"{organ.name}_volume_ml"] = round(organ.volume_ml, 4)
            if organ.contour_volume_ml is not None:
                row[f"{organ.name}_contour_volume_ml"] = round(organ.contour_volume_ml, 4)
        return row


def intensity(values: NDArray[Any]) -> Intensity | None:
    """Statistics of the values (None when empty).

    Percentiles follow ``numpy.percentile`` (linear); large integer regions (organs) take them
    from a histogram of the values, which gives the same order statistics without sorting.
    """
    if values.size == 0:
        return None
    if np.issubdtype(values.dtype, np.integer) and values.size > 100_000:
        return _integer_intensity(values)
    data = values.astype(np.float64)
    quantiles = np.percentile(data, PERCENTILES)
    return Intensity(
        mean=float(data.mean()),
        std=float(data.std()),
        min=float(data.min()),
        max=float(data.max()),
        percentiles={f"p{p}": float(q) for p, q in zip(PERCENTILES, quantiles, strict=True)},
    )


def _integer_intensity(values: NDArray[Any]) -> Intensity:
    low = int(values.min())
    counts = np.bincount((values.astype(np.int64) - low).ravel())
    levels = np.arange(low, low + counts.size, dtype=np.float64)
    total = int(counts.sum())
    mean = float(np.dot(counts, levels) / total)
    std = float(np.sqrt(max(0.0, np.dot(counts, (levels - mean) ** 2) / total)))
    cumulative = np.cumsum(counts)

    def order_statistic(rank: int) -> float:  # the rank-th smallest value, 0-based
        return float(levels[int(np.searchsorted(cumulative, rank, side="right"))])

    quantiles = {}
    for p in PERCENTILES:
        position = p / 100 * (total - 1)
        below = math.floor(position)
        fraction = position - below
        lower = order_statistic(below)
        upper = order_statistic(min(below + 1, total - 1))
        quantiles[f"p{p}"] = lower + (upper - lower) * fraction
    return Intensity(
        mean=mean, std=std, min=float(low), max=float(levels[-1]), percentiles=quantiles
    )


def _feret(points: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
    """Largest distance between points (via the convex hull) and its direction."""
    if len(points) < 2:
        return 0.0, np.zeros(points.shape[1])
    candidates = points
    if len(points) > 3 + points.shape[1]:
        from scipy.spatial import ConvexHull, QhullError

        try:
            candidates = points[ConvexHull(points).vertices]
        except QhullError:  # flat or degenerate: every point is a candidate
            candidates = points
    if len(candidates) > 3000:
        candidates = candidates[:: len(candidates) // 3000 + 1]
    differences = candidates[:, None, :] - candidates[None, :, :]
    distances = np.einsum("ijk,ijk->ij", differences, differences)
    i, j = np.unravel_index(int(np.argmax(distances)), distances.shape)
    return float(math.sqrt(distances[i, j])), candidates[i] - candidates[j]


def _boundary(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    from scipy import ndimage

    edge: NDArray[np.bool_] = mask & ~ndimage.binary_erosion(mask)
    return edge


def axial_diameters(
    mask: NDArray[np.bool_], spacing: tuple[float, float, float]
) -> tuple[float, float, int]:
    """RECIST-style longest in-plane diameter (mm, between voxel centres), the lesion's width
    perpendicular to it on the same slice, and that slice's index within ``mask``."""
    best = (0.0, 0.0, 0)
    for k in np.nonzero(mask.any(axis=(1, 2)))[0]:
        rows, columns = np.nonzero(_boundary(mask[k]))
        points = np.column_stack([rows * spacing[1], columns * spacing[2]]).astype(np.float64)
        longest, direction = _feret(points)
        if longest > best[0]:
            normal = np.array([-direction[1], direction[0]]) / (np.linalg.norm(direction) or 1.0)
            projection = points @ normal
            best = (longest, float(projection.max() - projection.min()), int(k))
    return best


def surface_and_sphericity(
    mask: NDArray[np.bool_], spacing: tuple[float, float, float], volume_mm3: float
) -> tuple[float, float]:
    """Surface area (mm², marching cubes on the mask) and sphericity π^⅓ (6V)^⅔ / A."""
    from skimage import measure

    padded = np.pad(mask.astype(np.uint8), 1)
    if padded.sum() == 0:
        return 0.0, 0.0
    vertices, faces, _, _ = measure.marching_cubes(padded, level=0.5, spacing=spacing)
    area = float(measure.mesh_surface_area(vertices, faces))
    sphericity = (math.pi ** (1 / 3)) * (6 * volume_mm3) ** (2 / 3) / area if area > 0 else 0.0
    return area, float(sphericity)


def find_lesions(
    image: Volume,
    tumours: dict[str, NDArray[np.bool_]],
    *,
    organs: dict[str, NDArray[np.bool_]] | None = None,
    connectivity: int = 26,
    min_volume_ml: float = DEFAULT_MIN_VOLUME_ML,
) -> tuple[list[Lesion], list[Lesion]]:
    """Lesions of every tumour mask (each mask's components counted on their own).

    Parameters
    ----------
    image : Volume
        Gives the geometry and the intensities.
    tumours : name → (S, R, C) bool
        One mask ("tumor") or several (3D-IRCADb's ``livertumor01`` …).
    organs : name → (S, R, C) bool, optional
        Where each lesion lies is the organ holding most of its voxels (pass organs with
        their tumour holes filled, as :func:`analyse_patient` does).
    connectivity : {6, 18, 26}
    min_volume_ml : float

    Returns
    -------
    lesions, small_lesions : lists of Lesion
        Lesions below ``min_volume_ml`` are in the second list (flagged ``small``).
    """
    import cc3d

    if connectivity not in (6, 18, 26):
        raise GeometryError(f"connectivity must be 6, 18 or 26, got {connectivity}")
    spacing = image.spacing
    voxel_ml = image.voxel_volume_mm3 / 1000.0
    values = image.array if image.array.ndim == 3 else None
    kept: list[Lesion] = []
    small: list[Lesion] = []
    number = 0
    for source, mask in tumours.items():
        if mask.shape != image.spatial_shape:
            raise GeometryError(
                f"tumour mask {source!r} has shape {mask.shape}, the image {image.spatial_shape}"
            )
        labels = cc3d.connected_components(mask.astype(np.uint8), connectivity=connectivity)  # type: ignore[call-overload]
        stats = cc3d.statistics(labels)
        boxes = stats["bounding_boxes"]
        counts = stats["voxel_counts"]
        centroids = stats["centroids"]
        for component in range(1, len(counts)):
            if counts[component] == 0:
                continue
            number += 1
            box = boxes[component]
            crop = labels[box] == component
            voxels = int(counts[component])
            volume_ml = voxels * voxel_ml
            longest, perpendicular, axial = axial_diameters(crop, spacing)
            corners = np.argwhere(_boundary(crop)) * np.array(spacing)
            longest_3d, _ = _feret(corners.astype(np.float64))
            area, sphericity = surface_and_sphericity(crop, spacing, volume_ml * 1000)
            inside = values[box][crop] if values is not None else np.empty(0)
            organ_name, fraction = None, 0.0
            for name, organ_mask in (organs or {}).items():
                share = float(organ_mask[box][crop].mean())
                if share > fraction:
                    organ_name, fraction = name, share
            lesion = Lesion(
                lesion_id=number,
                source=source,
                voxels=voxels,
                volume_ml=volume_ml,
                centroid_mm=tuple(float(v) for v in image.index_to_world(centroids[component])),  # type: ignore[arg-type]
                bbox=(
                    box[0].start,
                    box[0].stop,
                    box[1].start,
                    box[1].stop,
                    box[2].start,
                    box[2].stop,
                ),
                longest_axial_diameter_mm=longest,
                perpendicular_diameter_mm=perpendicular,
                axial_slice=box[0].start + axial,
                longest_3d_diameter_mm=longest_3d,
                surface_mm2=area,
                sphericity=sphericity,
                intensity=intensity(inside),
                organ=organ_name,
                fraction_in_organ=fraction,
                small=volume_ml < min_volume_ml,
            )
            (small if lesion.small else kept).append(lesion)
    kept.sort(key=lambda lesion: -lesion.volume_ml)
    small.sort(key=lambda lesion: -lesion.volume_ml)
    # numbered in the order they are listed: largest first, possible noise after
    ordered = [
        dataclasses.replace(lesion, lesion_id=number)
        for number, lesion in enumerate(kept + small, start=1)
    ]
    return ordered[: len(kept)], ordered[len(kept) :]


def analyse_patient(
    patient: str,
    image: Volume,
    *,
    organs: dict[str, NDArray[np.bool_]],
    tumours: dict[str, NDArray[np.bool_]],
    reference_organ: str | None = None,
    connectivity: int = 26,
    min_volume_ml: float = DEFAULT_MIN_VOLUME_ML,
) -> PatientReport:
    """Organ volumes, lesions and the tumour burden of one patient.

    The burden is tumour volume / organ volume × 100, where the organ is ``reference_organ``
    (by default the organ most lesions lie in, else ``liver`` if present, else the first)
    and its volume includes the tumours inside it (a liver mask with holes where tumours are
    is filled back with them).

    Raises
    ------
    FormatError
        If ``min_volume_ml`` is negative or not a number, or ``connectivity`` not 6, 18 or 26.
    """
    if not (math.isfinite(min_volume_ml) and min_volume_ml >= 0):
        raise FormatError(f"--min-volume must be a volume in mL ≥ 0, got {min_volume_ml}")
    if connectivity not in (6, 18, 26):
        raise FormatError(f"--connectivity must be 6, 18 or 26, got {connectivity}")
    voxel_ml = image.voxel_volume_mm3 / 1000.0
    values = image.array if image.array.ndim == 3 else None
    organ_reports = [
        Organ(
            name=name,
            voxels=int(mask.sum()),
            volume_ml=int(mask.sum()) * voxel_ml,
            intensity=intensity(values[mask]) if values is not None else None,
        )
        for name, mask in organs.items()
    ]
    tumour_slices = np.zeros(image.spatial_shape[0], dtype=bool)
    for mask in tumours.values():
        tumour_slices |= mask.any(axis=(1, 2))
    filled = {name: _filled_hull(mask, tumour_slices) for name, mask in organs.items()}
    lesions, small = find_lesions(
        image, tumours, organs=filled, connectivity=connectivity, min_volume_ml=min_volume_ml
    )
    report = PatientReport(patient, organ_reports, lesions, small, reference_organ)
    report.tumour_count = len(lesions)
    report.total_tumour_volume_ml = float(sum(lesion.volume_ml for lesion in lesions))
    report.largest_lesion_ml = lesions[0].volume_ml if lesions else None
    if report.reference_organ is None and organs:
        homes = [lesion.organ for lesion in lesions if lesion.organ]
        report.reference_organ = (
            max(set(homes), key=homes.count)
            if homes
            else ("liver" if "liver" in organs else next(iter(organs)))
        )
    if report.reference_organ in organs:
        union = organs[report.reference_organ].copy()
        for mask in tumours.values():
            union |= mask & filled[report.reference_organ]
        organ_ml = int(union.sum()) * voxel_ml
        report.reference_organ_volume_ml = organ_ml
        if organ_ml > 0:
            report.tumour_burden_percent = 100.0 * report.total_tumour_volume_ml / organ_ml
    elif report.reference_organ is not None:
        report.warnings.append(
            f"no organ mask named {report.reference_organ!r}; burden not computed"
        )
    return report


def analyse_masks(
    patient: str,
    image: Volume,
    masks: MaskSet,
    *,
    reference_organ: str | None = None,
    connectivity: int = 26,
    min_volume_ml: float = DEFAULT_MIN_VOLUME_ML,
) -> PatientReport:
    """:func:`analyse_patient` on named masks: tumours recognised by name (``tumor``,
    ``livertumor01``, ``GTV``), the rest organs; the masks' contour problems become warnings."""
    organs, tumours = masks.split()
    report = analyse_patient(
        patient, image, organs=organs, tumours=tumours, reference_organ=reference_organ,
        connectivity=connectivity, min_volume_ml=min_volume_ml,
    )  # fmt: skip
    report.organs = [
        dataclasses.replace(organ, contour_volume_ml=masks.contour_volumes_ml.get(organ.name))
        for organ in report.organs
    ]
    report.warnings.extend(f"{problem.where}: {problem.reason}" for problem in masks.problems)
    report.warnings.extend(image.meta.warnings)  # missing slices, duplicates, tilt: in the report
    return report


def _filled_hull(mask: NDArray[np.bool_], slices: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The organ with its holes filled slice by slice (tumours cut out of a liver mask), on
    the slices that hold tumours (the only ones where it is used)."""
    from scipy import ndimage

    filled: NDArray[np.bool_] = mask.copy()
    for k in np.nonzero(slices & mask.any(axis=(1, 2)))[0]:
        filled[k] = ndimage.binary_fill_holes(mask[k])
    return filled


def cohort_summary(reports: list[PatientReport]) -> dict[str, Any]:
    """Count, mean, median and range of tumour counts, volumes and burden over patients."""

    def describe(values: list[float]) -> dict[str, float | int | None]:
        if not values:
            return {"n": 0, "mean": None, "median": None, "min": None, "max": None}
        data = np.asarray(values, dtype=np.float64)
        return {
            "n": len(values),
            "mean": float(data.mean()),
            "median": float(np.median(data)),
            "min": float(data.min()),
            "max": float(data.max()),
        }

    return {
        "patients": len(reports),
        "tumour_count": describe([float(r.tumour_count) for r in reports]),
        "total_tumour_volume_ml": describe([r.total_tumour_volume_ml for r in reports]),
        "tumour_burden_percent": describe(
            [r.tumour_burden_percent for r in reports if r.tumour_burden_percent is not None]
        ),
        "lesion_volume_ml": describe([lesion.volume_ml for r in reports for lesion in r.lesions]),
    }
