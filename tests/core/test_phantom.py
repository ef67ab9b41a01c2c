"""The phantom's truth: tumours inside the liver, counted voxels equal to the label map."""

from __future__ import annotations

import numpy as np
import pytest

from radpipe.errors import GeometryError
from radpipe.phantom import TISSUE_HU, make_phantom


def test_tumour_truth_matches_label_map():
    phantom = make_phantom(shape=(30, 96, 96), spacing=(2.0, 2.5, 2.5), tumours=3, seed=11)
    labels = phantom.labels.array
    assert len(phantom.tumours) == 3
    assert sum(t.voxels for t in phantom.tumours) == np.count_nonzero(labels == 2)
    for tumour in phantom.tumours:
        index = np.rint(phantom.ct.world_to_index(tumour.centre_mm)).astype(int)
        assert labels[tuple(index)] == 2
        analytic_ml = 4 / 3 * np.pi * tumour.radius_mm**3 / 1000
        assert tumour.volume_ml == pytest.approx(analytic_ml, rel=0.35)
    liver_hu = phantom.ct.array[labels == 1]
    assert abs(float(np.median(liver_hu)) - TISSUE_HU["liver"]) < 3
    assert abs(float(np.median(phantom.ct.array[labels == 2])) - TISSUE_HU["tumor"]) < 3


def test_phantom_is_deterministic_and_checks_its_size():
    first = make_phantom(shape=(12, 48, 48), tumours=1, seed=5)
    second = make_phantom(shape=(12, 48, 48), tumours=1, seed=5)
    np.testing.assert_array_equal(first.ct.array, second.ct.array)
    with pytest.raises(GeometryError, match="cannot place"):
        make_phantom(shape=(2, 48, 48), tumours=4, seed=1)
