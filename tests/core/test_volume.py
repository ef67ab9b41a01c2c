"""The Volume type: validation, derived geometry and conversions to SimpleITK and nibabel."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from radpipe import geometry
from radpipe.errors import GeometryError
from radpipe.volume import LabelMap, Volume

IOP = (0.9659258, 0.2588190, 0.0, -0.0449435, 0.1677312, -0.9848078)


@pytest.fixture
def oblique() -> Volume:
    affine = geometry.affine_from_dicom(
        [12.5, -40.0, 7.25], IOP, [0.8, 0.6], 2.5 * geometry.slice_normal(IOP)
    )
    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    return Volume(data, affine)


def test_affine_is_validated_and_read_only(oblique):
    with pytest.raises(GeometryError):
        Volume(np.zeros((2, 2, 2)), np.eye(3))
    with pytest.raises(GeometryError, match="3 spatial axes"):
        Volume(np.zeros((2, 2)), np.eye(4))
    with pytest.raises(ValueError):
        oblique.affine[0, 0] = 5.0
    assert oblique.spacing == pytest.approx((2.5, 0.8, 0.6))
    assert oblique.voxel_volume_mm3 == pytest.approx(2.5 * 0.8 * 0.6)


def test_sitk_round_trip_matches_itk_physical_points(oblique):
    image = oblique.to_sitk()
    for k, j, i in [(0, 0, 0), (3, 4, 5), (1, 2, 3)]:
        itk_point = image.TransformIndexToPhysicalPoint((i, j, k))
        assert itk_point == pytest.approx(tuple(oblique.index_to_world([k, j, i])), abs=1e-6)
        assert image[i, j, k] == oblique.array[k, j, i]
    back = Volume.from_sitk(image)
    np.testing.assert_array_equal(back.array, oblique.array)
    np.testing.assert_allclose(back.affine, oblique.affine, atol=1e-9)


def test_nibabel_round_trip_is_ras(oblique):
    image = oblique.to_nibabel()
    assert image.shape == (6, 5, 4)
    lps = oblique.index_to_world([3, 4, 5])
    ras = nib.affines.apply_affine(image.affine, [5, 4, 3])
    assert ras == pytest.approx([-lps[0], -lps[1], lps[2]])
    back = Volume.from_nibabel(image)
    np.testing.assert_array_equal(back.array, oblique.array)
    np.testing.assert_allclose(back.affine, oblique.affine, atol=1e-9)


def test_reoriented_volume_keeps_world_positions(oblique):
    turned = oblique.reoriented("RAS")
    assert turned.orientation_code == "RAS"
    value = oblique.array[1, 2, 3]
    target = oblique.index_to_world([1, 2, 3])
    index = np.rint(turned.world_to_index(target)).astype(int)
    assert turned.array[tuple(index)] == value


def test_label_map_requires_integers():
    with pytest.raises(GeometryError, match="integer"):
        LabelMap(np.zeros((2, 2, 2), np.float32), np.eye(4))
    labels = LabelMap(np.array([[[0, 1], [2, 2]]]), np.eye(4), labels={1: "liver", 2: "tumor"})
    assert labels.voxel_count(2) == 2
    assert labels.labels == {1: "liver", 2: "tumor"}
