"""Outputs never destroy inputs: --overwrite into a folder that holds the input, an output inside
the series folder, a file output that is its own input, and --overwrite of a folder radpipe did
not write all leave every input byte intact and exit 1 with one line."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from radpipe.cli.main import main


def digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the SHA-256 of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def data(phantom_study, tmp_path):
    """``data/pat1`` (a copy of the phantom study) plus an unrelated file of the user's."""
    root = tmp_path / "data"
    shutil.copytree(phantom_study.folder, root / "pat1")
    (root / "notes.txt").write_text("my own notes")
    return root


def refused(command: list[str], capsys) -> str:
    code = main(command)
    err = capsys.readouterr().err
    assert code == 1, (command, err)
    assert err.count("\n") == 1 and err.startswith("radpipe: error:"), err
    return err


@pytest.mark.parametrize(
    "command",
    [
        ["deidentify", "{data}/pat1", "{data}", "--overwrite"],
        ["deidentify", "{data}/pat1", "{data}/pat1/CT", "--overwrite"],
        ["export", "nerf", "{data}/pat1/CT", "{data}", "--overwrite"],
        ["export", "nerf", "{data}/pat1/CT", "{data}/pat1/CT/nerf"],
        ["render", "{data}/pat1/CT", "--all-slices", "-o", "{data}/pat1/CT"],
        ["render", "{data}/pat1/CT", "--all-slices", "-o", "{data}", "--overwrite"],
        ["convert", "{data}/pat1/labels.nii.gz", "{data}/pat1/labels.nii.gz", "--overwrite"],
        ["convert", "{data}/pat1/CT", "{data}/pat1/CT/ct.nii.gz"],
    ],
)
def test_outputs_never_overlap_inputs(data, capsys, command):
    before = digest(data)
    err = refused([part.format(data=data) for part in command], capsys)
    assert "input" in err
    assert digest(data) == before


