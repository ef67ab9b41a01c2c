"""NeRF export: cameras at the slices' real positions, rigid poses, exact PNGs, valid JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image

import radpipe
from radpipe.cli.main import main
from radpipe.errors import GeometryError, OutputExistsError, RadpipeWarning
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
    export_nerf(volume, tmp_path / "out", plane="coronal", mode="window", window=window,
                square=False, workers=2)  # fmt: skip
    document = json.loads((tmp_path / "out" / "transforms.json").read_text())
    for name, kind in NERFSTUDIO_FIELDS.items():
        assert isinstance(document[name], kind), name
    # kept pixels (0.45 mm wide, 5 mm high): fl_y = fl_x × column / row spacing
    assert document["w"] == 512 and document["h"] == 28 and document["fl_x"] == 512.0
    assert document["fl_y"] == pytest.approx(512.0 * 0.451171875 / 5.0)
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
    with pytest.warns(RadpipeWarning, match="nerfstudio and instant-ngp read PNG frames as 8-bit"):
        result = export_nerf(volume, tmp_path / "sub", selection=(2, 14), every=3, bit_depth=16,
                             split=(0.5, 0.25, 0.25), workers=1)  # fmt: skip
    document = json.loads((tmp_path / "sub" / "transforms.json").read_text())
    assert [f["slice_index"] for f in document["frames"]] == [2, 5, 8, 11]
    assert result.z_step == pytest.approx(2.5 * 3 * 0.001)
    assert result.slice_step_mm == pytest.approx(2.5 * 3)
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
        "Volume shape: (28, 512, 512) (slice, row, column)",
        "Focal length: fl_x 512.00, fl_y 512.00",
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


# --- --axis on NIfTI input counts the file's own i, j, k (the original converter's meaning) ---

NIFTI_SHAPE_IJK = (20, 24, 12)  # the phantom's (S, R, C) = (12, 24, 20), written as NIfTI


@pytest.fixture(scope="module")
def phantom_nifti(tmp_path_factory):
    """A phantom NIfTI of known, non-cubic shape (20, 24, 12) and spacing (1.2, 1.5, 2.5) mm."""
    ct = make_phantom(shape=(12, 24, 20), spacing=(2.5, 1.5, 1.2), tumours=0, seed=5).ct
    path = tmp_path_factory.mktemp("nifti") / "phantom.nii.gz"
    radpipe.save(ct, path)
    return path


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_axis_counts_the_nifti_files_own_axes(phantom_nifti, axis, tmp_path):
    """Oracle: nibabel's data array and affine of the same file."""
    image = nib.load(phantom_nifti)
    data = np.asarray(image.dataobj)
    assert data.shape == NIFTI_SHAPE_IJK
    window = Window(40, 400)
    out = tmp_path / "out"
    result = export_nerf(radpipe.load(phantom_nifti), out, axis=axis, mode="window",
                         window=window, square=False, workers=1)  # fmt: skip
    document = json.loads((out / "transforms.json").read_text())
    assert len(document["frames"]) == data.shape[axis]
    # documented display orientation: frame n is np.take(data, n, axis).T
    for n, frame in enumerate(document["frames"]):
        png = np.asarray(Image.open(out / frame["file_path"]))
        np.testing.assert_array_equal(png, apply_window(np.take(data, n, axis=axis).T, window))
    block = document["radpipe"]
    assert block["axis"] == axis and block["axis_order"] == "i, j, k"
    assert f"NIfTI voxel axis {'ijk'[axis]}" in block["axis_meaning"]
    assert block["array_axis"] == 2 - axis
    # cameras at the NIfTI slices' centres (RAS → LPS), one voxel size along the axis apart
    zooms = image.header.get_zooms()
    centre_index = (np.array(NIFTI_SHAPE_IJK) - 1) / 2
    lps = np.diag([-1.0, -1.0, 1.0])
    volume_centre = lps @ (image.affine[:3, :3] @ centre_index + image.affine[:3, 3])
    for n, frame in enumerate(document["frames"]):
        index = centre_index.copy()
        index[axis] = n
        expected = lps @ (image.affine[:3, :3] @ index + image.affine[:3, 3]) - volume_centre
        position = np.array(frame["transform_matrix"])[:3, 3]
        np.testing.assert_allclose(position, expected * 0.001, atol=1e-9)
    assert result.slice_spacing_mm == pytest.approx(zooms[axis])
    # frame columns run along the earlier remaining file axis, rows along the later
    columns_mm, rows_mm = (zooms[a] for a in range(3) if a != axis)
    assert document["fl_y"] / document["fl_x"] == pytest.approx(columns_mm / rows_mm)
    assert result.input_shape == NIFTI_SHAPE_IJK and result.axis_order == "i, j, k"


