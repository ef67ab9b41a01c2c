"""Pure affine maths: DICOM position / orientation / spacing to 4×4 affines, LPS⇄RAS,
orientation codes and reorientation plans.

Every affine here maps an index ``(k, j, i, 1)`` — slice, row, column — to LPS millimetres.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from radpipe.errors import GeometryError

Float64Array = NDArray[np.float64]

#: Flips LPS world coordinates to RAS (and back: the matrix is its own inverse).
LPS_TO_RAS: Float64Array = np.diag([-1.0, -1.0, 1.0, 1.0])

#: Swaps index order (k, j, i) ⇄ (i, j, k); its own inverse.
SWAP_KJI_IJK: Float64Array = np.array(
    [[0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)

#: Letter of the LPS world direction each world axis points to, by sign.
_POSITIVE_LETTERS = ("L", "P", "S")
_NEGATIVE_LETTERS = ("R", "A", "I")
_LETTER_TO_AXIS = {"L": (0, 1), "R": (0, -1), "P": (1, 1), "A": (1, -1), "S": (2, 1), "I": (2, -1)}


def check_affine(affine: ArrayLike) -> Float64Array:
    """Validate an index-to-world affine and return a float64 copy.

    Parameters
    ----------
    affine : (4, 4) array_like
        Maps ``(k, j, i, 1)`` to LPS mm.

    Raises
    ------
    GeometryError
        If the shape is not 4×4, the last row is not ``0 0 0 1``, a value is not finite, or the
        3×3 part is singular.
    """
    matrix = np.array(affine, dtype=np.float64, copy=True)
    if matrix.shape != (4, 4):
        raise GeometryError(f"affine must be 4x4, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise GeometryError(f"affine has non-finite values:\n{matrix}")
    if not np.allclose(matrix[3], [0.0, 0.0, 0.0, 1.0]):
        raise GeometryError(f"affine's last row must be 0 0 0 1, got {matrix[3].tolist()}")
    if abs(np.linalg.det(matrix[:3, :3])) < 1e-12:
        raise GeometryError(f"affine is singular (zero spacing or parallel axes):\n{matrix}")
    return matrix


def slice_normal(orientation: Sequence[float]) -> Float64Array:
    """Unit normal of an image plane given DICOM ImageOrientationPatient.

    Parameters
    ----------
    orientation : sequence of 6 float
        Direction cosines of a row (increasing column index) then of a column (increasing row).

    Returns
    -------
    (3,) float64
        ``row × column``; points to S for a standard axial image.
    """
    row_dir, col_dir = _unit_directions(orientation)
    normal = np.cross(row_dir, col_dir)
    return normal / np.linalg.norm(normal)


def _unit_directions(orientation: Sequence[float]) -> tuple[Float64Array, Float64Array]:
    cosines = np.asarray(orientation, dtype=np.float64)
    if cosines.shape != (6,):
        raise GeometryError(f"ImageOrientationPatient needs 6 values, got {list(cosines)}")
    row_dir, col_dir = cosines[:3], cosines[3:]
    row_norm, col_norm = np.linalg.norm(row_dir), np.linalg.norm(col_dir)
    if row_norm < 1e-6 or col_norm < 1e-6:
        raise GeometryError(f"ImageOrientationPatient has a zero vector: {list(cosines)}")
    row_dir, col_dir = row_dir / row_norm, col_dir / col_norm
    if abs(float(np.dot(row_dir, col_dir))) > 1e-3:
        raise GeometryError(
            f"ImageOrientationPatient row and column directions are not perpendicular: "
            f"{list(cosines)}"
        )
    return row_dir, col_dir


def affine_from_dicom(
    position: Sequence[float],
    orientation: Sequence[float],
    pixel_spacing: Sequence[float],
    slice_step: Sequence[float],
) -> Float64Array:
    """Build the index-to-LPS affine of a stack of DICOM images.

    Parameters
    ----------
    position : sequence of 3 float
        ImagePositionPatient of the first slice (centre of its first pixel), mm.
    orientation : sequence of 6 float
        ImageOrientationPatient.
    pixel_spacing : sequence of 2 float
        PixelSpacing: distance between rows, then between columns, mm.
    slice_step : sequence of 3 float
        World vector from one slice's first pixel to the next slice's, mm. Not parallel to the
        normal when the gantry was tilted: the affine is then sheared.

    Returns
    -------
    (4, 4) float64
        Maps ``(k, j, i, 1)`` to LPS mm.

    Examples
    --------
    >>> a = affine_from_dicom([0, 0, 10], [1, 0, 0, 0, 1, 0], [0.5, 0.7], [0, 0, 2.5])
    >>> (a @ [1, 1, 1, 1])[:3].tolist()
    [0.7, 0.5, 12.5]
    """
    row_dir, col_dir = _unit_directions(orientation)
    spacing = np.asarray(pixel_spacing, dtype=np.float64)
    if spacing.shape != (2,) or np.any(spacing <= 0):
        raise GeometryError(f"PixelSpacing must be two positive values, got {list(spacing)}")
    affine = np.eye(4)
    affine[:3, 0] = np.asarray(slice_step, dtype=np.float64)
    affine[:3, 1] = col_dir * spacing[0]
    affine[:3, 2] = row_dir * spacing[1]
    affine[:3, 3] = np.asarray(position, dtype=np.float64)
    return check_affine(affine)


def spacing_of(affine: ArrayLike) -> tuple[float, float, float]:
    """Voxel spacing in mm along (slice, row, column): lengths of the affine's columns."""
    matrix = np.asarray(affine, dtype=np.float64)
    norms = np.linalg.norm(matrix[:3, :3], axis=0)
    return (float(norms[0]), float(norms[1]), float(norms[2]))


