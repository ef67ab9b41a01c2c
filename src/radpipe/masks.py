"""Masks as arrays: polygons rasterised at pixel centres (even-odd rule), contour checks, and
named binary masks on one image's geometry. Pure NumPy. Putting a mask on an image's grid is
``radpipe.placement.labels_on``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from radpipe.volume import LabelMap

#: Mask names that denote a tumour rather than an organ.
TUMOUR_NAME = re.compile(r"tum|lesion|gtv|metast|nodule|cancer|mass", re.IGNORECASE)

#: A contour covering more than this fraction of its image is suspicious (often a frame).
LARGE_CONTOUR_FRACTION = 0.9


def rasterize_polygon(points: ArrayLike, shape: tuple[int, int]) -> NDArray[np.bool_]:
    """Pixels inside a closed polygon, as scikit-image's ``draw.polygon2mask`` decides.

    Parameters
    ----------
    points : (N, 2) array_like
        Vertices as ``(x, y)`` = (column, row) in pixel units; pixel (r, c) has its centre at
        ``x = c, y = r``. The polygon is closed implicitly.
    shape : (rows, columns)

    Returns
    -------
    (rows, columns) bool
        scikit-image's rule exactly (centres inside, and centres on the outline, count), so
        radpipe's masks equal what other tools built on scikit-image draw; fewer than 3
        vertices give an empty mask.

    Examples
    --------
    >>> rasterize_polygon([(0.5, 0.5), (3.5, 0.5), (3.5, 2.5), (0.5, 2.5)], (4, 5)).sum()
    np.int64(6)
    """
    from skimage.draw import polygon2mask

    vertices = np.asarray(points, dtype=np.float64)
    if vertices.ndim != 2 or vertices.shape[0] < 3:
        return np.zeros(shape, dtype=bool)
    mask: NDArray[np.bool_] = polygon2mask(shape, vertices[:, ::-1])
    return mask


def rasterize_contours(
    polygons: list[NDArray[np.float64]], shape: tuple[int, int]
) -> NDArray[np.bool_]:
    """Several closed contours of one slice combined by the even-odd rule (holes, nesting)."""
    mask = np.zeros(shape, dtype=bool)
    for polygon in polygons:
        mask ^= rasterize_polygon(polygon, shape)
    return mask


@dataclass(frozen=True)
class ContourProblem:
    """Something wrong with a contour, and where."""

    where: str
    reason: str


def check_contour(points: ArrayLike, shape: tuple[int, int], where: str) -> list[ContourProblem]:
    """Problems of one contour: too few points, outside the image, self-crossing, too large."""
    vertices = np.asarray(points, dtype=np.float64)
    problems: list[ContourProblem] = []
    if vertices.ndim != 2 or vertices.shape[0] < 3:
        return [ContourProblem(where, f"{len(vertices)} point(s); a contour needs at least 3")]
    rows, columns = shape
    outside = (
        (vertices[:, 0] < -0.5)
        | (vertices[:, 0] > columns - 0.5)
        | (vertices[:, 1] < -0.5)
        | (vertices[:, 1] > rows - 0.5)
    )
    if outside.any():
        problems.append(
            ContourProblem(where, f"{int(outside.sum())} point(s) lie outside the image")
        )
    if len(vertices) <= 2000 and _self_intersects(vertices):
        problems.append(ContourProblem(where, "the contour crosses itself"))
    area = rasterize_polygon(vertices, shape).mean()
    if area > LARGE_CONTOUR_FRACTION:
        problems.append(ContourProblem(where, f"covers {area:.0%} of the image"))
    return problems


def _self_intersects(vertices: NDArray[np.float64]) -> bool:
    """Whether two non-adjacent edges of a closed polygon properly intersect."""
    a = vertices
    b = np.roll(vertices, -1, axis=0)
    n = len(a)

    def orient(
        p: NDArray[np.float64], q: NDArray[np.float64], r: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        return (q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (
            r[..., 0] - p[..., 0]
        )

    for i in range(n):
        j = np.arange(i + 2, n)
        if i == 0:
            j = j[j != n - 1]
        if j.size == 0:
            continue
        d1 = orient(a[i], b[i], a[j])
        d2 = orient(a[i], b[i], b[j])
        d3 = orient(a[j], b[j], a[i][None, :])
        d4 = orient(a[j], b[j], b[i][None, :])
        if np.any((d1 * d2 < 0) & (d3 * d4 < 0)):
            return True
    return False


def is_tumour(name: str) -> bool:
    """Whether a mask name denotes a tumour (``tumor``, ``livertumor01``, ``GTV-1`` …)."""
    return bool(TUMOUR_NAME.search(name))


@dataclass
class MaskSet:
    """Named binary masks on one image's geometry (they may overlap), and what went wrong.

    Attributes
    ----------
    affine : (4, 4) float64
        The image's affine; every mask is (S, R, C) on it.
    masks : dict of str to (S, R, C) bool
    problems : list of ContourProblem
    """

    affine: NDArray[np.float64]
    masks: dict[str, NDArray[np.bool_]]
    problems: list[ContourProblem]
    contour_volumes_ml: dict[str, float] = field(default_factory=dict)
    """Planar-contour volumes (mL) of contour-based masks (RTSTRUCT), independent of the grid."""

    def voxel_counts(self) -> dict[str, int]:
        """Voxels in each mask."""
        return {name: int(mask.sum()) for name, mask in self.masks.items()}

    def split(self) -> tuple[dict[str, NDArray[np.bool_]], dict[str, NDArray[np.bool_]]]:
        """(organs, tumours) by mask name (see :func:`is_tumour`)."""
        organs = {n: m for n, m in self.masks.items() if not is_tumour(n)}
        tumours = {n: m for n, m in self.masks.items() if is_tumour(n)}
        return organs, tumours

    def to_labelmap(self) -> LabelMap:
        """One label per mask in order (1, 2, …); later masks win where they overlap."""
        shape = next(iter(self.masks.values())).shape if self.masks else (1, 1, 1)
        labels = np.zeros(shape, dtype=np.uint16 if len(self.masks) > 255 else np.uint8)
        names = {}
        for number, (name, mask) in enumerate(self.masks.items(), start=1):
            labels[mask] = number
            names[number] = name
        return LabelMap(labels, self.affine, labels=names)


def masks_from_labelmap(labels: LabelMap) -> MaskSet:
    """One binary mask per non-zero label, named by the label map's names."""
    masks = {}
    for value in (int(v) for v in np.unique(labels.array) if v != 0):
        masks[labels.labels.get(value, f"label {value}")] = labels.array == value
    return MaskSet(labels.affine.copy(), masks, [])


