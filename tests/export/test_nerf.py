"""NeRF export: cameras at the slices' real positions, rigid poses, exact PNGs, valid JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

import radpipe
from radpipe.cli.main import main
from radpipe.errors import GeometryError, OutputExistsError
from radpipe.export.nerf import export_nerf
from radpipe.phantom import make_phantom
from radpipe.render import canonical
from radpipe.windowing import Window, apply_window

NERFSTUDIO_FIELDS = {"camera_model": str, "fl_x": float, "fl_y": float, "cx": float, "cy": float,
                     "w": int, "h": int, "camera_angle_x": float, "frames": list}  # fmt: skip


def expected_centres(volume, plane: str) -> np.ndarray:
    """Slice centres in LPS mm from the canonical volume's own geometry."""
    shown = canonical(volume)
    s, r, c = shown.spatial_shape
    if plane == "axial":
        points = [(k, (r - 1) / 2, (c - 1) / 2) for k in range(s)]
    elif plane == "coronal":
        points = [((s - 1) / 2, j, (c - 1) / 2) for j in range(r)]
    else:
        points = [((s - 1) / 2, (r - 1) / 2, i) for i in range(c)]
    return shown.index_to_world(np.array(points, float))


@pytest.fixture(scope="module")
def volumes(data_dir):
    phantom = make_phantom(shape=(20, 48, 40), spacing=(2.5, 1.5, 1.2), tumours=1, seed=3).ct
    head = radpipe.load(data_dir / "dcm_qa_ct/In/Philips/S21570/S2010")
    return {"phantom": phantom, "head": head}


@pytest.mark.parametrize("name", ["phantom", "head"])
@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
def test_cameras_sit_at_slice_centres_and_are_rigid(volumes, name, plane, tmp_path):
    volume = volumes[name]
    result = export_nerf(volume, tmp_path / "out", plane=plane, scale=0.001, workers=1)
    document = json.loads((tmp_path / "out" / "transforms.json").read_text())
    centres = expected_centres(volume, plane)
    volume_centre = volume.index_to_world([(n - 1) / 2 for n in volume.spatial_shape])
    positions = []
    for k, frame in enumerate(document["frames"]):
        matrix = np.array(frame["transform_matrix"])
        rotation = matrix[:3, :3]
        np.testing.assert_allclose(rotation.T @ rotation, np.eye(3), atol=1e-9)
        assert np.linalg.det(rotation) == pytest.approx(1.0)
        np.testing.assert_allclose(matrix[:3, 3], (centres[k] - volume_centre) * 0.001, atol=1e-9)
        positions.append(matrix[:3, 3])
    steps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
    np.testing.assert_allclose(steps, result.slice_spacing_mm * 0.001, rtol=1e-9)
    axis = {"axial": 0, "coronal": 1, "sagittal": 2}[plane]
    assert result.slice_spacing_mm == pytest.approx(canonical(volume).spacing[axis])


def test_pngs_are_the_windowed_slices_and_json_is_nerfstudio(volumes, tmp_path):
    volume = volumes["head"]
    window = Window(40, 80)
    export_nerf(volume, tmp_path / "out", plane="coronal", mode="window", window=window, workers=2)
    document = json.loads((tmp_path / "out" / "transforms.json").read_text())
    for name, kind in NERFSTUDIO_FIELDS.items():
        assert isinstance(document[name], kind), name
    assert document["w"] == 512 and document["h"] == 28 and document["fl_x"] == 512.0
    shown = canonical(volume).array
    for frame in document["frames"][::50]:
        path = tmp_path / "out" / frame["file_path"]
        assert path.is_file()
        j = frame["slice_index"]
        np.testing.assert_array_equal(
            np.asarray(Image.open(path)), apply_window(shown[::-1, j], window)
        )
    names = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert names[0] == "001.png" and names[-1] == f"{len(names):03d}.png"


def test_subsets_splits_and_sixteen_bit(volumes, tmp_path):
    volume = volumes["phantom"]
    result = export_nerf(volume, tmp_path / "sub", selection=(2, 14), every=3, bit_depth=16,
                         split=(0.5, 0.25, 0.25), workers=1)  # fmt: skip
    document = json.loads((tmp_path / "sub" / "transforms.json").read_text())
    assert [f["slice_index"] for f in document["frames"]] == [2, 5, 8, 11]
    assert result.z_step == pytest.approx(2.5 * 3 * 0.001)
    everything = (
        document["train_filenames"] + document["val_filenames"] + document["test_filenames"]
    )
    assert sorted(everything) == sorted(f["file_path"] for f in document["frames"])
    image = np.asarray(Image.open(tmp_path / "sub" / "001.png"))
    assert image.dtype in (np.uint16, np.int32) and image.max() > 255


def test_bad_input(volumes, tmp_path):
    ct_small = radpipe.load(Path(pydicom.__file__).parent / "data/test_files/CT_small.dcm")
    with pytest.raises(GeometryError, match="2-D image"):
        export_nerf(ct_small, tmp_path / "a")
    with pytest.raises(GeometryError, match="0, 1 or 2"):
        export_nerf(volumes["phantom"], tmp_path / "b", axis=3)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "keep.txt").write_text("x")
    with pytest.raises(OutputExistsError, match="not empty"):
        export_nerf(volumes["phantom"], tmp_path / "c")
    assert main(["export", "nerf", str(tmp_path), str(tmp_path / "d"), "--window-center", "40",
                 "--window-width", "0"]) == 1  # fmt: skip
    assert not (tmp_path / "d").exists()


def test_cli_prints_the_summary(volumes, tmp_path, capsys, data_dir):
    folder = data_dir / "dcm_qa_ct/In/Philips/S21570/S2010"
    assert (
        main(
            [
                "export",
                "nerf",
                str(folder),
                str(tmp_path / "out"),
                "--window",
                "brain",
                "--axis",
                "0",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    for text in (
        "Volume shape: (28, 512, 512)",
        "Focal length: 512.00",
        "Z-step (camera translation): 0.005000",
    ):
        assert text in out
    assert len(list((tmp_path / "out").glob("*.png"))) == 28


def test_mvsplat_chunks_load_with_torch(volumes, tmp_path, data_dir):
    torch = pytest.importorskip("torch")
    folder = data_dir / "dcm_qa_ct/In/Philips/S21570/S2010"
    code = main(
        [
            "export",
            "nerf",
            str(folder),
            str(tmp_path / "mv"),
            "--format",
            "mvsplat",
            "--window",
            "brain",
        ]
    )
    assert code == 0
    index = json.loads((tmp_path / "mv" / "index.json").read_text())
    (chunk_name,) = set(index.values())
    examples = torch.load(tmp_path / "mv" / chunk_name, weights_only=False)
    (example,) = examples
    assert example["cameras"].shape == (28, 18) and example["cameras"].dtype == torch.float32
    assert example["timestamps"].shape == (28,) and len(example["images"]) == 28
    first = Image.open(__import__("io").BytesIO(example["images"][0].numpy().tobytes()))
    assert first.size == (512, 512)
    extrinsics = example["cameras"][:, 6:].reshape(28, 3, 4).numpy().astype(np.float64)
    rotation = extrinsics[0, :, :3]
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-5)
    # OpenCV world-to-camera: consecutive camera centres one slice (5 mm × 0.001) apart
    centres = np.array([-e[:, :3].T @ e[:, 3] for e in extrinsics])
    np.testing.assert_allclose(np.linalg.norm(np.diff(centres, axis=0), axis=1), 0.005, rtol=1e-4)
    assert example["cameras"][0, :4].tolist() == pytest.approx([1.0, 1.0, 0.5, 0.5])