def direction_of(affine: ArrayLike) -> Float64Array:
    """Unit direction of each array axis: a (3, 3) matrix whose column ``a`` is axis ``a``'s."""
    matrix = np.asarray(affine, dtype=np.float64)[:3, :3]
    unit: Float64Array = matrix / np.linalg.norm(matrix, axis=0)
    return unit


def shear_angle_deg(affine: ArrayLike) -> float:
    """Angle in degrees between the slice axis and the normal of the row/column plane.

    Non-zero for gantry-tilted CT, whose affine is sheared.
    """
    direction = direction_of(affine)
    normal = np.cross(direction[:, 2], direction[:, 1])
    normal /= np.linalg.norm(normal)
    cosine = abs(float(np.dot(normal, direction[:, 0])))
    return float(np.degrees(np.arccos(min(1.0, cosine))))


def dominant_axes(affine: ArrayLike) -> list[tuple[int, int]]:
    """For each array axis, the world axis it runs closest to and the sign along it.

    Parameters
    ----------
    affine : (4, 4) array_like

    Returns
    -------
    list of (world_axis, sign)
        In array order (slice, row, column); ``world_axis`` 0, 1, 2 is x (L), y (P), z (S).
        Each world axis is used once, chosen greedily by the largest direction cosine.
    """
    cosines = np.abs(direction_of(affine))
    signed = direction_of(affine)
    result: list[tuple[int, int]] = [(-1, 0)] * 3
    free = cosines.copy()
    for _ in range(3):
        world, axis = np.unravel_index(int(np.argmax(free)), free.shape)
        result[int(axis)] = (int(world), 1 if signed[world, axis] >= 0 else -1)
        free[world, :] = -1.0
        free[:, axis] = -1.0
    return result


def orientation_code(affine: ArrayLike) -> str:
    """Three-letter code of the directions the column, row and slice axes point to.

    Letters follow ITK and nibabel: listed column axis first, then row, then slice, each the
    world direction the index increases towards. A standard axial DICOM series (rows go to
    the patient's left, columns to posterior, slices superior) is ``"LPS"``; NIfTI's RAS+
    canonical layout read into radpipe is ``"RAS"``.

    Examples
    --------
    >>> orientation_code(np.eye(4))
    'SPL'
    """
    axes = dominant_axes(affine)
    letters = [
        _POSITIVE_LETTERS[world] if sign > 0 else _NEGATIVE_LETTERS[world] for world, sign in axes
    ]
    return letters[2] + letters[1] + letters[0]


def parse_orientation_code(code: str) -> list[tuple[int, int]]:
    """Turn a code such as ``"LPS"`` into (world_axis, sign) per array axis (slice, row, column).

    Raises
    ------
    GeometryError
        If the code is not three letters naming each of L/R, P/A, S/I once.
    """
    upper = code.upper()
    if len(upper) != 3 or any(letter not in _LETTER_TO_AXIS for letter in upper):
        raise GeometryError(f"orientation code must be 3 letters of L R P A S I, got {code!r}")
    per_array_axis = [
        _LETTER_TO_AXIS[upper[2]],
        _LETTER_TO_AXIS[upper[1]],
        _LETTER_TO_AXIS[upper[0]],
    ]
    if len({world for world, _ in per_array_axis}) != 3:
        raise GeometryError(f"orientation code {code!r} names a world axis twice")
    return per_array_axis


