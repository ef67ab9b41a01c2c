"""Window maths, colour tables against matplotlib, normalisation and blending."""

from __future__ import annotations

import matplotlib
import numpy as np
import pydicom
import pytest

import radpipe
from radpipe.colormaps import blend, colormap_table, normalize
from radpipe.errors import FormatError
from radpipe.windowing import (
    PRESETS,
    Window,
    apply_window,
    auto_window,
    default_window,
    parse_window,
)

PYDICOM_FILES = __import__("pathlib").Path(pydicom.__file__).parent / "data" / "test_files"


def test_presets_and_parsing():
    assert (PRESETS["soft-tissue"].width, PRESETS["soft-tissue"].center) == (400, 40)
    assert (PRESETS["lung"].width, PRESETS["lung"].center) == (1500, -600)
    assert (PRESETS["liver"].width, PRESETS["liver"].center) == (150, 90)
    assert (PRESETS["subdural"].width, PRESETS["subdural"].center) == (200, 75)
    assert parse_window("bone") == Window(400, 1800)
    assert parse_window("-600/1500") == Window(-600, 1500)
    with pytest.raises(FormatError, match="unknown window"):
        parse_window("purple")
    with pytest.raises(FormatError, match="positive width"):
        Window(40, 0)


def test_window_maths_exact_for_every_integer_type():
    window = Window(40, 400)  # -160 … 240 HU
    values = np.array([-1000, -160, -159, 40, 239, 240, 3000], dtype=np.int16)
    expected = np.clip(np.rint((values.astype(np.float64) + 160) * 255 / 400), 0, 255)
    assert apply_window(values, window).tolist() == expected.astype(int).tolist()
    assert apply_window(values.astype(np.float32), window).tolist() == expected.astype(int).tolist()
    rng = np.random.default_rng(1)
    for dtype in (np.int16, np.uint16, np.uint8, np.int8):
        info = np.iinfo(dtype)
        data = rng.integers(info.min, info.max, size=1000, endpoint=True).astype(dtype)
        lut = apply_window(data, Window(30, 150))
        maths = apply_window(data.astype(np.float64), Window(30, 150))
        np.testing.assert_array_equal(lut, maths)
    assert apply_window(values, window, invert=True)[0] == 255


def test_default_windows_from_header_and_percentiles():
    ct = radpipe.load(PYDICOM_FILES / "CT_small.dcm")  # no window in its header
    assert default_window(ct) == PRESETS["soft-tissue"]
    multi = radpipe.load(PYDICOM_FILES / "J2K_pixelrep_mismatch.dcm")  # 40\\40\\40, 100\\100\\200
    assert default_window(multi) == Window(40, 100)  # the first pair
    mr = radpipe.load(PYDICOM_FILES / "MR_small.dcm")
    assert default_window(mr) == Window(600, 1600)
    window = auto_window(mr.array)
    low, high = np.percentile(mr.array, [1, 99])
    assert window.low == pytest.approx(low) and window.high == pytest.approx(high)


@pytest.mark.parametrize("name", ["hot", "jet", "viridis", "plasma", "magma"])
def test_colour_tables_equal_matplotlibs(name):
    table = colormap_table(name)
    reference = matplotlib.colormaps[name]
    for index in (0, 64, 128, 255):
        expected = np.rint(np.array(reference(index / 255)[:3]) * 255)
        assert table[index].tolist() == expected.astype(int).tolist()
    red = colormap_table("red")
    assert red[0].tolist() == [0, 0, 0] and red[255].tolist() == [255, 0, 0]
    with pytest.raises(FormatError, match="unknown colormap 'nope'"):
        colormap_table("nope")


def test_normalisations():
    values = np.array([[0.0, 5.0, 10.0], [np.nan, np.inf, 2.5]])
    minmax = normalize(values, "minmax")
    assert minmax[0].tolist() == [0.0, 0.5, 1.0] and np.isnan(minmax[1, :2]).all()
    data = np.random.default_rng(0).normal(10, 2, 10_000)
    zscore = normalize(data, "zscore")
    assert zscore[np.argmin(np.abs(data - data.mean()))] == pytest.approx(0.5, abs=1e-3)
    percentile = normalize(data, "percentile", percentiles=(5, 95))
    assert (percentile == 0).mean() == pytest.approx(0.05, abs=0.002)
    assert not normalize(np.full((3, 3), 7.0)).any()  # constant: no division by zero
    with pytest.raises(FormatError, match="no finite value"):
        normalize(np.full((2, 2), np.nan))


def test_blending_paths_agree_and_respect_transparency():
    rng = np.random.default_rng(2)
    grey = rng.integers(0, 256, (32, 40), dtype=np.uint8)
    unit = rng.random((32, 40)).astype(np.float32)
    unit[0, 0] = np.nan
    packed = blend(grey, unit, colormap="viridis", opacity=0.6, threshold=0.3)
    general = blend(
        np.repeat(grey[..., None], 3, axis=2), unit, colormap="viridis", opacity=0.6, threshold=0.3
    )
    np.testing.assert_array_equal(packed, general)
    assert packed[0, 0].tolist() == [grey[0, 0]] * 3  # NaN is transparent
    below = unit < 0.3
    np.testing.assert_array_equal(packed[below], np.repeat(grey[below][:, None], 3, axis=1))
    colour = colormap_table("viridis")[int(np.rint(unit[5, 5] * 255))]
    expected = (int(grey[5, 5]) * (256 - 154) + colour.astype(int) * 154 + 128) >> 8
    if unit[5, 5] >= 0.3:
        assert packed[5, 5].tolist() == expected.tolist()
    opaque = blend(grey, np.ones((32, 40), np.float32), colormap="red", opacity=1.0)
    assert (opaque == [255, 0, 0]).all()
    with pytest.raises(FormatError, match="opacity"):
        blend(grey, unit, opacity=1.5)
