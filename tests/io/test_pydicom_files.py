"""Every image file that pydicom and pydicom-data ship either loads or raises a ReadError with a
reason. The lists below are what radpipe is known to do with each; a change shows up here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

import radpipe
from radpipe.errors import ReadError

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"

# Files pydicom ships on purpose broken or without an image; each must give a ReadError.
EXPECTED_READ_ERRORS = {
    "JPEG-lossy.dcm": "decoder failed",
    "JPEG2000-embedded-sequence-delimiter.dcm": "decoder failed",
    "MR_truncated.dcm": "pixel data is truncated",
    "badVR.dcm": "invalid DICOM header value",
    "rtstruct.dcm": "RT Structure Set",
    "no_meta.dcm": "not a format radpipe reads",
    "emri_small_jpeg_2k_lossless_too_short.dcm": "decoder failed",
}


def _pydicom_data_files() -> list[Path]:
    try:
        import data_store  # the pydicom-data package
    except ImportError:
        return []
    return sorted(p for p in (Path(data_store.__file__).parent / "data").rglob("*") if p.is_file())


def _candidates() -> list[Path]:
    files = sorted(p for p in PYDICOM_FILES.rglob("*") if p.is_file())
    files += _pydicom_data_files()
    skip_suffix = (
        ".py",
        ".pyc",
        ".txt",
        ".json",
        ".md",
        ".gz",
        ".bz2",
        ".raw",
        ".npy",
        ".icc",
        ".dump",
    )
    return [p for p in files if not p.name.endswith(skip_suffix) and p.name != "README"]


@pytest.mark.parametrize("path", _candidates(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_file_loads_or_gives_a_reason(path):
    try:
        volume = radpipe.load(path)
    except ReadError as exc:
        message = str(exc)
        assert str(path) in message  # names the file
        expected = EXPECTED_READ_ERRORS.get(path.name)
        if expected is not None:
            assert expected in message
        return
    assert path.name not in EXPECTED_READ_ERRORS, f"{path.name} was expected to fail"
    assert volume.array.ndim in (3, 4)
    assert volume.array.size > 0
    assert np.isfinite(volume.affine).all()


def test_known_files_decode_to_pydicoms_values():
    """Native, RLE, JPEG 2000 and JPEG-LS versions of MR_small decode to the same values."""
    reference = pydicom.dcmread(PYDICOM_FILES / "MR_small.dcm").pixel_array
    for name in [
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
    ]:
        volume = radpipe.load(PYDICOM_FILES / name)
        np.testing.assert_array_equal(volume.array[0], reference, err_msg=name)


def test_ct_small_in_hu_and_rgb_delivered_as_rgb():
    ct = radpipe.load(PYDICOM_FILES / "CT_small.dcm")
    dataset = pydicom.dcmread(PYDICOM_FILES / "CT_small.dcm")
    expected = dataset.pixel_array * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
    np.testing.assert_array_equal(ct.array[0], expected)
    assert ct.meta.units == "HU"
    rgb = radpipe.load(PYDICOM_FILES / "SC_ybr_full_422_uncompressed.dcm")
    assert rgb.shape[-1] == 3 and rgb.meta.extra_axis == "rgb"
    rgb_reference = radpipe.load(PYDICOM_FILES / "SC_rgb_jpeg_dcmtk.dcm")
    assert rgb_reference.array.dtype == np.uint8


def test_rt_dose_frames_stack_on_the_grid_offsets():
    volume = radpipe.load(PYDICOM_FILES / "rtdose.dcm")
    dataset = pydicom.dcmread(PYDICOM_FILES / "rtdose.dcm")
    offsets = [float(v) for v in dataset.GridFrameOffsetVector]
    assert volume.shape[0] == len(offsets)
    assert volume.spacing[0] == pytest.approx(abs(offsets[1] - offsets[0]))
    scaled = dataset.pixel_array[0] * float(dataset.DoseGridScaling)
    k = 0 if offsets[1] > offsets[0] else len(offsets) - 1
    np.testing.assert_allclose(volume.array[k], scaled, rtol=1e-6)


def test_palette_colour_without_file_meta_is_rgb_as_pydicom_gives_it():
    """pydicom-data's OT-PAL-8-face.dcm: a bare data set (no file meta) in palette colour."""
    import warnings

    import pydicom
    from pydicom.pixels import apply_color_lut

    data_store = pytest.importorskip("data_store")
    path = Path(data_store.__file__).parent / "data" / "OT-PAL-8-face.dcm"
    volume = radpipe.load(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = pydicom.dcmread(path, force=True)
    dataset.file_meta = pydicom.dataset.FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    assert volume.shape == (1, 480, 640, 3)
    np.testing.assert_array_equal(volume.array[0], apply_color_lut(dataset.pixel_array, dataset))


GREY_J2K = [
    "JPEG2000.dcm", "J2K_pixelrep_mismatch.dcm", "693_J2KI.dcm", "693_J2KR.dcm",
    "MR_small_jp2klossless.dcm", "RG1_J2KR.dcm", "RG1_J2KI.dcm", "RG3_J2KR.dcm", "RG3_J2KI.dcm",
    "emri_small_jpeg_2k_lossless.dcm", "MR2_J2KI.dcm", "MR2_J2KR.dcm",
]  # fmt: skip


#: Grey JPEG-LS (lossless and near-lossless) and JPEG lossless files of pydicom's test data.
GREY_JPEG_LS_AND_LOSSLESS = [
    "emri_small_jpeg_ls_lossless.dcm", "MR_small_jpeg_ls_lossless.dcm",
    "JPEGLSNearLossless_08.dcm", "JPEGLSNearLossless_16.dcm",
    "JPEG-LL.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm",
]  # fmt: skip


@pytest.mark.parametrize("name", GREY_J2K + GREY_JPEG_LS_AND_LOSSLESS)
def test_grey_compressed_fast_path_decodes_as_pydicom(name):
    """The imagecodecs route (GIL released) gives the values of pydicom's own decoder plugins
    (pylibjpeg for JPEG 2000 and JPEG lossless, pyjpegls for JPEG-LS), or defers to them."""
    pytest.importorskip("imagecodecs")
    from pydicom.data import get_testdata_file
    from pydicom.pixels import pixel_array

    from radpipe.io.dicom.headers import frame_records
    from radpipe.io.dicom.pixels import (
        _decode_with_imagecodecs,
        decode_file_frames,
        releases_the_gil,
    )

    path = get_testdata_file(name)
    records = frame_records(path)
    layout = records[0].layout
    assert releases_the_gil(layout)
    # the fast route takes every file but the one whose header and codestream disagree
    fast = _decode_with_imagecodecs(path, layout, [r.frame for r in records])
    assert (fast is None) == (name == "J2K_pixelrep_mismatch.dcm")
    ours = decode_file_frames(path, layout, [r.frame for r in records])
    plugin = "pyjpegls" if name in GREY_JPEG_LS_AND_LOSSLESS[:4] else "pylibjpeg"
    reference = np.asarray(pixel_array(path, decoding_plugin=plugin))
    reference = reference if reference.ndim == 3 else reference[None]
    assert len(ours) == len(reference)
    for mine, theirs in zip(ours, reference, strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_signed_lossless_whose_precision_differs_from_bits_stored_defers_to_pydicom(tmp_path):
    """pydicom sign-extends signed JPEG-LS / JPEG lossless samples from the codestream's own
    precision; where that differs from Bits Stored the imagecodecs route declines and pydicom's
    values are returned."""
    pytest.importorskip("imagecodecs")
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.encaps import generate_frames
    from pydicom.pixels import pixel_array

    from radpipe.io.dicom.headers import frame_records
    from radpipe.io.dicom.pixels import (
        _decode_with_imagecodecs,
        _sample_precision,
        decode_file_frames,
    )

    source = get_testdata_file("MR_small_jpeg_ls_lossless.dcm")
    dataset = pydicom.dcmread(source)
    stream = bytes(next(generate_frames(dataset.PixelData, number_of_frames=1)))
    assert _sample_precision(stream) == 16 and dataset.PixelRepresentation == 1
    dataset.BitsStored, dataset.HighBit = 15, 14  # the header now disagrees with the stream
    path = tmp_path / "mismatch.dcm"
    dataset.save_as(path)
    records = frame_records(str(path))
    layout = records[0].layout
    assert _decode_with_imagecodecs(str(path), layout, [0]) is None
    (ours,) = decode_file_frames(str(path), layout, [0])
    np.testing.assert_array_equal(ours, pixel_array(str(path), decoding_plugin="pyjpegls"))
