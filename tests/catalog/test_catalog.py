"""Scanning trees and archives into a catalog: layouts, cache, hostile archives, Dask."""

from __future__ import annotations

import json
import os
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest

import radpipe
from radpipe.catalog.store import open_catalog, scan
from radpipe.errors import DatasetError, FormatError
from radpipe.io.sources import ArchiveLimits, Problem, walk_sources
from radpipe.phantom import write_ircadb_patient, write_phantom_study
from radpipe.privacy import pseudonym

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


@pytest.fixture(scope="module")
def ircadb_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ircadb")
    for number in (1, 2):
        write_ircadb_patient(
            root / f"3Dircadb1.{number}", patient_id=f"IRCAD-{number}", seed=number
        )
    return root


def test_ircadb_zipped_tree_scans_into_image_and_masks(ircadb_tree, tmp_path):
    catalog, report = scan(ircadb_tree, tmp_path / "catalog.sqlite", workers=2)
    assert report.patients == 2 and report.problems == 0
    patients = {row["patient"] for row in catalog.patients()}
    assert patients == {pseudonym("IRCAD-1"), pseudonym("IRCAD-2")}
    for patient in patients:
        images = catalog.series(patient=patient, role="image")
        masks = {entry.name for entry in catalog.series(patient=patient, role="mask")}
        assert len(images) == 1 and images[0].layout == "3D-IRCADb"
        assert {"liver", "spleen", "bone", "livertumor01", "livertumor02"} <= masks
    # natural order: image_2 sorts before image_10
    files = catalog.files(catalog.series(role="image")[0])
    names = [f.rsplit("/", 1)[-1] for f in files]
    assert names.index("image_2") < names.index("image_10")
    # volumes load straight from the zip members
    ct = catalog.load(catalog.series(role="image")[0])
    liver = catalog.load(catalog.series(role="mask", name="liver")[0])
    assert ct.shape == liver.shape == (24, 96, 96)
    assert ct.dtype == np.int16 and ct.array.min() == -1000
    assert set(np.unique(liver.array)) == {0, 255}
    np.testing.assert_allclose(ct.affine, liver.affine)


