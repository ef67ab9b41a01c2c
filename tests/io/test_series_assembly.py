"""Series assembly on phantom studies of known truth: sorting, rescale, duplicates, gaps, tilt,
compressed transfer syntaxes, and dcm2niix as an independent oracle of geometry."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

import radpipe
from radpipe.errors import DuplicateSliceWarning, GeometryWarning, ReadError, SeriesError
from radpipe.export.dicom import SeriesIdentity, write_ct_series
from radpipe.io.dicom.series import scan_series
from radpipe.phantom import make_phantom
from radpipe.volume import Volume

IDENTITY = SeriesIdentity(
    patient_id="P-1",
    patient_name="Test^Patient",
    study_uid="1.2.3.4",
    series_uid="1.2.3.4.5",
    frame_of_reference_uid="1.2.3.4.6",
)


def copy_series(source: Path, target: Path) -> list[Path]:
    shutil.copytree(source, target)
    return sorted(target.glob("*.dcm"))


def test_phantom_reads_back_exactly(phantom_study):
    volume = radpipe.load(phantom_study.series_folder)
    truth = phantom_study.phantom.ct
    np.testing.assert_array_equal(volume.array, truth.array)
    np.testing.assert_allclose(volume.affine, truth.affine, atol=1e-4)
    assert volume.dtype == np.int16 and volume.meta.units == "HU"
    assert volume.meta.patient_id == "P-1" or volume.meta.patient_id == phantom_study.patient_id


def test_order_comes_from_positions_not_names(phantom_study, tmp_path):
    files = copy_series(phantom_study.series_folder, tmp_path / "ct")
    rng = np.random.default_rng(0)
    for index, path in enumerate(rng.permutation(files)):  # scramble names and InstanceNumber
        dataset = pydicom.dcmread(path)
        dataset.InstanceNumber = index + 1
        dataset.save_as(path)
        path.rename(path.with_name(f"x{index:03d}"))
    volume = radpipe.load(tmp_path / "ct")
    np.testing.assert_array_equal(volume.array, phantom_study.phantom.ct.array)


def test_rescale_is_applied_per_slice(phantom_study, tmp_path):
    files = copy_series(phantom_study.series_folder, tmp_path / "ct")
    dataset = pydicom.dcmread(files[5])
    z = float(dataset.ImagePositionPatient[2])
    dataset.RescaleSlope, dataset.RescaleIntercept = "2", "-2048"
    stored = dataset.pixel_array.astype(np.int32)
    dataset.PixelData = (
        ((stored - 1024 + 2048) // 2).astype(np.uint16).tobytes()
    )  # same HU, other scaling
    dataset.save_as(files[5])
    volume = radpipe.load(tmp_path / "ct")
    k = round(float(volume.world_to_index([0, 0, z])[0]))
    truth = phantom_study.phantom.ct.array
    assert volume.dtype == np.int16
    assert (
        np.abs(volume.array[k].astype(int) - truth[k]).max() <= 1
    )  # halved precision on that slice
    np.testing.assert_array_equal(np.delete(volume.array, k, 0), np.delete(truth, k, 0))


def test_fractional_rescale_gives_float32(phantom_study, tmp_path):
    files = copy_series(phantom_study.series_folder, tmp_path / "ct")
    for path in files:
        dataset = pydicom.dcmread(path)
        dataset.RescaleSlope = "0.5"
        dataset.save_as(path)
    volume = radpipe.load(tmp_path / "ct")
    assert volume.dtype == np.float32
    expected = (phantom_study.phantom.ct.array.astype(np.float64) + 1024) * 0.5 - 1024
    np.testing.assert_allclose(volume.array, expected)


def test_duplicate_positions_error_or_keep_one(phantom_study, tmp_path):
    files = copy_series(phantom_study.series_folder, tmp_path / "ct")
    shutil.copy(files[3], tmp_path / "ct" / "copy.dcm")
    with pytest.raises(
        SeriesError, match=r"slice positions hold more than one image.*on-duplicate"
    ):
        radpipe.load(tmp_path / "ct")
    with pytest.warns(DuplicateSliceWarning, match=r"ct: 1 duplicate images at 1 slice"):
        volume = radpipe.load(tmp_path / "ct", on_duplicate="first")
    assert volume.shape == phantom_study.phantom.ct.shape
    assert any("duplicate" in w for w in volume.meta.warnings)


def test_missing_and_uneven_slices_are_reported(phantom_study, tmp_path):
    files = copy_series(phantom_study.series_folder, tmp_path / "gap")
    files[10].unlink()
    with pytest.warns(GeometryWarning, match=r"gap: 1 slice\(s\) missing"):
        volume = radpipe.load(tmp_path / "gap", irregular="mean")
    assert volume.meta.slice_spacing_regular is False
    assert any("1 slice(s) missing" in w for w in volume.meta.warnings)

    files = copy_series(phantom_study.series_folder, tmp_path / "uneven")
    dataset = pydicom.dcmread(files[7])
    position = [float(v) for v in dataset.ImagePositionPatient]
    dataset.ImagePositionPatient = [position[0], position[1], position[2] + 0.9]
    dataset.save_as(files[7])
    with pytest.warns(GeometryWarning, match="uneven slice spacing"):
        volume = radpipe.load(tmp_path / "uneven", irregular="mean")
    assert any("uneven slice spacing" in w for w in volume.meta.warnings)

    files = copy_series(phantom_study.series_folder, tmp_path / "noise")
    dataset = pydicom.dcmread(files[7])
    position = [float(v) for v in dataset.ImagePositionPatient]
    dataset.ImagePositionPatient = [position[0], position[1], position[2] + 0.004]  # rounding noise
    dataset.save_as(files[7])
    assert radpipe.load(tmp_path / "noise").meta.slice_spacing_regular is True


@pytest.mark.parametrize("degrees", [5.0, 12.0, 30.0])
def test_gantry_tilt_kept_sheared_or_resampled(tmp_path, degrees):
    phantom = make_phantom(shape=(20, 64, 64), spacing=(2.0, 2.0, 2.0), tumours=1, seed=2)
    tilt = np.radians(degrees)
    # table moves along z while the image plane is tilted about x: rows go along (0, cos, -sin)
    affine = phantom.ct.affine.copy()
    affine[:3, 1] = 2.0 * np.array([0.0, np.cos(tilt), -np.sin(tilt)])
    tilted = Volume(phantom.ct.array, affine)
    write_ct_series(tilted, tmp_path / "tilt", IDENTITY)
    volume = radpipe.load(tmp_path / "tilt", resample_tilt=False)
    assert volume.meta.gantry_tilt_deg == pytest.approx(degrees, abs=0.01)
    np.testing.assert_allclose(volume.affine, affine, atol=1e-4)
    np.testing.assert_array_equal(volume.array, phantom.ct.array)

    with pytest.warns(GeometryWarning, match="resampled from a"):
        resampled = radpipe.load(tmp_path / "tilt")  # the default removes the shear
    cosine = abs(
        resampled.direction[:, 0] @ np.cross(resampled.direction[:, 2], resampled.direction[:, 1])
    )
    assert np.degrees(np.arccos(min(cosine, 1.0))) < 1e-6  # slices along the plane normal
    # every resampled voxel equals the sheared volume interpolated at the same world point
    from scipy import ndimage

    indices = np.array([[k, j, i] for k in (3, 10, 16) for j in (20, 32, 44) for i in (16, 32, 48)])
    source = volume.world_to_index(resampled.index_to_world(indices))
    assert np.allclose(source[:, 0], indices[:, 0], atol=1e-6)  # same slice plane
    expected = ndimage.map_coordinates(volume.array.astype(np.float64), source.T, order=1)
    actual = resampled.array[tuple(indices.T)].astype(np.float64)
    np.testing.assert_allclose(actual, expected, atol=1.0)


@pytest.mark.parametrize("syntax", ["implicit", "rle", "jpeg2000", "jpegls"])
def test_compressed_and_implicit_series_decode_losslessly(tmp_path, syntax):
    phantom = make_phantom(shape=(6, 48, 40), spacing=(3.0, 2.0, 2.0), tumours=0, seed=4)
    write_ct_series(phantom.ct, tmp_path / syntax, IDENTITY, transfer_syntax=syntax)
    volume = radpipe.load(tmp_path / syntax)
    np.testing.assert_array_equal(volume.array, phantom.ct.array)


def test_folder_with_two_series_needs_a_choice(phantom_study, tmp_path):
    shutil.copytree(phantom_study.series_folder, tmp_path / "a")
    phantom = make_phantom(shape=(6, 32, 32), spacing=(3.0, 4.0, 4.0), tumours=0, seed=1)
    write_ct_series(phantom.ct, tmp_path / "b", IDENTITY)
    with pytest.raises(SeriesError, match="holds 2 series"):
        radpipe.load(tmp_path)
    volume = radpipe.load(tmp_path, series=IDENTITY.series_uid)
    assert volume.shape == (6, 32, 32)
    with pytest.raises(SeriesError, match="no series"):
        radpipe.load(tmp_path, series="9.9.9")


def test_truncated_and_foreign_files(phantom_study, tmp_path):
    files = copy_series(phantom_study.series_folder, tmp_path / "ct")
    data = files[2].read_bytes()
    files[2].write_bytes(data[: len(data) - 5000])
    with pytest.raises(ReadError, match=r"IM00\d\d\.dcm: pixel data is truncated"):
        radpipe.load(tmp_path / "ct")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "report.txt").write_text("not an image")
    with pytest.raises(ReadError, match="no DICOM images found in 1 file"):
        radpipe.load(tmp_path / "notes")


def test_geometry_agrees_with_dcm2niix_on_the_phantom(phantom_study, tmp_path, dcm2niix):
    subprocess.run(
        [
            dcm2niix,
            "-z",
            "n",
            "-f",
            "reference",
            "-o",
            str(tmp_path),
            str(phantom_study.series_folder),
        ],
        check=True,
        capture_output=True,
    )
    reference = nib.as_closest_canonical(nib.load(tmp_path / "reference.nii"))
    ours = nib.as_closest_canonical(radpipe.load(phantom_study.series_folder).to_nibabel())
    np.testing.assert_allclose(ours.affine, reference.affine, atol=1e-3)
    np.testing.assert_array_equal(np.asarray(ours.dataobj), np.asarray(reference.dataobj))


def test_scan_series_reads_headers_only(phantom_study):
    plans, skipped = scan_series(phantom_study.folder)
    assert len(plans) == 1 and plans[0].shape == phantom_study.phantom.ct.shape
    assert sorted(Path(s.path).name for s in skipped) == ["labels.json", "labels.nii.gz"]


def test_monochrome1_reads_like_monochrome2(phantom_study, tmp_path):
    files = copy_series(phantom_study.series_folder, tmp_path / "ct")
    for path in files:
        dataset = pydicom.dcmread(path)
        stored = dataset.pixel_array.astype(np.int32)
        dataset.PhotometricInterpretation = "MONOCHROME1"
        dataset.PixelData = (4095 - stored).astype(np.uint16).tobytes()  # 12 stored bits
        dataset.save_as(path)
    volume = radpipe.load(tmp_path / "ct")
    np.testing.assert_array_equal(volume.array, phantom_study.phantom.ct.array)


def test_signed_pixels_with_fewer_stored_bits_are_sign_extended(phantom_study, tmp_path):
    files = copy_series(phantom_study.series_folder, tmp_path / "ct")
    for path in files:
        dataset = pydicom.dcmread(path)
        hu = dataset.pixel_array.astype(np.int32) - 1024
        dataset.PixelRepresentation = 1
        dataset.BitsStored, dataset.HighBit = 12, 11
        dataset.RescaleIntercept = "0"
        # 12-bit two's complement with the 4 unused high bits left at zero
        dataset.PixelData = (hu & 0x0FFF).astype(np.uint16).tobytes()
        dataset.save_as(path)
    volume = radpipe.load(tmp_path / "ct")
    expected = np.clip(phantom_study.phantom.ct.array, -2048, 2047)
    np.testing.assert_array_equal(volume.array, expected)


@pytest.mark.parametrize(
    ("syntax", "message"),
    [
        (b"1.2.840.10008.1.2.9", "unknown transfer syntax 1.2.840.10008.1.2.9"),
        (b"1.2.840.10008.1.2.5", "stored raw"),  # an RLE label over native pixels
    ],
)
def test_a_wrong_transfer_syntax_is_refused_not_read_as_native(
    phantom_study, tmp_path, syntax, message
):
    """The file meta's UID is patched in place (same length), as a broken exporter would."""
    files = copy_series(phantom_study.series_folder, tmp_path / "ct")
    data = files[4].read_bytes()
    explicit = b"1.2.840.10008.1.2.1\0"
    assert data.count(explicit) == 1
    files[4].write_bytes(data.replace(explicit, syntax + b"\0"))
    with pytest.raises(ReadError, match=message):
        radpipe.load(tmp_path / "ct")


