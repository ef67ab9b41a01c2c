"""De-identification: no original identifying value survives, volumes load identically, and
references between series stay valid."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

import radpipe
from radpipe.cli.main import main
from radpipe.export.deidentify import KEEP_UIDS, deidentify_tree
from radpipe.io.atomic import OUTPUT_MARKER


def _is_identifier(element) -> bool:
    if not str(element.value).strip():
        return False
    if element.VR in ("PN", "DA"):
        return True
    if element.VR == "UI":
        return element.keyword not in KEEP_UIDS
    return element.keyword in ("PatientID", "AccessionNumber", "InstitutionName")


def identifying_values(folder: Path) -> set[str]:
    """Every name, identifier, instance UID and date in the original files."""
    found: set[str] = set()

    def collect(dataset) -> None:
        for element in dataset:
            if element.VR == "SQ":
                for item in element.value:
                    collect(item)
            elif _is_identifier(element):
                found.add(str(element.value))

    for path in folder.rglob("*"):
        if path.is_file():
            try:
                collect(pydicom.dcmread(path))
            except pydicom.errors.InvalidDicomError:
                continue
    return {value for value in found if len(value) >= 4}


@pytest.fixture
def study_with_rtstruct(data_dir, tmp_path) -> Path:
    root = tmp_path / "study"
    shutil.copytree(data_dir / "rt-utils/tests/mock_data", root / "rt")
    for name in ("invalid_reference_rt.dcm", "non_existent_reference_rt.dcm"):
        (root / "rt" / name).unlink()
    return root


def test_no_identifying_value_survives(study_with_rtstruct, phantom_study, tmp_path):
    shutil.copytree(phantom_study.series_folder, study_with_rtstruct / "phantom")
    originals = identifying_values(study_with_rtstruct)
    assert len(originals) > 30
    report = deidentify_tree(study_with_rtstruct, tmp_path / "out", key=b"test-key")
    assert report.written == 3 + len(phantom_study.files)
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file() and path.name != OUTPUT_MARKER:
            data = path.read_bytes()
            leaked = [value for value in originals if value.encode() in data]
            assert leaked == [], f"{path.name} still holds {leaked[:5]}"
            dataset = pydicom.dcmread(path)
            assert dataset.PatientIdentityRemoved == "YES"
            assert not any(element.tag.is_private for element in dataset)


def test_volumes_load_identically_and_references_stay_valid(study_with_rtstruct, tmp_path):
    deidentify_tree(study_with_rtstruct, tmp_path / "out", key=b"test-key")
    before = radpipe.load(study_with_rtstruct / "rt")
    after = radpipe.load(tmp_path / "out" / "rt")
    np.testing.assert_array_equal(after.array, before.array)
    np.testing.assert_allclose(after.affine, before.affine)
    ct_uids = {
        pydicom.dcmread(p).SOPInstanceUID for p in (tmp_path / "out" / "rt").glob("ct_*.dcm")
    }
    structure = pydicom.dcmread(tmp_path / "out" / "rt" / "rt.dcm")
    referenced = {
        image.ReferencedSOPInstanceUID
        for roi in structure.ROIContourSequence
        for contour in roi.ContourSequence
        for image in contour.get("ContourImageSequence", [])
    }
    assert referenced and referenced <= ct_uids
    # dates move by the same per-patient offset, so intervals are kept
    original = pydicom.dcmread(study_with_rtstruct / "rt" / "ct_1.dcm")
    shifted = pydicom.dcmread(tmp_path / "out" / "rt" / "ct_1.dcm")
    if original.get("StudyDate"):
        assert shifted.StudyDate != original.StudyDate and len(shifted.StudyDate) == 8


def test_cli_deidentify_zip_and_refuses_existing_output(phantom_study, tmp_path):
    archive = shutil.make_archive(
        str(tmp_path / "bundle"), "zip", phantom_study.series_folder.parent, "CT"
    )
    assert main(["deidentify", archive, str(tmp_path / "clean")]) == 0
    files = sorted((tmp_path / "clean").rglob("*.dcm"))
    assert len(files) == len(phantom_study.files)
    volume = radpipe.load(files[0].parent)
    np.testing.assert_array_equal(volume.array, phantom_study.phantom.ct.array)
    assert main(["deidentify", archive, str(tmp_path / "clean")]) == 1


def test_burned_in_annotation_is_flagged(phantom_study, tmp_path):
    source = tmp_path / "in"
    shutil.copytree(phantom_study.series_folder, source)
    flagged = sorted(source.glob("*.dcm"))[3]
    dataset = pydicom.dcmread(flagged)
    dataset.BurnedInAnnotation = "YES"
    dataset.save_as(flagged)
    report = deidentify_tree(source, tmp_path / "out", key=b"k")
    assert report.burned_in == [str(flagged)]
    assert report.written == len(phantom_study.files)


def test_folder_names_holding_identifiers_are_pseudonymised(phantom_study, tmp_path):
    import shutil

    source = pydicom.dcmread(phantom_study.files[0])
    patient_id = str(source.PatientID)
    tree = tmp_path / "export" / f"{patient_id}_scan" / "CT"
    shutil.copytree(phantom_study.series_folder, tree)
    report = deidentify_tree(tmp_path / "export", tmp_path / "clean", key=b"k")
    assert report.written == len(phantom_study.files)
    paths = [str(p.relative_to(tmp_path / "clean")) for p in (tmp_path / "clean").rglob("*")]
    assert not [p for p in paths if patient_id.lower() in p.lower()]
    assert any(p.endswith(".dcm") for p in paths)