def test_rescan_reads_only_what_changed(ircadb_tree, tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(ircadb_tree, tree)
    path = tmp_path / "catalog.sqlite"
    _, first = scan(tree, path, workers=1)
    _, again = scan(tree, path, workers=1)
    assert again.read == 0 and again.series == first.series
    write_phantom_study(tree / "extra", patient_id="EXTRA", shape=(16, 48, 48), tumours=1)
    shutil.rmtree(tree / "3Dircadb1.2")
    catalog, third = scan(tree, path, workers=1)
    assert third.read == 18  # 16 slices, the label map and its names, nothing else
    assert third.removed == 24 * 6  # every member of patient 2's two archives
    assert {row["patient"] for row in catalog.patients()} == {
        pseudonym("IRCAD-1"),
        pseudonym("EXTRA"),
    }


def test_pydicom_dicomdir_tree_has_several_patients(tmp_path):
    catalog, _ = scan(PYDICOM_FILES / "dicomdirtests", tmp_path / "c.sqlite", workers=1)
    images = catalog.series(role="image")
    assert len({e.patient for e in images}) >= 2
    assert all(e.layout == "DICOMDIR" for e in images)
    assert all(not e.patient.startswith("anon-unknown") for e in images)
    for entry in images:
        assert entry.shape is not None and entry.shape[1] > 0


def test_whole_shared_data_folder(data_dir, tmp_path):
    catalog, _ = scan(data_dir, tmp_path / "all.sqlite", workers=2)
    by_layout = {}
    for entry in catalog.series():
        by_layout.setdefault(entry.layout, []).append(entry)
    sunnybrook_images = [e for e in by_layout["Sunnybrook"] if e.role == "image"]
    contours = [e for e in by_layout["Sunnybrook"] if e.role == "contours"]
    assert len(sunnybrook_images) == 3 and len(contours) == 6
    # each contour folder links (through link.csv) to the image series of its patient
    image_keys = {e.key: e for e in sunnybrook_images}
    for contour in contours:
        assert contour.linked in image_keys
        assert image_keys[contour.linked].patient == contour.patient
    pairs = [e for e in by_layout["image + label pairs"] if e.role == "label"]
    assert any(e.name == "brain1_label" and e.linked.endswith("brain1_image.nrrd") for e in pairs)
    seg = catalog.series(modality="SEG", role="segmentation")
    assert any(e.first_location.endswith("dcmqi/data/segmentations/liver.dcm") for e in seg)
    ct = [e for e in catalog.series(modality="CT") if "dcm_qa_ct" in e.first_location]
    assert len(ct) == 1 and ct[0].shape == (28, 512, 512) and ct[0].layout == "DICOMDIR"
    assert not [p for p in catalog.problems() if "mosaic" in p[1]]
    mosaics = catalog.series(role="image")
    assert len([e for e in mosaics if e.format == "DICOM mosaic"]) == 4  # 8 files, 4 runs
    # identifiers never reach the catalog file
    real_id = pydicom.dcmread(
        next((data_dir / "dcm_qa_ct/In/Philips/S21570/S2010").glob("I1*"))
    ).PatientID
    assert real_id.encode() not in (tmp_path / "all.sqlite").read_bytes()


def test_exports_and_queries(ircadb_tree, tmp_path):
    catalog, _ = scan(ircadb_tree, tmp_path / "c.sqlite", workers=1)
    catalog.write_csv(tmp_path / "series.csv")
    lines = (tmp_path / "series.csv").read_text().splitlines()
    assert len(lines) == 1 + len(catalog.series())
    document = json.loads(catalog.write_json(tmp_path / "c.json").read_text())
    assert len(document["series"]) == len(catalog.series())
    assert len(catalog.series(modality="CT", max_slice_spacing=2.5)) == len(catalog.series())
    assert catalog.series(max_slice_spacing=2.0) == []
    reopened = open_catalog(tmp_path / "c.sqlite")
    assert len(reopened.series(role="mask")) == len(catalog.series(role="mask"))
    with pytest.raises(DatasetError, match="no catalog here"):
        open_catalog(tmp_path / "missing.sqlite")


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_hostile_archives_are_refused_without_writing(phantom_study, tmp_path):
    root = tmp_path / "incoming"
    root.mkdir()
    good = phantom_study.files[0].read_bytes()
    _zip(root / "traversal.zip", {"../../evil.dcm": good, "/abs/evil.dcm": good, "ok/a.dcm": good})
    _zip(root / "bomb.zip", {"zeros.bin": b"\0" * (64 * 1024 * 1024)})
    (root / "truncated.zip").write_bytes((root / "traversal.zip").read_bytes()[:200])
    limits = ArchiveLimits(max_total_bytes=16 * 1024 * 1024)
    items = list(walk_sources(root, limits=limits))
    prefix = len(str(root)) + 1
    reasons = {item.location[prefix:]: item.reason for item in items if isinstance(item, Problem)}
    assert "escapes the archive" in reasons["traversal.zip::../../evil.dcm"]
    assert "absolute path" in reasons["traversal.zip::/abs/evil.dcm"]
    assert "expands to" in reasons["bomb.zip"]
    assert "corrupt or truncated" in reasons["truncated.zip"]
    sources = [item.location for item in items if not isinstance(item, Problem)]
    assert sources == [str(root / "traversal.zip") + "::ok/a.dcm"]
    assert not (tmp_path / "evil.dcm").exists() and not Path("/abs/evil.dcm").exists()
    catalog, report = scan(root, tmp_path / "c.sqlite", workers=1, limits=limits)
    assert report.problems == 4 and len(catalog.series(role="image")) == 1


def test_unchanged_tree_rescan_skips_archives_but_sees_every_change(phantom_study, tmp_path):
    """The re-scan's shortcut (the fingerprint of the walk with archives unopened): a rewritten
    archive, a new archive member, other archive limits and a removed file all rescan; an
    untouched tree reads nothing and keeps its series and problems."""
    root = tmp_path / "tree"
    root.mkdir()
    files = sorted(phantom_study.series_folder.glob("*.dcm"))
    archive = _zip(root / "ct.zip", {f"ct/{p.name}": p.read_bytes() for p in files[:-1]})
    _zip(root / "traversal.zip", {"../evil.dcm": files[0].read_bytes()})
    path = tmp_path / "c.sqlite"
    _, first = scan(root, path, workers=1)
    assert first.files == len(files) - 1 and first.problems == 1
    _, again = scan(root, path, workers=1)
    assert (again.read, again.files, again.series, again.problems) == (0, first.files, 1, 1)
    time.sleep(0.01)  # a new modification time for the rewritten archive
    _zip(archive, {f"ct/{p.name}": p.read_bytes() for p in files})  # one member more
    catalog, grown = scan(root, path, workers=1)
    assert grown.read == len(files) and grown.files == len(files) and grown.problems == 1
    assert catalog.series(role="image")[0].shape[0] == len(files)
    _, limited = scan(root, path, workers=1, limits=ArchiveLimits(max_members=3))
    assert limited.files == 0 and limited.series == 0  # both archives refused now
    _, restored = scan(root, path, workers=1)
    assert restored.files == len(files) and restored.series == 1
    (root / "traversal.zip").unlink()
    _, cleaned = scan(root, path, workers=1)
    assert cleaned.problems == 0 and cleaned.series == 1 and cleaned.read == 0


def test_broken_files_duplicates_and_loops_are_reported(phantom_study, tmp_path):
    root = tmp_path / "tree"
    shutil.copytree(phantom_study.series_folder, root / "a")
    shutil.copy(phantom_study.files[0], root / "a" / "copy-of-first.dcm")
    (root / "a" / "broken.dcm").write_bytes(b"DICM" * 10)
    os.symlink(root, root / "a" / "loop")
    catalog, _ = scan(root, tmp_path / "c.sqlite", workers=1)
    reasons = " | ".join(reason for _, reason in catalog.problems())
    assert "duplicate SOPInstanceUID" in reasons
    assert "symbolic link loop" in reasons
    assert catalog.series(role="image")[0].shape == phantom_study.phantom.ct.shape


def test_dask_local_cluster_gives_the_same_catalog(ircadb_tree, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    local, _ = scan(ircadb_tree, tmp_path / "local.sqlite", workers=1)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        remote, _ = scan(ircadb_tree, tmp_path / "dask.sqlite", scheduler=cluster.scheduler_address)
    assert [e.as_row() for e in remote.series()] == [e.as_row() for e in local.series()]


def test_catalog_load_matches_direct_load(phantom_study, tmp_path):
    catalog, _ = scan(phantom_study.folder, tmp_path / "c.sqlite", workers=1)
    image = next(e for e in catalog.series() if e.format == "DICOM")
    direct = radpipe.load(phantom_study.series_folder)
    np.testing.assert_array_equal(catalog.load(image).array, direct.array)
    label = next(e for e in catalog.series() if e.format == "NIfTI")
    np.testing.assert_array_equal(catalog.load(label).array, phantom_study.phantom.labels.array)


def test_nested_and_encrypted_archive_members(phantom_study, tmp_path):
    root = tmp_path / "incoming"
    root.mkdir()
    inner = tmp_path / "inner.zip"
    with zipfile.ZipFile(inner, "w") as archive:
        for path in phantom_study.files:
            archive.write(path, f"CT/{path.name}")
    with zipfile.ZipFile(root / "outer.zip", "w") as archive:
        archive.write(inner, "bundle/inner.zip")
        locked = zipfile.ZipInfo("locked.dcm")
        locked.flag_bits |= 0x1  # marked encrypted
        archive.writestr(locked, phantom_study.files[0].read_bytes())
    catalog, _ = scan(root, tmp_path / "c.sqlite", workers=1)
    (image,) = catalog.series(role="image")
    assert "outer.zip::bundle/inner.zip::CT/" in image.first_location
    np.testing.assert_array_equal(catalog.load(image).array, phantom_study.phantom.ct.array)
    assert any("encrypted" in reason for _, reason in catalog.problems())


def test_failed_first_scan_leaves_no_catalog(tmp_path):
    from radpipe.errors import ReadError

    with pytest.raises(ReadError, match="no such file or folder"):
        scan(tmp_path / "missing", tmp_path / "c.sqlite")
    assert not (tmp_path / "c.sqlite").exists()


KILL_IN_BUILD = """
import os, sys
import radpipe.catalog.store as store
def killed(*args, **kwargs):
    os.kill(os.getpid(), 9)  # SIGKILL in the middle of the catalog transaction
store.build_series = killed
store.scan(sys.argv[1], sys.argv[2], workers=1)
"""


def _scan_killed(root, catalog_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", KILL_IN_BUILD, str(root), str(catalog_path)], check=False
    )
    assert result.returncode == -9


def test_a_killed_rescan_leaves_the_old_catalog_and_a_rerun_repairs_it(tmp_path, phantom_study):
    import shutil

    import pydicom

    root = tmp_path / "tree"
    shutil.copytree(phantom_study.folder, root / "p1")
    catalog_path = tmp_path / "c.sqlite"
    catalog, _ = scan(root, catalog_path, workers=1)
    with catalog:
        before = [(e.key, e.shape) for e in catalog.series()]
    for path in sorted((root / "p1" / "CT").glob("*.dcm"))[:5]:  # 5 files change
        dataset = pydicom.dcmread(path)
        dataset.SeriesDescription = "edited"
        dataset.save_as(path)
    _scan_killed(root, catalog_path)
    with open_catalog(catalog_path) as survived:  # the previous catalog, whole
        assert [(e.key, e.shape) for e in survived.series()] == before
    catalog, report = scan(root, catalog_path, workers=1)
    assert report.read == 5  # the re-run reads the changed files again
    with catalog:
        (image,) = [e for e in catalog.series() if e.role == "image" and e.format == "DICOM"]
        assert catalog.load(image).shape == phantom_study.phantom.ct.shape


def test_an_unfinished_first_scan_and_a_foreign_database_are_refused(tmp_path, phantom_study):
    import sqlite3

    _scan_killed(phantom_study.folder, tmp_path / "first.sqlite")
    with pytest.raises(DatasetError, match="did not finish"):
        open_catalog(tmp_path / "first.sqlite")
    catalog, _ = scan(phantom_study.folder, tmp_path / "first.sqlite", workers=1)
    catalog.close()
    other = tmp_path / "app.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE customers (name TEXT)")
    before = other.read_bytes()
    with pytest.raises(DatasetError, match="not a radpipe catalog"):
        scan(phantom_study.folder, other, workers=1)
    assert other.read_bytes() == before


def test_metadata_takes_any_dicom_keyword_and_guards_identifiers(tmp_path, phantom_study):
    import pydicom

    from radpipe.catalog.metadata import metadata_rows
    from radpipe.privacy import pseudonym_key, shift_days, shifted_date

    catalog, _ = scan(phantom_study.folder, tmp_path / "c.sqlite", workers=1)
    source = pydicom.dcmread(phantom_study.files[0])
    with catalog:
        rows = metadata_rows(catalog, fields=["modality", "KVP", "StudyDate", "Rows", "EchoTime"])
        (row,) = [r for r in rows if r["modality"] == "CT"]
        assert row["KVP"] == str(source.KVP) and row["Rows"] == str(source.Rows)
        assert row["EchoTime"] is None  # a CT has none
        days = shift_days(str(source.PatientID), pseudonym_key())
        assert row["StudyDate"] == shifted_date(str(source.StudyDate), days) != source.StudyDate
        with pytest.raises(FormatError, match="identifies the patient"):
            metadata_rows(catalog, fields=["PatientName"])
        kept = metadata_rows(catalog, fields=["modality", "PatientName"], keep_phi=True)
        assert str(source.PatientName) in {r["PatientName"] for r in kept}
        with pytest.raises(FormatError, match="nor a DICOM keyword"):
            metadata_rows(catalog, fields=["Nonsense"])


def test_two_segs_sharing_a_series_uid_are_two_series(tmp_path, data_dir):
    """Two SEG objects with one SeriesInstanceUID (a 512² and a resized copy) scan as two."""
    import shutil

    import pydicom

    seg = data_dir / "dcmqi/data/segmentations/liver.dcm"
    shutil.copy(seg, tmp_path / "a.dcm")
    dataset = pydicom.dcmread(seg)
    dataset.SOPInstanceUID = pydicom.uid.generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.Rows = 510
    dataset.save_as(tmp_path / "b.dcm")
    catalog, _ = scan(tmp_path, tmp_path / "c.sqlite", workers=1)
    with catalog:
        keys = sorted(e.key for e in catalog.series(role="segmentation"))
    assert len(keys) == 2 and keys[1] == keys[0] + "#2"


def test_mosaic_series_are_catalogued_and_load_like_radpipe_load(data_dir, tmp_path):
    import numpy as np

    import radpipe

    root = data_dir / "dcm_qa_nih/In/20180918Si"
    catalog, _ = scan(root, tmp_path / "c.sqlite", workers=1)
    with catalog:
        entries = catalog.series(role="image")
        assert [e.format for e in entries] == ["DICOM mosaic"] * 4 and catalog.problems() == []
        for entry in entries:
            folder = radpipe.load(str(entry.first_location).rsplit("/", 1)[0])
            np.testing.assert_array_equal(catalog.load(entry).array, folder.array)