def reorientation(
    affine: ArrayLike, shape: Sequence[int], code: str
) -> tuple[tuple[int, int, int], tuple[bool, bool, bool], Float64Array]:
    """Plan the axis permutation and flips that bring an array to orientation ``code``.

    Parameters
    ----------
    affine : (4, 4) array_like
        Current index-to-LPS affine.
    shape : sequence of int
        Current spatial shape (slice, row, column).
    code : str
        Target orientation, e.g. ``"LPS"`` (see :func:`orientation_code`).

    Returns
    -------
    order : tuple of 3 int
        ``np.transpose`` order: new axis ``a`` is old axis ``order[a]``.
    flips : tuple of 3 bool
        Whether new axis ``a`` is reversed after the transpose.
    new_affine : (4, 4) float64
        Affine of the reoriented array; every voxel keeps its world position.
    """
    current = dominant_axes(affine)
    target = parse_orientation_code(code)
    world_to_old = {world: (axis, sign) for axis, (world, sign) in enumerate(current)}
    order_list: list[int] = []
    flips_list: list[bool] = []
    for world, sign in target:
        old_axis, old_sign = world_to_old[world]
        order_list.append(old_axis)
        flips_list.append(old_sign != sign)
    # new index -> old index: old[order[a]] = new[a] (or n-1-new[a] when flipped)
    new_to_old = np.zeros((4, 4))
    new_to_old[3, 3] = 1.0
    for new_axis, (old_axis, flip) in enumerate(zip(order_list, flips_list, strict=True)):
        if flip:
            new_to_old[old_axis, new_axis] = -1.0
            new_to_old[old_axis, 3] = shape[old_axis] - 1
        else:
            new_to_old[old_axis, new_axis] = 1.0
    new_affine: Float64Array = np.asarray(affine, dtype=np.float64) @ new_to_old
    order = (order_list[0], order_list[1], order_list[2])
    flips = (flips_list[0], flips_list[1], flips_list[2])
    return order, flips, new_affine


def affine_to_ras_ijk(affine: ArrayLike) -> Float64Array:
    """Convert a radpipe affine (k, j, i) → LPS into a NIfTI-style affine (i, j, k) → RAS."""
    return LPS_TO_RAS @ np.asarray(affine, dtype=np.float64) @ SWAP_KJI_IJK


def affine_from_ras_ijk(affine_ras: ArrayLike) -> Float64Array:
    """Convert a NIfTI-style affine (i, j, k) → RAS into a radpipe affine (k, j, i) → LPS."""
    return LPS_TO_RAS @ np.asarray(affine_ras, dtype=np.float64) @ SWAP_KJI_IJK


def index_to_world(affine: ArrayLike, indices: ArrayLike) -> Float64Array:
    """Map voxel indices ``(..., 3)`` in (slice, row, column) order to LPS mm ``(..., 3)``."""
    matrix = np.asarray(affine, dtype=np.float64)
    points = np.asarray(indices, dtype=np.float64)
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def world_to_index(affine: ArrayLike, points: ArrayLike) -> Float64Array:
    """Map LPS mm points ``(..., 3)`` to fractional voxel indices (slice, row, column)."""
    inverse = np.linalg.inv(np.asarray(affine, dtype=np.float64))
    world = np.asarray(points, dtype=np.float64)
    return world @ inverse[:3, :3].T + inverse[:3, 3]


def grid_corners(shape: Sequence[int]) -> Float64Array:
    """The eight corner indices (slice, row, column) of a grid of ``shape``, as (8, 3)."""
    s, r, c = (int(n) - 1 for n in shape[:3])
    return np.array([[k, j, i] for k in (0, s) for j in (0, r) for i in (0, c)], dtype=np.float64)


def same_grid(
    affine_a: ArrayLike,
    shape_a: Sequence[int],
    affine_b: ArrayLike,
    shape_b: Sequence[int],
    *,
    atol_mm: float = 1e-3,
) -> bool:
    """Whether two grids hold the same voxels at the same world positions.

    The spatial shapes must be equal and every corner voxel of one grid must lie within
    ``atol_mm`` of the same corner of the other (so a direction that differs slightly over a
    large grid is caught, not only a differing matrix entry).
    """
    if tuple(int(n) for n in shape_a[:3]) != tuple(int(n) for n in shape_b[:3]):
        return False
    corners = grid_corners(shape_a)
    distance = index_to_world(affine_a, corners) - index_to_world(affine_b, corners)
    return bool(np.abs(distance).max() <= atol_mm)


def grids_overlap(
    source_affine: ArrayLike,
    source_shape: Sequence[int],
    target_affine: ArrayLike,
    target_shape: Sequence[int],
) -> bool:
    """Whether the box of the target grid meets the box of the source grid in world space.

    The target's corners are mapped into source indices; the grids miss each other when that
    bounding box lies wholly outside the source's voxels (half a voxel of margin).
    """
    inside = world_to_index(
        source_affine, index_to_world(target_affine, grid_corners(target_shape))
    )
    size = np.asarray([int(n) for n in source_shape[:3]], dtype=np.float64)
    lows, highs = inside.min(axis=0), inside.max(axis=0)
    return not bool(np.any(highs < -0.5) or np.any(lows > size - 0.5))
