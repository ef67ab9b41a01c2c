"""Affine maths against hand-computed DICOM geometry and SimpleITK / nibabel conventions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from radpipe import geometry
from radpipe.errors import GeometryError

OBLIQUE_IOP = (0.9659258, 0.2588190, 0.0, -0.0449435, 0.1677312, -0.9848078)


def test_affine_from_dicom_maps_pixel_centres():
    affine = geometry.affine_from_dicom(
        [-100, -120, 30], [1, 0, 0, 0, 1, 0], [0.5, 0.8], [0, 0, 2.5]
    )
    # slice 2, row 3, column 4 -> x moves with columns (0.8), y with rows (0.5), z with slices
    assert geometry.index_to_world(affine, [2, 3, 4]) == pytest.approx([-96.8, -118.5, 35.0])
    assert geometry.spacing_of(affine) == pytest.approx((2.5, 0.5, 0.8))
    assert geometry.orientation_code(affine) == "LPS"


def test_oblique_orientation_and_sheared_tilt():
    step = 3.0 * geometry.slice_normal(OBLIQUE_IOP)
    affine = geometry.affine_from_dicom([1, 2, 3], OBLIQUE_IOP, [0.7, 0.7], step)
    assert geometry.shear_angle_deg(affine) == pytest.approx(0.0, abs=1e-6)
    tilted = geometry.affine_from_dicom(
        [0, 0, 0], [1, 0, 0, 0, 0.9659258, -0.2588190], [1, 1], [0, 0, 2]
    )
    assert geometry.shear_angle_deg(tilted) == pytest.approx(15.0, abs=1e-4)


@pytest.mark.parametrize("code", ["LPS", "RAS", "LAS", "SPL", "PIR", "AIL"])
def test_reorientation_keeps_every_voxel_in_place(code):
    affine = geometry.affine_from_dicom(
        [5, -7, 11], OBLIQUE_IOP, [0.9, 1.1], 2.0 * geometry.slice_normal(OBLIQUE_IOP)
    )
    shape = (4, 5, 6)
    order, flips, new_affine = geometry.reorientation(affine, shape, code)
    assert geometry.orientation_code(new_affine) == code
    data = np.arange(np.prod(shape)).reshape(shape)
    moved = np.transpose(data, order)[
        tuple(slice(None, None, -1) if f else slice(None) for f in flips)
    ]
    for new_index in itertools.product(*(range(n) for n in moved.shape)):
        old_index = np.argwhere(data == moved[new_index])[0]
        np.testing.assert_allclose(
            geometry.index_to_world(new_affine, new_index),
            geometry.index_to_world(affine, old_index),
            atol=1e-9,
        )


def test_ras_conversion_is_its_own_inverse():
    affine = geometry.affine_from_dicom([1, 2, 3], OBLIQUE_IOP, [0.5, 0.6], [0.1, 0.2, 2.0])
    ras = geometry.affine_to_ras_ijk(affine)
    # voxel (k, j, i) in radpipe is (i, j, k) in NIfTI, at the mirrored x and y
    lps = geometry.index_to_world(affine, [1, 2, 3])
    assert (ras @ [3, 2, 1, 1])[:3] == pytest.approx([-lps[0], -lps[1], lps[2]])
    np.testing.assert_allclose(geometry.affine_from_ras_ijk(ras), affine)


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (np.eye(3), "4x4"),
        (np.diag([1.0, 1.0, 0.0, 1.0]), "singular"),
        (np.vstack([np.eye(4)[:3], [0, 0, 1, 1]]), "last row"),
        (np.full((4, 4), np.nan), "non-finite"),
    ],
)
def test_invalid_affines_are_refused(matrix, message):
    with pytest.raises(GeometryError, match=message):
        geometry.check_affine(matrix)


def test_bad_orientation_codes_and_cosines():
    with pytest.raises(GeometryError, match="names a world axis twice"):
        geometry.parse_orientation_code("LLS")
    with pytest.raises(GeometryError, match="not perpendicular"):
        geometry.slice_normal([1, 0, 0, 1, 0, 0])
