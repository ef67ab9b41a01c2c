"""One zip-aware data path: every command reads ``study.zip`` and ``study.zip::folder`` as it reads
the folder, and the reader registry serves load, save, info and discovery alike (MetaImage
included). References: the phantom's known voxels and the real dcmqi GE CT."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import radpipe
from radpipe.cli.main import main
from radpipe.errors import ReadError
from radpipe.io import registry


def zip_folder(folder: Path, archive: Path, *, prefix: str = "") -> Path:
    """Zip every file under ``folder`` with paths relative to its parent (``study/CT/…``)."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                handle.write(path, prefix + str(path.relative_to(folder.parent)))
    return archive


@pytest.fixture(scope="module")
def zipped_study(tmp_path_factory):
    """The phantom study as ``study.zip`` (``study/CT/…``, ``study/labels.nii.gz``) and that zip
    nested in ``outer.zip``."""
    from radpipe.phantom import write_phantom_study

    root = tmp_path_factory.mktemp("zips")
    study = write_phantom_study(root / "study", shape=(24, 64, 64), tumours=2, seed=4)
    archive = zip_folder(study.folder, root / "study.zip")
    outer = root / "outer.zip"
    with zipfile.ZipFile(outer, "w") as handle:
        handle.write(archive, "inner/study.zip")
    return study, archive, outer


def test_load_reads_zips_folders_inside_them_and_members(zipped_study):
    study, archive, outer = zipped_study
    truth = radpipe.load(study.series_folder)
    for location in (
        str(archive),
        f"{archive}::study/CT",
        f"{outer}::inner/study.zip::study/CT",
    ):
        volume = radpipe.load(location)
        np.testing.assert_array_equal(volume.array, truth.array)
        np.testing.assert_allclose(volume.affine, truth.affine, atol=1e-6)
    labels = radpipe.load(f"{archive}::study/labels.nii.gz")
    np.testing.assert_array_equal(labels.array, study.phantom.labels.array)
    with pytest.raises(ReadError, match="no such file or folder in the archive"):
        radpipe.load(f"{archive}::study/MR")


def test_every_command_reads_a_zip(zipped_study, tmp_path, capsys):
    study, archive, _ = zipped_study
    series = f"{archive}::study/CT"
    labels = f"{archive}::study/labels.nii.gz"
    assert main(["info", str(archive), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["shape"] == [24, 64, 64]
    assert main(["convert", series, str(tmp_path / "ct.nii.gz")]) == 0
    converted = radpipe.load(tmp_path / "ct.nii.gz")
    np.testing.assert_array_equal(converted.array, radpipe.load(study.series_folder).array)
    assert main(["render", series, "-o", str(tmp_path / "r.png"), "--mask", labels]) == 0
    assert (tmp_path / "r.png").stat().st_size > 1000
    code = main(["masks", "convert", labels, str(tmp_path / "seg.dcm"), "--image", series,
                 "--keep-phi"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    from radpipe.io.seg import read_seg

    masks = read_seg(tmp_path / "seg.dcm", radpipe.load(study.series_folder))
    tumour_voxels = sum(int(m.sum()) for n, m in masks.masks.items() if "tum" in n)
    assert tumour_voxels == int(np.isin(study.phantom.labels.array, [2]).sum())
    assert main(["analyze", str(archive), "--out", str(tmp_path / "report")]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["patients"][0]["tumour_count"] == 2
    assert main(["dataset", "build", str(archive), "-o", str(tmp_path / "d.h5")]) == 0
    from radpipe.viewer.sessions import build_session

    session = build_session(Path(series), [f"organs={labels}"], None)
    assert session is not None


def test_registry_serves_load_save_and_discovery(tmp_path):
    from radpipe.phantom import make_phantom

    ct = make_phantom(shape=(24, 64, 64), tumours=1, seed=2).ct
    for suffix in registry.writable_suffixes():
        path = radpipe.save(ct, tmp_path / f"ct{suffix}")
        back = radpipe.load(path)
        np.testing.assert_array_equal(back.array, ct.array)
        np.testing.assert_allclose(back.affine, ct.affine, atol=1e-4)
        assert registry.format_of(path) is not None
    assert {".nii.gz", ".nrrd", ".mha"} <= set(registry.writable_suffixes())
    catalog, _ = radpipe.scan(tmp_path, tmp_path / "c.sqlite", workers=1)
    with catalog:
        formats = sorted(entry.format for entry in catalog.series())
        problems = catalog.problems()
    assert formats == ["MetaImage", "NIfTI", "NIfTI", "NRRD"]
    assert problems == []
    with pytest.raises(ReadError, match=r"tried DICOM.*MetaImage"):
        (tmp_path / "notes.xyz").write_text("hello")
        radpipe.load(tmp_path / "notes.xyz")


def test_metaimage_equals_simpleitk_on_real_data(data_dir, tmp_path):
    """A real GE CT written as .mha by SimpleITK reads back with SimpleITK's own geometry."""
    import SimpleITK as sitk

    ct = radpipe.load(data_dir / "dcmqi/data/segmentations/ct-3slice")
    sitk.WriteImage(ct.to_sitk(), str(tmp_path / "ct.mha"))
    back = radpipe.load(tmp_path / "ct.mha")
    reference = sitk.ReadImage(str(tmp_path / "ct.mha"))
    np.testing.assert_array_equal(back.array, sitk.GetArrayFromImage(reference))
    corner = reference.TransformIndexToPhysicalPoint((511, 511, 2))
    np.testing.assert_allclose(back.index_to_world([2, 511, 511]), corner, atol=1e-4)


def test_pipes_and_devices_are_refused(tmp_path):
    fifo = tmp_path / "pipe.nii.gz"
    os.mkfifo(fifo)
    with pytest.raises(ReadError, match="not a regular file or folder"):
        radpipe.load(fifo)
    shutil.rmtree(tmp_path, ignore_errors=True)
