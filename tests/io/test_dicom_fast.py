"""radpipe's fast header reader against pydicom: the same frame records and catalog facts for
every DICOM file in the test data (pydicom is the oracle)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pydicom
import pytest

from radpipe.catalog.discover import DescribeOptions, dicom_facts
from radpipe.errors import ReadError
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
