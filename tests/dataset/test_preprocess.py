"""Preprocessing against SimpleITK's own resampler, and N4 on a known bias field."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from radpipe.phantom import make_phantom
from radpipe.preprocess import (
    body_box,
    crop,
    n4_bias_correction,
    normalize_intensity,
    pad_or_crop,
    preprocess,
    resample,
)
from radpipe.volume import Volume
from radpipe.windowing import Window


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(shape=(30, 96, 96), spacing=(2.5, 1.8, 1.8), tumours=2, seed=1)


def test_resampling_matches_simpleitk(phantom):
    out = resample(phantom.ct, spacing=(1.5, 1.2, 1.2))
    assert out.spacing == pytest.approx((1.5, 1.2, 1.2))
    reference = sitk.Resample(
        sitk.Cast(phantom.ct.to_sitk(), sitk.sitkFloat32), out.to_sitk(), sitk.Transform(),
        sitk.sitkLinear, float(phantom.ct.array.min()),
    )  # fmt: skip
    assert np.abs(sitk.GetArrayFromImage(reference) - out.array).max() <= 0.5  # int16 rounding
    labels = resample(phantom.labels, reference=out)
    expected = sitk.GetArrayFromImage(
        sitk.Resample(
            phantom.labels.to_sitk(), out.to_sitk(), sitk.Transform(), sitk.sitkNearestNeighbor, 0
        )
    )
    np.testing.assert_array_equal(labels.array, expected)
    assert labels.labels == phantom.labels.labels
    # world positions are preserved: the first voxel centre does not move
    np.testing.assert_allclose(out.affine[:3, 3], phantom.ct.affine[:3, 3])


def test_n4_removes_most_of_a_synthetic_bias(phantom):
    tissue = Volume(np.clip(phantom.ct.array.astype(np.float32) + 1100, 0, None), phantom.ct.affine)
    _, rows, columns = np.indices(tissue.spatial_shape)
    bias = (1 + 0.3 * np.sin(columns / 30.0) * np.cos(rows / 40.0)).astype(np.float32)
    biased = Volume(tissue.array * bias, tissue.affine)
    _, field = n4_bias_correction(biased)
    body = tissue.array > 500
    before = np.std(bias[body]) / np.mean(bias[body])
    residual = field / bias
    after = np.std(residual[body]) / np.mean(residual[body])
    assert after <= 0.2 * before  # at least 80 % of the variation removed


def test_normalisation_crop_pad_and_chain(phantom):
    window = normalize_intensity(phantom.ct, "window", window=Window(40, 400))
    assert window.array.min() == 0.0 and window.array.max() == 1.0
    zscore = normalize_intensity(phantom.ct, "zscore", mask=phantom.labels.array == 1)
    inside = zscore.array[phantom.labels.array == 1]
    assert abs(float(inside.mean())) < 1e-4 and float(inside.std()) == pytest.approx(1.0, abs=1e-4)
    box = body_box(phantom.ct)
    cropped = crop(phantom.ct, box)
    np.testing.assert_allclose(
        cropped.index_to_world([0, 0, 0]), phantom.ct.index_to_world([b.start for b in box])
    )
    padded = pad_or_crop(phantom.ct, (32, 100, 90))
    assert padded.shape == (32, 100, 90)
    assert padded.array[1, 2, 3] == phantom.ct.array[0, 0, 6]
    np.testing.assert_allclose(
        padded.index_to_world([1, 2, 3]), phantom.ct.index_to_world([0, 0, 6])
    )
    options = {"spacing": 2.0, "orient": "RAS", "window": Window(40, 400), "size": (32, 64, 64)}
    image, labels = preprocess(phantom.ct, labels=phantom.labels, normalization="window", **options)
    assert image.shape == labels.shape == (32, 64, 64) and image.orientation_code == "RAS"
    assert set(np.unique(labels.array)) <= {0, 1, 2, 3}
