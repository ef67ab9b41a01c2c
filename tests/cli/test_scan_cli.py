"""`radpipe scan`, `radpipe catalog query` and `radpipe metadata` end to end."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from radpipe.cli.main import main
from radpipe.phantom import write_ircadb_patient, write_phantom_study
from radpipe.privacy import pseudonym


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree")
    write_ircadb_patient(root / "3Dircadb1.1", patient_id="IRCAD-1", seed=1)
    write_phantom_study(root / "plain", patient_id="PLAIN-1", shape=(16, 48, 48), tumours=1)
    return root


def test_scan_prints_and_exports(tree, tmp_path, capsys):
    catalog = tmp_path / "c.sqlite"
    code = main(["scan", str(tree), "--catalog", str(catalog), "--csv", str(tmp_path / "s.csv"),
                 "--json", str(tmp_path / "s.json"), "--workers", "2"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "3D-IRCADb" in out and "livertumor01" in out and "0 problems" in out
    assert "IRCAD-1" not in out and pseudonym("IRCAD-1") in out
    rows = read_rows(tmp_path / "s.csv")
    assert {row["role"] for row in rows} == {"image", "mask", "label"}
    document = json.loads((tmp_path / "s.json").read_text())
    assert len(document["series"]) == len(rows)
    assert main(["scan", str(tree), "--catalog", str(catalog)]) == 0
    assert "0 read" in capsys.readouterr().out


def test_catalog_query_filters(tree, tmp_path, capsys):
    catalog = tmp_path / "c.sqlite"
    assert main(["scan", str(tree), "--catalog", str(catalog), "--workers", "1"]) == 0
    capsys.readouterr()
    assert main(["catalog", "query", str(catalog), "--role", "mask", "--json"]) == 0
    masks = json.loads(capsys.readouterr().out)
    assert sorted(m["name"] for m in masks) == [
        "bone",
        "liver",
        "livertumor01",
        "livertumor02",
        "spleen",
    ]
    assert (
        main(
            [
                "catalog",
                "query",
                str(catalog),
                "--modality",
                "CT",
                "--max-slice-spacing",
                "2",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out) == []
    assert main(["catalog", "query", str(tmp_path / "nothing.sqlite")]) == 1


def test_metadata_table_per_series_and_per_file(tree, tmp_path):
    out = tmp_path / "table.csv"
    assert (
        main(["metadata", str(tree), "--out", str(out), "--catalog", str(tmp_path / "c.sqlite")])
        == 0
    )
    rows = read_rows(out)
    plain = next(r for r in rows if r["role"] == "image" and r["slices"] == "16")
    assert plain["modality"] == "CT" and plain["kvp"] == "120"
    assert float(plain["slice_thickness_mm"]) == pytest.approx(2.5)  # SliceThickness
    assert float(plain["slice_spacing_mm"]) == pytest.approx(2.5)  # between slice centres
    assert plain["window_center"] == "40" and plain["acquisition_day_offset"] == "0"
    assert "PLAIN-1" not in out.read_text()
    per_file = tmp_path / "files.csv"
    catalog = str(tmp_path / "c.sqlite")
    fields = "patient,modality,slices"
    arguments = ["metadata", str(tree), "--out", str(per_file), "--per-file", "--fields", fields]
    assert main([*arguments, "--catalog", catalog]) == 0
    file_rows = read_rows(per_file)
    assert list(file_rows[0]) == ["patient", "modality", "slices", "file"]
    assert len(file_rows) == 24 * 6 + 16 + 1
    assert main(["metadata", str(tree), "--out", str(tmp_path / "x.csv"), "--fields", "nonsense",
                 "--catalog", str(tmp_path / "c.sqlite")]) == 1  # fmt: skip
    assert not (tmp_path / "x.csv").exists()
