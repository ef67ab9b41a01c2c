"""Heatmap files: every format round-trips (written with NumPy / csv / struct / nibabel /
Pillow, read with radpipe), and bad files give clear errors."""

from __future__ import annotations

import json
import struct

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from radpipe.errors import FormatError, ReadError
from radpipe.io.heatmaps import read_heatmap

VALUES = np.arange(12, dtype=np.float32).reshape(3, 4) / 11


def test_json_variants(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"data": VALUES.tolist()}))
    (tmp_path / "b.json").write_text(json.dumps(VALUES.tolist()))
    cube = np.stack([VALUES, 2 * VALUES])
    (tmp_path / "c.json").write_text(json.dumps(cube.tolist()))
    np.testing.assert_allclose(read_heatmap(tmp_path / "a.json").values, VALUES)
    np.testing.assert_allclose(read_heatmap(tmp_path / "b.json").values, VALUES)
    assert read_heatmap(tmp_path / "c.json").values.shape == (2, 3, 4)
    (tmp_path / "bad.json").write_text(json.dumps({"data": [["a", "b"], ["c", "d"]]}))
    with pytest.raises(FormatError, match="numbers"):
        read_heatmap(tmp_path / "bad.json")


@pytest.mark.parametrize(
    ("separator", "header"), [(",", True), (";", False), ("\t", True), (" ", False)]
)
def test_csv_separators_and_header(tmp_path, separator, header):
    lines = [separator.join(f"{v:.6f}" for v in row) for row in VALUES]
    if header:
        lines.insert(0, separator.join(f"c{i}" for i in range(4)))
    (tmp_path / "h.csv").write_text("\n".join(lines) + "\n")
    np.testing.assert_allclose(read_heatmap(tmp_path / "h.csv").values, VALUES, atol=1e-6)


def test_ragged_csv_is_refused(tmp_path):
    (tmp_path / "h.csv").write_text("1,2,3\n4,5\n")
    with pytest.raises(FormatError, match="ragged"):
        read_heatmap(tmp_path / "h.csv")


def test_binary_header_and_size_check(tmp_path):
    payload = struct.pack("<II", 3, 4) + VALUES.astype("<f4").tobytes()
    (tmp_path / "h.bin").write_bytes(payload)
    np.testing.assert_array_equal(read_heatmap(tmp_path / "h.bin").values, VALUES)
    (tmp_path / "short.bin").write_bytes(payload[:-4])
    with pytest.raises(FormatError, match=r"says 3×4 .* but the file has 52 bytes"):
        read_heatmap(tmp_path / "short.bin")


def test_npy_npz_nifti_png(tmp_path):
    np.save(tmp_path / "h.npy", VALUES)
    np.savez(tmp_path / "one.npz", attention=VALUES)
    np.savez(tmp_path / "two.npz", attention=VALUES, logits=VALUES * 2)
    np.testing.assert_array_equal(read_heatmap(tmp_path / "h.npy").values, VALUES)
    np.testing.assert_array_equal(read_heatmap(tmp_path / "one.npz").values, VALUES)
    np.testing.assert_array_equal(
        read_heatmap(tmp_path / "two.npz", key="logits").values, VALUES * 2
    )
    with pytest.raises(FormatError, match="choose one"):
        read_heatmap(tmp_path / "two.npz")
    cube = np.random.default_rng(0).random((4, 5, 6)).astype(np.float32)  # (S, R, C)
    nib.save(nib.Nifti1Image(np.transpose(cube, (2, 1, 0)), np.eye(4)), tmp_path / "h.nii.gz")
    np.testing.assert_allclose(read_heatmap(tmp_path / "h.nii.gz").values, cube)
    grey = (VALUES * 255).astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "h.png")
    np.testing.assert_array_equal(read_heatmap(tmp_path / "h.png").values, grey)


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(ReadError, match="no such heatmap"):
        read_heatmap(tmp_path / "none.json")
    (tmp_path / "h.xyz").write_text("1")
    with pytest.raises(ReadError, match="unknown heatmap format"):
        read_heatmap(tmp_path / "h.xyz")
