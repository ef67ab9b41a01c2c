"""The command line end to end: info, convert and demo on real data; errors in one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

import radpipe
from radpipe.cli.main import main
from radpipe.privacy import pseudonym


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "radpipe.cli.main", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_info_json_on_real_ct(data_dir, capsys):
    folder = data_dir / "dcm_qa_ct/In/Philips/S21570/S2010"
    assert main(["info", str(folder), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1
    row = rows[0]
    assert row["shape"] == [28, 512, 512]
    assert row["modality"] == "CT" and row["orientation"] == "LPS" and row["units"] == "HU"
    assert row["spacing_mm"] == pytest.approx([5.0, 0.451172, 0.451172], abs=1e-5)
    assert row["slice_spacing_regular"] is True
    assert row["skipped_files"] == 1
    assert row["value_min"] == -1024
    import pydicom

    real_id = pydicom.dcmread(next(folder.glob("I1*")), stop_before_pixels=True).PatientID
    assert row["patient"] == pseudonym(real_id) != real_id


def test_info_table_lists_every_series(data_dir, capsys):
    assert main(["info", str(data_dir / "dcm_qa_nih/In"), "--headers-only"]) == 0
    out = capsys.readouterr().out
    assert "15 × 64 × 64 × 10" in out
    assert "non-image file(s) skipped" in out  # READMEs and the refused mosaics


def test_convert_dicom_to_nifti_and_nrrd(phantom_study, tmp_path):
    target = tmp_path / "ct.nii.gz"
    assert main(["convert", str(phantom_study.series_folder), str(target)]) == 0
    image = nib.load(target)
    data = np.asarray(image.dataobj)
    np.testing.assert_array_equal(np.transpose(data, (2, 1, 0)), phantom_study.phantom.ct.array)
    assert main(["convert", str(target), str(tmp_path / "ct.nrrd")]) == 0
    again = radpipe.load(tmp_path / "ct.nrrd")
    np.testing.assert_array_equal(again.array, phantom_study.phantom.ct.array)
    np.testing.assert_allclose(again.affine, phantom_study.phantom.ct.affine, atol=1e-4)


def test_errors_are_one_line_and_leave_nothing_behind(tmp_path, phantom_study):
    result = run_cli("convert", str(tmp_path / "missing"), str(tmp_path / "out.nii.gz"))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "radpipe: error:" in result.stderr
    assert "missing: no such file" in result.stderr and "Traceback" not in result.stderr

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.dcm").write_bytes(phantom_study.files[0].read_bytes()[:3000])
    result = run_cli("convert", str(broken), str(tmp_path / "out.nii.gz"))
    assert result.returncode == 1 and "truncated" in result.stderr
    assert list(tmp_path.glob("*out*")) == []

    result = run_cli("convert", str(phantom_study.series_folder), str(tmp_path / "out.xyz"))
    assert result.returncode == 1 and "unknown output format" in result.stderr

    result = run_cli("convert", "--no-such-flag")
    assert result.returncode == 2


def test_existing_output_needs_overwrite(phantom_study, tmp_path):
    target = tmp_path / "ct.nii"
    target.write_text("keep me")
    assert main(["convert", str(phantom_study.series_folder), str(target)]) == 1
    assert target.read_text() == "keep me"
    assert main(["convert", str(phantom_study.series_folder), str(target), "--overwrite"]) == 0
    assert nib.load(target).shape == (112, 96, 24)


def test_demo_writes_studies_and_nifti(tmp_path, capsys):
    assert main(["demo", str(tmp_path / "demo"), "--patients", "2"]) == 0
    out = capsys.readouterr().out
    for number in (1, 2):
        folder = tmp_path / "demo" / f"patient{number:02d}"
        assert len(list((folder / "CT").glob("*.dcm"))) == 48
        ct = radpipe.load(folder / "ct.nii.gz")
        labels = radpipe.load(folder / "labels.nii.gz")
        assert ct.shape == labels.shape == (48, 192, 192)
        assert set(np.unique(labels.array)) == {0, 1, 2, 3}
    assert "DEMO-001" not in out  # pseudonymised in the table
    assert "anon-" in out


def test_cli_prints_each_radpipe_warning_as_one_line(phantom_study, tmp_path, capsys):
    """A series with a missing slice (files are named top down: file 10 is slice 13): one
    `radpipe: warning:` line naming the folder, exit 0."""
    folder = tmp_path / "gap"
    shutil.copytree(phantom_study.series_folder, folder)
    sorted(folder.glob("*.dcm"))[10].unlink()
    code = main(["convert", str(folder), str(tmp_path / "gap.nii.gz")])
    err = capsys.readouterr().err
    assert code == 0
    lines = [line for line in err.splitlines() if line.startswith("radpipe: warning:")]
    assert lines[0] == (
        f"radpipe: warning: {folder}: 1 slice(s) missing (a gap of 5.000 mm after slice 12 "
        "where the spacing is 2.500 mm)"
    )
    assert len(lines) == 2 and "resampled onto a regular 2.500 mm grid" in lines[1]


def test_info_lists_every_readable_series_and_a_problem_per_damaged_file(
    phantom_study, tmp_path, capsys
):
    """One truncated copy (caught from the header and the file size) and one garbage .dcm in a
    tree hide nothing else: the good series is listed, both files in a problems table, exit 0;
    the catalog lists the truncated file among its problems too."""
    tree = tmp_path / "tree"
    shutil.copytree(phantom_study.series_folder, tree / "good")
    (tree / "bad").mkdir()
    first = sorted(phantom_study.series_folder.glob("*.dcm"))[0]
    (tree / "bad" / "truncated.dcm").write_bytes(first.read_bytes()[:3000])
    (tree / "bad" / "garbage.dcm").write_bytes(b"\0" * 500)
    assert main(["info", str(tree), "--headers-only"]) == 0
    out = capsys.readouterr().out
    assert "24 × 96 × 112" in out and "not listed" in out
    assert "truncated.dcm" in out and "garbage.dcm" in out and "pixel data is truncated" in out
    from radpipe.catalog.store import scan

    catalog, _ = scan(tree, tmp_path / "c.sqlite", workers=1)
    with catalog:
        problems = dict(catalog.problems())
    assert "pixel data is truncated" in problems[str(tree / "bad" / "truncated.dcm")]