def test_axis_follows_the_file_after_reorientation(phantom_nifti, tmp_path):
    volume = radpipe.load(phantom_nifti).reoriented("SAR")
    result = export_nerf(volume, tmp_path / "out", axis=2, square=False, workers=1)
    assert len(result.files) == NIFTI_SHAPE_IJK[2]
    assert result.slice_spacing_mm == pytest.approx(2.5)
    assert result.input_shape == NIFTI_SHAPE_IJK  # from the file's header


@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_axis_counts_other_voxel_files_own_axes(suffix, tmp_path):
    """NRRD and MetaImage store i fastest like NIfTI; their readers reverse the axes too."""
    ct = make_phantom(shape=(12, 24, 20), spacing=(2.5, 1.5, 1.2), tumours=0, seed=5).ct
    path = radpipe.save(ct, tmp_path / f"phantom{suffix}")
    volume = radpipe.load(path)
    for axis, count in enumerate(NIFTI_SHAPE_IJK):
        result = export_nerf(volume, tmp_path / f"out{axis}", axis=axis, square=False, workers=1)
        assert len(result.files) == count
        np.testing.assert_array_equal(
            np.asarray(Image.open(result.folder / result.files[3])).shape,
            [n for a, n in enumerate(NIFTI_SHAPE_IJK) if a != axis][::-1],
        )


def test_dicom_axis_counts_the_array(volumes, tmp_path):
    export_nerf(volumes["head"], tmp_path / "out", axis=2, square=False, every=64,
                workers=1)  # fmt: skip
    document = json.loads((tmp_path / "out" / "transforms.json").read_text())
    assert [f["slice_index"] for f in document["frames"]] == list(range(0, 512, 64))
    assert (document["h"], document["w"]) == (28, 512)  # rows = slices, columns = rows
    assert document["radpipe"]["axis_order"] == "slice, row, column"
    assert "array axis 2 (column)" in document["radpipe"]["axis_meaning"]


def test_real_nifti_axis_two_is_axial_and_zero_sagittal(data_dir, tmp_path, capsys):
    """dcm2niix's NIfTI (512, 512, 28) of the head CT; oracle: nibabel's data array."""
    path = data_dir / "dcm_qa_ct/Ref_dcm2niix_debian/S2010_201.nii.gz"
    data = nib.load(path).get_fdata(dtype=np.float32)
    assert data.shape == (512, 512, 28)
    window = Window(-120, 1900)
    args = ["--window-center", "-120", "--window-width", "1900", "--axis", "2"]
    assert main(["export", "nerf", str(path), str(tmp_path / "axial"), *args]) == 0
    document = json.loads((tmp_path / "axial" / "transforms.json").read_text())
    assert len(document["frames"]) == 28 and (document["w"], document["h"]) == (512, 512)
    for frame in document["frames"][::9]:
        png = np.asarray(Image.open(tmp_path / "axial" / frame["file_path"]))
        np.testing.assert_array_equal(png, apply_window(data[:, :, frame["slice_index"]].T, window))
    out = capsys.readouterr().out
    for text in (
        "Volume shape: (512, 512, 28) (i, j, k)",
        "Voxel spacing: (0.4512, 0.4512, 5) mm (i, j, k)",
        "Slice step: 5.00 mm between frames",
        "Focal length: fl_x 512.00, fl_y 512.00",
        "Principal point: (256.00, 256.00)",
        "Z-step (camera translation): 0.005000 units",
        f"ns-train instant-ngp --data {tmp_path / 'axial'}",
    ):
        assert text in out, text
    assert "Slice thickness" not in out

    result = export_nerf(radpipe.load(path), tmp_path / "sagittal", axis=0, mode="window",
                         window=window, square=False)  # fmt: skip
    assert len(result.files) == 512 and result.image_shape == (28, 512)
    for n in (0, 200, 511):
        png = np.asarray(Image.open(tmp_path / "sagittal" / result.files[n]))
        np.testing.assert_array_equal(png, apply_window(data[n].T, window))


# --- anisotropic in-plane pixels: square by default, or kept with fl_x ≠ fl_y ---