@pytest.mark.parametrize(("keyword", "dtype"), [("FloatPixelData", np.float32),
                                                 ("DoubleFloatPixelData", np.float64)])  # fmt: skip
def test_float_pixel_data_reads_as_pydicom_decodes_it(phantom_study, tmp_path, keyword, dtype):
    """Parametric maps (Float / Double Float Pixel Data): values equal to pydicom's, not the
    zeros or integers of the stored bytes read as unsigned."""
    files = copy_series(phantom_study.series_folder, tmp_path / "map")
    rng = np.random.default_rng(3)
    expected = []
    for path in files:
        dataset = pydicom.dcmread(path)
        values = rng.normal(0.0, 1e-3, (dataset.Rows, dataset.Columns)).astype(dtype)
        del dataset.PixelData, dataset.PixelRepresentation
        for name in ("RescaleSlope", "RescaleIntercept", "BitsStored", "HighBit"):
            if name in dataset:
                delattr(dataset, name)
        dataset.BitsAllocated = 64 if dtype == np.float64 else 32
        setattr(dataset, keyword, values.tobytes())
        dataset.save_as(path)
        expected.append((float(dataset.ImagePositionPatient[2]), pydicom.dcmread(path).pixel_array))
    volume = radpipe.load(tmp_path / "map")
    assert volume.dtype == dtype
    ordered = np.stack([values for _, values in sorted(expected, key=lambda item: item[0])])
    np.testing.assert_array_equal(volume.array, ordered)


