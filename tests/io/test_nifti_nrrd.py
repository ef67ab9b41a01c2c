"""NIfTI / NRRD / Analyze / MINC readers and writers, checked against nibabel and SimpleITK."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

import radpipe
from radpipe.errors import FormatError, OutputExistsError, ReadError

NIBABEL_DATA = Path(nib.__file__).parent / "tests" / "data"


def test_nifti_round_trip_keeps_values_and_geometry(phantom_study, tmp_path):
    volume = radpipe.load(phantom_study.series_folder)
    path = radpipe.save(volume, tmp_path / "ct.nii.gz")
    header = nib.load(path).header
    assert int(header["sform_code"]) == 1 and int(header["qform_code"]) == 1
    np.testing.assert_allclose(header.get_sform(), header.get_qform(), atol=1e-4)
    back = radpipe.load(path)
    np.testing.assert_array_equal(back.array, volume.array)
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-5)
    with pytest.raises(OutputExistsError):
        radpipe.save(volume, path)


def test_nrrd_matches_simpleitk_reading_the_same_file(data_dir, tmp_path):
    path = data_dir / "pyradiomics/data/brain1_image.nrrd"
    volume = radpipe.load(path)
    image = sitk.ReadImage(str(path))
    np.testing.assert_array_equal(volume.array, sitk.GetArrayFromImage(image))
    for index in [(0, 0, 0), (5, 7, 9)]:
        k, j, i = index
        assert volume.index_to_world(index) == pytest.approx(
            image.TransformIndexToPhysicalPoint((i, j, k)), abs=1e-4
        )
    written = radpipe.save(volume, tmp_path / "copy.nrrd")
    again = sitk.ReadImage(str(written))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(again), volume.array)
    assert again.GetDirection() == pytest.approx(image.GetDirection(), abs=1e-6)
    assert again.GetOrigin() == pytest.approx(image.GetOrigin(), abs=1e-4)


def test_label_map_nrrd_voxel_volume(data_dir):
    labels = radpipe.load(data_dir / "pyradiomics/data/brain1_label.nrrd")
    # pyradiomics baseline: original_shape_VoxelVolume of brain1 = 16412.66 mm3 (label 1)
    volume_mm3 = np.count_nonzero(labels.array == 1) * labels.voxel_volume_mm3
    assert volume_mm3 == pytest.approx(16412.66, abs=0.05)


def test_nifti_written_by_radpipe_reads_identically_in_simpleitk(phantom_study, tmp_path):
    volume = radpipe.load(phantom_study.series_folder)
    path = radpipe.save(volume, tmp_path / "ct.nii")
    image = sitk.ReadImage(str(path))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), volume.array)
    k, j, i = 3, 10, 20
    assert image.TransformIndexToPhysicalPoint((i, j, k)) == pytest.approx(
        tuple(volume.index_to_world([k, j, i])), abs=1e-4
    )


@pytest.mark.parametrize(
    "name", ["small.mnc", "minc1_1_scale.mnc", "minc2_1_scale.mnc", "example4d.nii.gz"]
)
def test_nibabel_formats_load_with_nibabels_values(name):
    path = NIBABEL_DATA / name
    image = nib.load(path)
    volume = radpipe.load(path)
    data = np.asarray(image.dataobj)
    while data.ndim < 3:
        data = data[..., np.newaxis]
    expected = np.transpose(data, (2, 1, 0, *range(3, data.ndim)))
    np.testing.assert_allclose(volume.array, expected, rtol=1e-6)


def test_analyze_written_by_nibabel(tmp_path):
    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    affine = np.diag([-2.0, 3.0, 4.0, 1.0])  # Analyze stores spacing only, in RAS with x flipped
    nib.save(nib.AnalyzeImage(data, affine), tmp_path / "scan.img")
    volume = radpipe.load(tmp_path / "scan.hdr")
    assert "Analyze" in (volume.meta.source_format or "")
    np.testing.assert_array_equal(volume.array, np.transpose(data, (2, 1, 0)))
    assert volume.spacing == pytest.approx((4.0, 3.0, 2.0))


def test_bad_paths_and_formats(tmp_path):
    with pytest.raises(ReadError, match="no such file"):
        radpipe.load(tmp_path / "missing.nii.gz")
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not a nifti file")
    with pytest.raises(ReadError, match=r"broken\.nii\.gz: cannot read"):
        radpipe.load(broken)
    volume = radpipe.Volume(np.zeros((2, 3, 4), np.int16), np.eye(4))
    with pytest.raises(FormatError, match="unknown output format"):
        radpipe.save(volume, tmp_path / "out.png")
    assert not list(tmp_path.glob(".out*"))
