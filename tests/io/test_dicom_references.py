"""DICOM series and enhanced multi-frame files against dcm2niix's reference NIfTI files.

Each test compares, in nibabel's closest-canonical orientation, voxel values and affines
(world positions within 1e-3 mm) with what Debian's dcm2niix wrote for the same input.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import radpipe
from radpipe.io.dicom.series import assemble, scan_series
from radpipe.volume import Volume


def canonical(image) -> tuple[np.ndarray, np.ndarray]:
    canonical_image = nib.as_closest_canonical(image)
    return np.asarray(canonical_image.dataobj), canonical_image.affine


def assert_same_world(volume: Volume, reference: Path, *, values: str = "equal") -> None:
    ours, our_affine = canonical(volume.to_nibabel())
    theirs, their_affine = canonical(nib.load(reference))
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(our_affine, their_affine, atol=1e-3)
    if values == "equal":
        np.testing.assert_array_equal(ours.astype(np.float64), theirs.astype(np.float64))


def test_philips_ct_matches_dcm2niix_and_skips_dirfile(data_dir):
    folder = data_dir / "dcm_qa_ct/In/Philips/S21570/S2010"
    volume = radpipe.load(folder)
    assert volume.shape == (28, 512, 512)
    assert volume.dtype == np.int16
    assert volume.meta.units == "HU"
    assert volume.meta.skipped_files == 1  # the DIRFILE
    assert volume.meta.slice_spacing_regular is True
    assert volume.spacing == pytest.approx((5.0, 0.451171875, 0.451171875), abs=1e-4)
    assert_same_world(volume, data_dir / "dcm_qa_ct/Ref_dcm2niix_debian/S2010_201.nii.gz")
    assert -1010 <= volume.array[:, 0, 0].mean() <= -990  # air in the corner, about -1000 HU


def test_ge_epi_time_series_matches_dcm2niix(data_dir):
    volume = radpipe.load(data_dir / "dcm_qa_nih/In/20180918GE/mr_0004")
    assert volume.shape == (15, 64, 64, 10)
    assert volume.meta.extra_axis == "time"
    assert volume.meta.skipped_files == 1  # README-Series.txt
    assert_same_world(volume, data_dir / "dcm_qa_nih/Ref/DCM2NIIX_regression_test_4.nii")


def test_siemens_enhanced_multiframe_files_form_a_time_series(data_dir):
    volume = radpipe.load(data_dir / "dcm_qa_enh/In/Siemens/XA10")
    assert volume.shape == (6, 64, 64, 4)
    assert_same_world(volume, data_dir / "dcm_qa_enh/Ref/Siemens_REST1_w_SMS_PF7-8_6.nii")


def test_philips_enhanced_magnitude_and_field_map_split(data_dir):
    """dcm2niix stores Philips floating-point values (stored / private ScaleSlope); radpipe
    applies the standard RescaleSlope / Intercept. Stored integers and geometry agree."""
    plans, _ = scan_series(data_dir / "dcm_qa_enh/In/Philips/IM_0027_fMAP.dcm")
    assert [plan.shape for plan in plans] == [(32, 64, 64), (32, 64, 64)]
    magnitude, field_map = (assemble(plan) for plan in plans)
    assert "M" in plans[0].records[0].split_key and "FIELD_MAP" in plans[1].records[0].split_key

    reference = nib.load(data_dir / "dcm_qa_enh/Ref/Philips_WIP_B0_NS_801_e1.nii")
    assert_same_world(
        magnitude, data_dir / "dcm_qa_enh/Ref/Philips_WIP_B0_NS_801_e1.nii", values="skip"
    )
    stored = np.rint(magnitude.array / plans[0].records[0].slope).astype(np.int32)
    theirs = np.asarray(nib.as_closest_canonical(reference).dataobj.get_unscaled())
    ours = np.asarray(nib.as_closest_canonical(magnitude.with_array(stored).to_nibabel()).dataobj)
    np.testing.assert_array_equal(ours, theirs)

    # the field map in Hz uses the standard rescale in both tools
    assert_same_world(
        field_map,
        data_dir / "dcm_qa_enh/Ref/Philips_WIP_B0_NS_801_e2_fieldmaphz.nii",
        values="skip",
    )
    theirs_hz = np.asarray(
        nib.as_closest_canonical(
            nib.load(data_dir / "dcm_qa_enh/Ref/Philips_WIP_B0_NS_801_e2_fieldmaphz.nii")
        ).get_fdata()
    )
    ours_hz = np.asarray(nib.as_closest_canonical(field_map.to_nibabel()).get_fdata())
    np.testing.assert_allclose(ours_hz, theirs_hz, atol=0.01)


@pytest.mark.parametrize(
    ("run", "reference"),
    [("mr_0003", "EPI_PE=AP_3"), ("mr_0004", "EPI_PE=PA_4"), ("mr_0005", "EPI_PE=RL_5"),
     ("mr_0006", "EPI_PE=LR_6")],
)  # fmt: skip
def test_siemens_mosaics_match_dcm2niix(data_dir, run, reference):
    """Siemens EPI mosaics unpacked (5 slices × 2 time points): voxels identical to dcm2niix's
    and affines within 1e-3 mm, in the canonical orientation."""
    import json

    volume = radpipe.load(data_dir / "dcm_qa_nih/In/20180918Si" / run)
    assert volume.shape == (5, 72, 72, 2) and volume.meta.extra_axis == "time"
    assert_same_world(volume, data_dir / "dcm_qa_nih/Ref" / f"{reference}.nii")
    sidecar = json.loads((data_dir / "dcm_qa_nih/Ref" / f"{reference}.json").read_text())
    # the CSA header's times; dcm2niix regularises one of them by 2.5 ms in mr_0004
    np.testing.assert_allclose(volume.meta.slice_timing_s, sidecar["SliceTiming"], atol=3e-3)
    assert volume.meta.phase_encoding_direction == sidecar["PhaseEncodingDirection"]


def test_a_mosaic_in_every_transfer_syntax_gives_identical_voxels(data_dir, tmp_path):
    """One mosaic re-encoded explicit / implicit / big endian / deflated / RLE / JPEG-LS /
    JPEG 2000 lossless: the same unpacked voxels as the original."""
    import pydicom
    from pydicom.uid import (
        DeflatedExplicitVRLittleEndian,
        ExplicitVRBigEndian,
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
        JPEG2000Lossless,
        JPEGLSLossless,
        RLELossless,
    )  # fmt: skip

    source = sorted((data_dir / "dcm_qa_nih/In/20180918Si/mr_0003").glob("*.dcm"))[0]
    original = radpipe.load(source)
    for number, syntax in enumerate([ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                                     ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian,
                                     RLELossless, JPEGLSLossless, JPEG2000Lossless]):  # fmt: skip
        dataset = pydicom.dcmread(source)
        if syntax.is_compressed:
            dataset.compress(syntax)
        else:
            dataset.file_meta.TransferSyntaxUID = syntax
        if syntax == ExplicitVRBigEndian:  # 16-bit words are stored byte-swapped
            dataset.PixelData = np.frombuffer(dataset.PixelData, "<u2").astype(">u2").tobytes()
        path = tmp_path / f"{number}.dcm"
        pydicom.filewriter.dcmwrite(path, dataset, enforce_file_format=True)
        np.testing.assert_array_equal(radpipe.load(path).array, original.array)


def test_dcmqi_ct_three_slices_in_hu(data_dir):
    volume = radpipe.load(data_dir / "dcmqi/data/segmentations/ct-3slice")
    assert volume.shape == (3, 512, 512)
    assert volume.dtype == np.int16 and volume.meta.units == "HU"
    # outside the body is air, inside has soft tissue near 0..100 HU
    assert volume.array.min() <= -1000
    centre = volume.array[1, 200:300, 200:300]
    assert -200 < float(np.median(centre)) < 200


def test_oblique_rt_utils_series_keeps_orientation(data_dir):
    import pydicom

    folder = data_dir / "rt-utils/tests/oriented_data"
    volume = radpipe.load(folder)
    headers = sorted(
        (pydicom.dcmread(path, stop_before_pixels=True) for path in folder.glob("*.dcm")),
        key=lambda ds: float(
            np.dot(
                ds.ImagePositionPatient,
                np.cross(ds.ImageOrientationPatient[:3], ds.ImageOrientationPatient[3:]),
            )
        ),
    )
    first = headers[0]
    row_direction = np.array(first.ImageOrientationPatient[:3], dtype=float)
    column_direction = np.array(first.ImageOrientationPatient[3:], dtype=float)
    np.testing.assert_allclose(volume.direction[:, 2], row_direction, atol=1e-6)
    np.testing.assert_allclose(volume.direction[:, 1], column_direction, atol=1e-6)
    for k, header in enumerate(headers):
        np.testing.assert_allclose(
            volume.index_to_world([k, 0, 0]),
            np.array(header.ImagePositionPatient, float),
            atol=1e-4,
        )
    assert abs(volume.direction[:, 2] @ [1, 0, 0]) < 0.999  # genuinely oblique
