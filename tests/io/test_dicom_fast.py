"""radpipe's fast header reader against pydicom: the same frame records and catalog facts for
every DICOM file in the test data (pydicom is the oracle)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest

from radpipe.catalog.discover import DescribeOptions, dicom_facts
from radpipe.errors import ReadError
from radpipe.io.dicom import fast_header
from radpipe.io.dicom.fast_header import FastHeader, read_fast_header
from radpipe.io.dicom.headers import SkippedFile, frame_records

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def _files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix not in (".txt", ".json", ".nii", ".gz", ".nrrd", ".csv", ".py", ".md")
    )


def _compare(path: Path) -> bool:
    """True when the fast reader handled the file (and agreed with pydicom)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            slow = frame_records(path, fast=False)
        except ReadError:
            return False
        with open(path, "rb") as handle:
            quick = read_fast_header(handle)
        if quick is None:
            return False
        fast = frame_records(path)
    if isinstance(slow, SkippedFile):
        assert isinstance(fast, SkippedFile) and fast.reason == slow.reason, path
        return True
    assert fast == slow, path
    header = quick[0]
    assert isinstance(header, FastHeader)
    options = DescribeOptions(key=b"k")
    full = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    assert dicom_facts(header, options) == dicom_facts(full, options), path
    return True


@pytest.mark.parametrize(
    "folder", ["dcm_qa_ct", "dcm_qa_nih", "dcmqi", "rt-utils", "pyCERR", "sunnybrook", "highdicom"]
)
def test_fast_reader_agrees_with_pydicom_on_real_data(data_dir, folder):
    handled = [_compare(path) for path in _files(data_dir / folder)]
    assert any(handled), f"the fast reader handled no file of {folder}"


def test_fast_reader_agrees_on_pydicom_test_files():
    handled = sum(_compare(path) for path in _files(PYDICOM_FILES))
    assert handled >= 30


def test_fast_reader_declines_what_it_does_not_handle():
    for name in ("MR_small_bigendian.dcm", "image_dfl.dcm", "SC_rgb_rle_2frame.dcm", "no_meta.dcm"):
        with open(PYDICOM_FILES / name, "rb") as handle:
            assert read_fast_header(handle) is None, name


def _walk_inputs(data_dir: Path) -> list[bytes]:
    roots = [PYDICOM_FILES, data_dir / "dcm_qa_ct", data_dir / "sunnybrook", data_dir / "highdicom"]
    files = [path for root in roots for path in _files(root)[:60]]
    return [path.read_bytes()[:200_000] for path in files]


def test_the_compiled_walk_is_built():
    """``make test`` installs radpipe with its extension; a missing one would silently fall
    back to the Python walk (5x slower), so the suite refuses to pass without it."""
    assert fast_header.walk_compiled is not None
    assert fast_header.walk is fast_header.walk_compiled


def test_compiled_walk_equals_python_walk(data_dir):
    checked = 0
    for data in _walk_inputs(data_dir):
        expected = fast_header.walk_python(data)
        assert fast_header.walk_compiled(data) == expected
        checked += expected is not None
    assert checked >= 40


def test_compiled_walk_equals_python_walk_on_damaged_bytes(data_dir):
    """Truncated copies and copies with bytes overwritten (lengths, VRs and tags included):
    both walks give the same result, None included, and neither raises."""
    rng = np.random.default_rng(7)
    differing = 0
    for data in _walk_inputs(data_dir)[::2]:
        whole = fast_header.walk_python(data)
        header_end = whole[3] if whole is not None and whole[3] else min(len(data), 4096)
        for cut in rng.integers(0, header_end + 16, 12):
            piece = data[:cut]
            assert fast_header.walk_compiled(piece) == fast_header.walk_python(piece)
        for _ in range(25):
            damaged = bytearray(data[: header_end + 64])
            for position in rng.integers(128, max(129, header_end), 3):
                damaged[position] = int(rng.integers(0, 256))
            piece = bytes(damaged)
            expected = fast_header.walk_python(piece)
            assert fast_header.walk_compiled(piece) == expected
            differing += expected != whole
    assert differing > 200  # the damage changed what the walks found, many times over


def _edge_case_files(folder: Path) -> list[Path]:
    """Small files written by pydicom with what real headers rarely hold: padded and multiple
    names, each character set, empty and undefined-length sequences (functional groups
    included), nested undefined lengths, implicit and explicit VR."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

    paths = []
    cases = [
        (charset, name, syntax, undefined, groups)
        for charset, name in (
            ("", "  Doe^John  "),
            ("ISO_IR 100", "Müller^Jörg\\Mueller^Joerg "),
            ("ISO_IR 192", "  山田^太郎 "),
            ("ISO 2022 IR 87", "Yamada"),
        )
        for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
        for undefined in (False, True)
        for groups in ("none", "empty", "items")
    ]
    for index, (charset, name, syntax, undefined, groups) in enumerate(cases):
        ds = Dataset()
        if charset:
            ds.SpecificCharacterSet = charset
        ds.PatientName = name
        ds.PatientID = f" ID{index} "
        ds.StudyDescription = "  padded  \\second "
        ds.ImageType = ["ORIGINAL", " PRIMARY", "AXIAL "]
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ds.SOPInstanceUID = generate_uid()
        ds.SeriesInstanceUID = generate_uid()
        ds.ImagePositionPatient = [0, 0, index]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.5, 0.5]
        inner = Dataset()
        inner.CodeValue = "T-D0050"
        inner.CodeMeaning = "Tissue"
        outer = Dataset()
        outer.AnatomicRegionSequence = Sequence([inner])
        ds.ReferencedImageSequence = Sequence([outer, Dataset()])
        if groups == "empty":
            ds.PerFrameFunctionalGroupsSequence = Sequence([Dataset()])
        elif groups == "items":
            ds.PerFrameFunctionalGroupsSequence = Sequence([outer])
        ds.Rows = ds.Columns = 2
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        ds.PixelData = bytes(8)
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = syntax
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        if undefined:
            for sequence in ("ReferencedImageSequence", "PerFrameFunctionalGroupsSequence"):
                if sequence in ds:
                    ds[sequence].is_undefined_length = True
            outer["AnatomicRegionSequence"].is_undefined_length = True
        path = folder / f"edge{index:02d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_both_walks_agree_with_pydicom_on_edge_cases(tmp_path):
    paths = _edge_case_files(tmp_path)
    handled = 0
    names = set()
    for path in paths:
        data = path.read_bytes()
        walked = fast_header.walk_python(data)
        assert fast_header.walk_compiled(data) == walked, path
        if walked is not None:
            names.add(str(walked[0].get("PatientName")))
        for cut in range(128, len(data)):  # every truncation: the same None or the same result
            assert fast_header.walk_compiled(data[:cut]) == fast_header.walk_python(data[:cut])
        handled += _compare(path)
    assert handled >= 24  # the ISO 2022 and functional-group cases go to pydicom
    assert {"  Doe^John", "  山田^太郎"} <= names  # PN keeps leading spaces, as pydicom does
