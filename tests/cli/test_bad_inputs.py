"""A corpus of broken, hostile and odd inputs, built by the test, through every command: each run
ends with exit 1 and one `radpipe: error:` line that names the input, never a traceback or an
"internal error", and leaves no temporary file beside its output."""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
import struct
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest

from radpipe.cli.main import main


def _nifti_header(dims: list[int], datatype: int = 4, bitpix: int = 16) -> bytes:
    header = bytearray(348)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, *(dims + [1] * (8 - len(dims))))
    struct.pack_into("<hh", header, 70, datatype, bitpix)
    struct.pack_into("<8f", header, 76, *([1.0] * 8))
    struct.pack_into("<f", header, 108, 352.0)
    header[344:348] = b"n+1\0"
    return bytes(header) + b"\0" * 4


def build_corpus(root: Path, phantom_study) -> dict[str, Path]:
    """Each broken input, written under ``root``."""
    root.mkdir()
    corpus: dict[str, Path] = {}

    def add(name: str, data: bytes) -> Path:
        path = root / name
        path.write_bytes(data)
        corpus[name] = path
        return path

    add("empty.dcm", b"")
    add("random.dcm", np.random.default_rng(0).bytes(4096))
    add("notes.txt", b"not an image\n")
    add("empty.nii", b"")
    add("negative.nii", _nifti_header([3, -5, 10, 10]))
    add("huge.nii", _nifti_header([3, 30000, 30000, 30000]))
    add("five_d.nii", _nifti_header([5, 4, 4, 4, 2, 2]) + b"\0" * (4 * 4 * 4 * 2 * 2 * 2))
    image = (np.arange(4 * 4 * 4, dtype=np.int16)).tobytes()
    add("truncated.nii.gz", gzip.compress(_nifti_header([3, 4, 4, 4]) + image)[:-20])
    add("random.nrrd", b"NRRD0004\ntype: nonsense\ndimension: 3\n\n")
    add("random.mha", b"ObjectType = Image\nNDims = 3\nDimSize = 4 4\n")
    first = sorted(phantom_study.series_folder.glob("*.dcm"))[0]
    data = first.read_bytes()
    add("truncated_pixels.dcm", data[: len(data) - 5000])
    dataset = pydicom.dcmread(first)
    dataset.ImageOrientationPatient = ["nan", "0", "0", "0", "1", "0"]
    dataset.save_as(root / "nan_orientation.dcm")
    corpus["nan_orientation.dcm"] = root / "nan_orientation.dcm"
    with zipfile.ZipFile(root / "traversal.zip", "w") as handle:
        handle.writestr("../../escape.dcm", data)
    corpus["traversal.zip"] = root / "traversal.zip"
    add("corrupt.zip", b"PK\x03\x04" + np.random.default_rng(1).bytes(2000))
    (root / "empty_folder").mkdir()
    corpus["empty_folder"] = root / "empty_folder"
    add("deep.json", ("[" * 5000 + "]" * 5000).encode())
    add("words.json", json.dumps({"data": [["a", "b"], ["c", "d"]]}).encode())
    add("nodata.json", json.dumps({"model": "x"}).encode())
    add("ragged.csv", b"1,2,3\n4,5\n")
    add("not_h5.h5", b"definitely not HDF5")
    add("not_sqlite.sqlite", b"not a database at all, not even close")
    with sqlite3.connect(root / "dropped.sqlite") as connection:
        connection.execute("CREATE TABLE meta (key TEXT, value TEXT)")
        connection.executemany(
            "INSERT INTO meta VALUES (?, ?)", [("schema_version", "2"), ("built", "1")]
        )
    corpus["dropped.sqlite"] = root / "dropped.sqlite"
    return corpus


#: Commands as templates: {input} is the broken input, {out} an output in a fresh folder.
COMMANDS = {
    "info": ["info", "{input}"],
    "convert": ["convert", "{input}", "{out}/out.nii.gz"],
    "render": ["render", "{input}", "-o", "{out}/r.png"],
    "overlay": ["overlay", "-i", "{series}", "--heatmap", "{input}", "-o", "{out}/o.png"],
    "render-mask": ["render", "{series}", "--mask", "{input}", "-o", "{out}/m.png"],
    "masks": ["masks", "convert", "{input}", "{out}/labels.nii.gz", "--image", "{series}"],
    "analyze": ["analyze", "{input}", "--out", "{out}/report"],
    "nerf": ["export", "nerf", "{input}", "{out}/nerf"],
    "preprocess": ["preprocess", "{input}", "{out}/p.nii.gz", "--spacing", "2"],
    "inspect": ["dataset", "inspect", "{input}"],
    "query": ["catalog", "query", "{input}"],
}