def test_irregular_slices_are_resampled_through_their_true_positions(phantom_study, tmp_path):
    """Slices at uneven heights (one missing) carry a value that is linear in z: the default
    load puts every output plane exactly where its position says (a regular grid from the first
    slice to the last) with values equal to the analytic ones; 'mean' keeps the slices and
    'error' refuses."""
    files = copy_series(phantom_study.series_folder, tmp_path / "uneven")
    heights = np.cumsum([0.0] + [2.5 if k % 3 else 4.0 for k in range(1, len(files))])
    heights[10:] += 2.5  # a missing slice too
    by_position = []
    for path, z in zip(sorted(files, key=lambda f: pydicom.dcmread(f).ImagePositionPatient[2]),
                       heights, strict=True):  # fmt: skip
        dataset = pydicom.dcmread(path)
        x, y, _ = (float(v) for v in dataset.ImagePositionPatient)
        dataset.ImagePositionPatient = [x, y, float(z)]
        stored = np.full((dataset.Rows, dataset.Columns), 1024 + round(10 * z), np.uint16)
        dataset.PixelData = stored.tobytes()
        dataset.save_as(path)
        by_position.append(z)
    with pytest.warns(GeometryWarning, match="resampled onto a regular"):
        volume = radpipe.load(tmp_path / "uneven")
    step = volume.spacing[0]
    assert step == pytest.approx(float(np.median(np.diff(heights))))
    count = volume.shape[0]
    indices = np.stack([np.arange(count), np.zeros(count), np.zeros(count)], axis=1)
    centres = volume.index_to_world(indices)[:, 2]
    np.testing.assert_allclose(centres, heights[0] + step * np.arange(volume.shape[0]), atol=1e-6)
    assert centres[-1] <= heights[-1] + 0.1 * step
    expected = np.rint(10 * centres)  # HU = stored − 1024 = 10 z, linear, so exact after blending
    np.testing.assert_allclose(volume.array[:, 5, 5], expected, atol=1.0)
    kept = radpipe.load(tmp_path / "uneven", irregular="mean")
    assert kept.shape[0] == len(files)
    with pytest.raises(SeriesError, match="irregular"):
        radpipe.load(tmp_path / "uneven", irregular="error")