def test_overwrite_replaces_only_radpipes_own_folders(data, tmp_path, capsys):
    output = tmp_path / "slices"
    output.mkdir()
    (output / "holiday.jpg").write_bytes(b"not radpipe's")
    err = refused(
        ["render", str(data / "pat1" / "CT"), "--all-slices", "-o", str(output), "--overwrite"],
        capsys,
    )
    assert "did not write" in err
    assert (output / "holiday.jpg").read_bytes() == b"not radpipe's"
    fresh = tmp_path / "fresh"
    command = ["render", str(data / "pat1" / "CT"), "--all-slices", "-o", str(fresh)]
    assert main(command) == 0
    first = digest(fresh)
    assert len(first) == 25  # 24 slices and the marker
    assert main(command) == 1  # no --overwrite
    capsys.readouterr()
    assert main([*command, "--overwrite"]) == 0
    assert digest(fresh) == first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_unwritable_outputs_are_one_line(data, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    refused(["convert", str(data / "pat1" / "CT"), str(blocker / "ct.nii.gz")], capsys)
    (tmp_path / "folder.nii.gz").mkdir()
    refused(["convert", str(data / "pat1" / "CT"), str(tmp_path / "folder.nii.gz")], capsys)


@pytest.mark.parametrize("damage", ["random bytes", "no Rows"])
def test_a_damaged_slice_is_an_error_not_a_smaller_tumour(data, tmp_path, capsys, damage):
    import pydicom

    victim = sorted((data / "pat1" / "CT").glob("*.dcm"))[12]
    if damage == "random bytes":
        victim.write_bytes(bytes(range(256)) * 64)
    else:
        dataset = pydicom.dcmread(victim)
        del dataset.Rows
        dataset.save_as(victim)
    for command in (
        ["convert", str(data / "pat1" / "CT"), str(tmp_path / "ct.nii.gz")],
        ["analyze", str(data / "pat1"), "--out", str(tmp_path / "report")],
    ):
        err = refused(command, capsys)
        assert victim.name in err
    assert not (tmp_path / "report").exists() and not (tmp_path / "ct.nii.gz").exists()


def test_a_missing_slice_is_reported_in_the_analysis(data, tmp_path, capsys):
    import json

    sorted((data / "pat1" / "CT").glob("*.dcm"))[12].unlink()
    assert main(["analyze", str(data / "pat1"), "--out", str(tmp_path / "report")]) == 0
    assert "1 slice(s) missing" in capsys.readouterr().err
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert any("1 slice(s) missing" in w for w in report["patients"][0]["warnings"])


def test_a_mask_folder_is_named_after_its_organ_and_tables_need_a_known_ending(tmp_path, capsys):
    import json

    from radpipe.phantom import write_ircadb_patient

    patient = tmp_path / "3Dircadb1.1"
    write_ircadb_patient(patient, zipped=False, shape=(12, 48, 48), tumours=1)
    out = tmp_path / "liver.nii.gz"
    assert main(["masks", "convert", str(patient / "MASKS_DICOM" / "liver"), str(out),
                 "--image", str(patient / "PATIENT_DICOM")]) == 0  # fmt: skip
    assert json.loads((tmp_path / "liver.json").read_text()) == {"1": "liver"}
    err = refused(["metadata", str(patient), "--out", str(tmp_path / "table.weird")], capsys)
    assert ".csv, .tsv or .json" in err
    assert not (tmp_path / "table.weird").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["scan", "{data}/pat1", "--catalog", "{out}/c.sqlite", "--json", "{out}/c.sqlite"],
        ["overlay", "-i", "{data}/pat1/CT", "--heatmap", "{data}/heat.png", "-o",
         "{data}/heat.png", "--overwrite"],
        ["render", "{data}/pat1/CT", "-o", "{data}/pat1/CT/x.png"],
        ["masks", "convert", "{data}/pat1/labels.nii.gz", "{data}/pat1/labels.nii.gz",
         "--image", "{data}/pat1/CT", "--overwrite"],
        ["masks", "convert", "{data}/pat1/labels.nii.gz", "{data}/pat1/CT/l.nii.gz",
         "--image", "{data}/pat1/CT"],
        ["metadata", "{data}/pat1", "-o", "{data}/pat1/CT/meta.csv"],
        ["dataset", "build", "{data}/pat1", "-o", "{data}/pat1/CT/d.h5"],
    ],
)  # fmt: skip
def test_every_writer_refuses_to_overlap_its_inputs(data, tmp_path, capsys, command):
    import numpy as np
    from PIL import Image

    Image.fromarray(np.full((96, 112), 200, np.uint8)).save(data / "heat.png")
    out = tmp_path / "out"
    out.mkdir()
    before = digest(data)
    err = refused([part.format(data=data, out=out) for part in command], capsys)
    assert "input" in err
    assert digest(data) == before


def test_a_renamed_label_map_keeps_its_own_names_file(data, tmp_path, capsys):
    """`labels.v2.nii.gz` gets `labels.v2.json`: the input's `labels.json` stays as it was."""
    names = (data / "pat1" / "labels.json").read_text()
    assert main(["masks", "convert", str(data / "pat1" / "labels.nii.gz"),
                 str(tmp_path / "labels.v2.nii.gz"), "--image", str(data / "pat1" / "CT"),
                 "--labels", "1=organ,2=lesion,3=other"]) == 0  # fmt: skip
    assert (tmp_path / "labels.v2.json").is_file()
    assert (data / "pat1" / "labels.json").read_text() == names
    for bad in ("1=liver,2=liver", "1=liver,1=tumor", "1=,2=tumor", "0=background"):
        err = refused(["masks", "convert", str(data / "pat1" / "labels.nii.gz"),
                       str(tmp_path / "x.nii.gz"), "--image", str(data / "pat1" / "CT"),
                       "--labels", bad], capsys)  # fmt: skip
        assert "label" in err


def test_an_image_is_not_a_label_map_and_zip_outputs_beside_the_archive_work(
    data, tmp_path, capsys
):
    import os
    import zipfile

    assert main(["convert", str(data / "pat1" / "CT"), str(tmp_path / "ct.nii.gz")]) == 0
    err = refused(["masks", "convert", str(tmp_path / "ct.nii.gz"), str(tmp_path / "m.nii.gz"),
                   "--image", str(data / "pat1" / "CT")], capsys)  # fmt: skip
    assert "negative" in err or "different values" in err
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted((data / "pat1" / "CT").glob("*.dcm")):
            handle.write(path, f"study/CT/{path.name}")
    previous = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert main(["convert", "series.zip::study/CT", "s.nii.gz"]) == 0
    finally:
        os.chdir(previous)