@pytest.mark.parametrize("plane", ["coronal", "sagittal"])
def test_anisotropic_frames_are_resampled_to_square_pixels(volumes, plane, tmp_path):
    """Head CT: 0.4512 mm pixels, 5 mm slices; oracle: linear interpolation by np.interp."""
    volume = volumes["head"]
    window = Window(-120, 1900)
    out = tmp_path / "out"
    result = export_nerf(volume, out, plane=plane, mode="window", window=window, every=100,
                         workers=1)  # fmt: skip
    document = json.loads((out / "transforms.json").read_text())
    fine = 0.451171875
    height = round(28 * 5.0 / fine)
    assert (document["h"], document["w"]) == (height, 512) == result.image_shape
    assert result.resampled_from == (28, 512)
    assert result.pixel_spacing_mm == pytest.approx((fine, fine))
    assert abs(document["h"] * result.pixel_spacing_mm[0] - 28 * 5.0) <= fine  # physical height
    assert document["fl_x"] == document["fl_y"] == 512.0
    assert (document["cx"], document["cy"]) == (256.0, height / 2)
    assert document["radpipe"]["square_pixels"]["resampled_from"] == [28, 512]
    # each output row samples the original rows around the same physical point
    positions = np.clip((np.arange(height) - (height - 1) / 2) * fine / 5.0 + 13.5, 0, 27)
    shown = canonical(volume).array
    for frame in document["frames"]:
        index = frame["slice_index"]
        original = (shown[::-1, index] if plane == "coronal" else shown[::-1, :, index]).astype(
            float
        )
        expected = np.stack(
            [np.interp(positions, np.arange(28), original[:, c]) for c in range(512)], axis=1
        )
        png = np.asarray(Image.open(out / frame["file_path"])).astype(int)
        assert np.abs(png - apply_window(expected, window).astype(int)).max() <= 1
    # the cameras still sit at the (unchanged) slice centres: see the rigid-pose test above


def test_kept_pixels_write_the_focal_lengths_of_their_aspect(volumes, tmp_path, capsys):
    folder = str(tmp_path / "out")
    source = str(volumes["head"].source_name)
    assert main(["export", "nerf", source, folder, "--plane", "coronal", "--keep-pixels"]) == 0
    document = json.loads((tmp_path / "out" / "transforms.json").read_text())
    assert (document["w"], document["h"]) == (512, 28)
    row_mm, column_mm = 5.0, 0.451171875
    assert document["fl_x"] / document["fl_y"] == pytest.approx(row_mm / column_mm)
    # the field of view spans the frame's physical aspect (28 × 5 mm by 512 × 0.45 mm)
    half_x, half_y = document["camera_angle_x"] / 2, document["camera_angle_y"] / 2
    assert math.tan(half_y) / math.tan(half_x) == pytest.approx((28 * row_mm) / (512 * column_mm))
    assert document["radpipe"]["pixel_spacing_mm"] == pytest.approx([row_mm, column_mm])
    out = capsys.readouterr().out
    assert "Focal length: fl_x 512.00, fl_y 46.20" in out
    assert "Principal point: (256.00, 14.00)" in out


def test_square_pixels_leave_square_frames_alone(volumes, tmp_path):
    result = export_nerf(volumes["head"], tmp_path / "out", plane="axial", every=7, workers=1)
    assert result.resampled_from is None and result.image_shape == (512, 512)


# --- 16-bit frames warn once that nerfstudio / instant-ngp read 8-bit ---


def test_cli_warns_once_about_sixteen_bit_frames(volumes, tmp_path, capsys):
    source = str(volumes["head"].source_name)
    assert main(["export", "nerf", source, str(tmp_path / "a"), "--bit-depth", "16"]) == 0
    warnings_printed = [
        line for line in capsys.readouterr().err.splitlines() if "radpipe: warning:" in line
    ]
    assert len(warnings_printed) == 1
    assert "nerfstudio and instant-ngp read PNG frames as 8-bit" in warnings_printed[0]
    assert "16-bit frames are for other consumers" in warnings_printed[0]
    assert np.asarray(Image.open(tmp_path / "a" / "001.png")).max() > 255
    assert main(["export", "nerf", source, str(tmp_path / "b"), "--every", "9"]) == 0
    assert "radpipe: warning:" not in capsys.readouterr().err


def test_cli_summary_names_the_step_between_frames(volumes, tmp_path, capsys):
    source = str(volumes["head"].source_name)
    assert main(["export", "nerf", source, str(tmp_path / "out"), "--every", "2"]) == 0
    out = capsys.readouterr().out
    assert "Slice step: 10.00 mm between frames (slices 5.00 mm apart)" in out
    assert "Z-step (camera translation): 0.010000 units" in out
    assert "Saved 14 slices" in out