#: Which inputs make sense for which commands (all others too would only repeat the same path).
PAIRS = [
    (command, name)
    for command in ("info", "convert", "render", "nerf", "preprocess")
    for name in (
        "empty.dcm", "random.dcm", "notes.txt", "empty.nii", "negative.nii", "huge.nii",
        "truncated.nii.gz", "random.nrrd", "random.mha", "truncated_pixels.dcm",
        "nan_orientation.dcm", "traversal.zip", "corrupt.zip", "empty_folder",
    )
] + [
    # a 5-D NIfTI folds its extra axes into a fourth one: info and convert read it; pictures
    # and preprocessing need 3-D and say so
    (command, "five_d.nii") for command in ("render", "nerf", "preprocess")
] + [
    ("overlay", name)
    for name in ("deep.json", "words.json", "nodata.json", "ragged.csv", "empty.nii",
                 "five_d.nii", "random.dcm")
] + [
    ("render-mask", name) for name in ("random.dcm", "negative.nii", "five_d.nii", "empty_folder")
] + [
    ("masks", name) for name in ("random.dcm", "truncated.nii.gz", "notes.txt", "empty_folder")
] + [
    ("analyze", name) for name in ("empty_folder", "corrupt.zip", "traversal.zip", "random.dcm")
] + [
    ("inspect", name) for name in ("not_h5.h5", "empty.dcm", "random.dcm")
] + [
    ("query", name) for name in ("not_sqlite.sqlite", "dropped.sqlite", "empty.dcm")
]  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, phantom_study):
    return build_corpus(tmp_path_factory.mktemp("bad") / "inputs", phantom_study)


@pytest.mark.parametrize(("command", "name"), PAIRS, ids=[f"{c}-{n}" for c, n in PAIRS])
def test_bad_input_gives_one_clear_line(corpus, phantom_study, tmp_path, capsys, command, name):
    out = tmp_path / "out"
    out.mkdir()
    values = {
        "input": str(corpus[name]),
        "out": str(out),
        "series": str(phantom_study.series_folder),
    }
    argv = [part.format(**values) for part in COMMANDS[command]]
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("radpipe: warning:")]
    assert code == 1, (argv, err)
    assert len(lines) == 1 and lines[0].startswith("radpipe: error:"), err
    assert "internal error" not in err and "Traceback" not in err, err
    assert Path(name).stem.split(".")[0] in err or "no " in err, err  # names the input
    assert not [p for p in out.rglob("*") if p.name.startswith(".")], "temporaries left"
    shutil.rmtree(out)


OPTION_CASES = {
    "slice mm:nan": ["render", "{series}", "--view", "axial", "--slice", "mm:nan", "-o",
                     "{out}/r.png"],
    "plane foo": ["overlay", "-i", "{series}", "--heatmap", "{heat}", "--plane", "foo", "-o",
                  "{out}/o.png"],
    "percentiles 0,200": ["overlay", "-i", "{series}", "--heatmap", "{heat}", "--normalization",
                          "percentile", "--percentiles", "0,200", "-o", "{out}/o.png"],
    "spacing 1e-9": ["preprocess", "{series}", "-o", "{out}/p.nii.gz", "--spacing", "1e-9"],
    "spacing 1,2": ["preprocess", "{series}", "-o", "{out}/p.nii.gz", "--spacing", "1,2"],
    "spacing nan": ["preprocess", "{series}", "-o", "{out}/p.nii.gz", "--spacing", "nan"],
    "size huge": ["preprocess", "{series}", "-o", "{out}/p.nii.gz", "--size",
                  "100000,100000,100000"],
    "mask output odd": ["preprocess", "{series}", "-o", "{out}/p.nii.gz", "--mask", "{labels}",
                        "--mask-output", "{out}/m.npy"],
    "config garbage": ["dataset", "build", "{study}", "-o", "{out}/d.h5", "--config",
                       "{garbage}"],
    "deidentify no dicom": ["deidentify", "{labels}", "-o", "{out}/clean"],
    "report into a file": ["analyze", "{study}", "--out", "{garbage}"],
    "name too long": ["convert", "{series}", "{out}/" + "x" * 300 + ".nii.gz"],
    "empty npz": ["overlay", "-i", "{series}", "--heatmap", "{empty_npz}", "-o", "{out}/o.png"],
}  # fmt: skip


@pytest.mark.parametrize("case", list(OPTION_CASES), ids=list(OPTION_CASES))
def test_bad_option_values_give_one_clear_line(phantom_study, tmp_path, capsys, case):
    out = tmp_path / "out"
    out.mkdir()
    heat = tmp_path / "heat.npy"
    np.save(heat, np.ones((96, 112), np.float32))
    garbage = tmp_path / "garbage.toml"
    garbage.write_bytes(b"\xff\xfe\x00 not toml")
    empty_npz = tmp_path / "empty.npz"
    empty_npz.write_bytes(b"")
    values = {"series": str(phantom_study.series_folder), "study": str(phantom_study.folder),
              "labels": str(phantom_study.labels_path), "out": str(out), "heat": str(heat),
              "garbage": str(garbage), "empty_npz": str(empty_npz)}  # fmt: skip
    argv = [part.format(**values) for part in OPTION_CASES[case]]
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("radpipe: warning:")]
    assert code == 1, (argv, err)
    assert len(lines) == 1 and lines[0].startswith("radpipe: error:"), err
    assert "internal error" not in err
    assert not [p for p in out.rglob("*")], "nothing written"