def polygon_area(points: ArrayLike) -> float:
    """Area enclosed by a closed polygon (shoelace formula), in the points' units squared."""
    vertices = np.asarray(points, dtype=np.float64)
    if vertices.ndim != 2 or len(vertices) < 3:
        return 0.0
    x, y = vertices[:, 0], vertices[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def stacked_contour_volume_mm3(
    planes: dict[float, list[NDArray[np.float64]]], default_thickness_mm: float
) -> float:
    """Volume of planar contours stacked by their spacing, as dicompyler and 3D Slicer compute
    it: each plane's area (even-odd: a contour inside an odd number of others is a hole) times
    the median distance between planes (``default_thickness_mm`` for a single plane).

    Parameters
    ----------
    planes : dict of plane position (mm along the normal) to (N, 2) polygons in mm
    default_thickness_mm : float
    """
    from matplotlib.path import Path as PolygonPath

    if not planes:
        return 0.0
    positions = sorted(planes)
    gaps = np.diff(positions)
    gaps = gaps[gaps > 1e-3]
    thickness = float(np.median(gaps)) if gaps.size else default_thickness_mm
    total = 0.0
    for polygons in planes.values():
        outlines = [PolygonPath(polygon) for polygon in polygons]
        for index, polygon in enumerate(polygons):
            depth = sum(
                outline.contains_point(polygon[0])
                for other, outline in enumerate(outlines)
                if other != index
            )
            area = polygon_area(polygon)
            total += -area if depth % 2 else area
    return max(total, 0.0) * thickness
