"""`radpipe overlay` and `radpipe render` end to end, and their errors."""

from __future__ import annotations

import json
import struct

import numpy as np
from PIL import Image

import radpipe
from radpipe.cli.main import main


def test_overlay_demo_and_real_heatmap(phantom_study, tmp_path):
    assert main(["overlay", "--demo", "-o", str(tmp_path / "demo.png"), "--colorbar"]) == 0
    image = np.asarray(Image.open(tmp_path / "demo.png"))
    assert image.ndim == 3 and image.shape[2] == 3
    rows, columns = phantom_study.phantom.ct.spatial_shape[1:]
    heat = np.zeros((rows, columns), np.float32)
    heat[10:20, 10:20] = 1.0
    (tmp_path / "h.bin").write_bytes(struct.pack("<II", rows, columns) + heat.tobytes())
    out = tmp_path / "overlay.png"
    series, heatmap = str(phantom_study.series_folder), str(tmp_path / "h.bin")
    style = ["--colormap", "red", "--opacity", "1.0", "--slice", "5", "--window", "abdomen"]
    code = main(["overlay", "-i", series, "--heatmap", heatmap, "-o", str(out), *style])
    assert code == 0
    pixels = np.asarray(Image.open(out))
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 50)
    assert red.any()


def test_overlay_errors_are_clear(phantom_study, tmp_path, capsys):
    (tmp_path / "h.json").write_text(json.dumps([[1, 2], [3, 4]]))
    series = str(phantom_study.series_folder)
    cases = [
        (
            ["overlay", "--heatmap", str(tmp_path / "h.json"), "-o", str(tmp_path / "a.png")],
            "no input",
        ),
        (
            [
                "overlay",
                "-i",
                series,
                "--heatmap",
                str(tmp_path / "h.json"),
                "-o",
                str(tmp_path / "b.png"),
                "--opacity",
                "1.5",
            ],
            "opacity must be between 0.0 and 1.0",
        ),
        (
            [
                "overlay",
                "-i",
                series,
                "--heatmap",
                str(tmp_path / "h.json"),
                "-o",
                str(tmp_path / "c.png"),
                "--colormap",
                "nope",
            ],
            "unknown colormap",
        ),
        (
            [
                "overlay",
                "-i",
                series,
                "--heatmap",
                str(tmp_path / "missing.json"),
                "-o",
                str(tmp_path / "d.png"),
            ],
            "no such heatmap",
        ),
    ]
    for arguments, message in cases:
        assert main(arguments) == 1
        assert message in capsys.readouterr().err
    assert not list(tmp_path.glob("*.png"))


def test_render_views_and_all_slices(data_dir, tmp_path, capsys):
    folder = str(data_dir / "dcm_qa_ct/In/Philips/S21570/S2010")
    for view in ("three-plane", "lightbox", "coronal"):
        out = tmp_path / f"{view}.png"
        assert main(["render", folder, "--view", view, "-o", str(out), "--window", "brain"]) == 0
        assert Image.open(out).size[0] > 300
    assert (
        main(["render", folder, "--all-slices", "-o", str(tmp_path / "slices"), "--workers", "2"])
        == 0
    )
    written = sorted((tmp_path / "slices").glob("axial_*.png"))
    assert [p.name for p in written[:2]] == ["axial_000.png", "axial_001.png"] and len(
        written
    ) == 28
    assert main(["render", "--list-windows"]) == 0
    assert "subdural" in capsys.readouterr().out
    ct = radpipe.load(folder)
    assert ct.spatial_shape[0] == len(written)
