"""Outputs honour the umask (temporary names are private, published files are not), and writers
refuse an existing output unless told to overwrite, through the API as well as the CLI."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

import radpipe
from radpipe.errors import OutputExistsError
from radpipe.io.atomic import atomic_folder
from radpipe.phantom import make_phantom


@pytest.fixture
def umask_027():
    previous = os.umask(0o027)
    yield
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_saved_volumes_follow_the_umask(tmp_path, suffix):
    volume = make_phantom(shape=(24, 64, 64), tumours=1, seed=1).ct
    previous = os.umask(0o022)
    try:
        path = radpipe.save(volume, tmp_path / f"ct{suffix}")
    finally:
        os.umask(previous)
    assert mode(path) == 0o644


def test_folders_and_datasets_follow_the_umask(tmp_path, umask_027):
    with atomic_folder(tmp_path / "out") as staging:
        (staging / "a.txt").write_text("x")
    assert mode(tmp_path / "out") == 0o750
    assert mode(tmp_path / "out" / "a.txt") == 0o640
    from radpipe.catalog.patients import annotated_patients
    from radpipe.catalog.store import scan
    from radpipe.dataset.build import BuildOptions, PatientJob, build
    from radpipe.phantom import write_phantom_study

    write_phantom_study(tmp_path / "study", shape=(24, 64, 64), tumours=1, seed=2)
    assert mode(tmp_path / "study" / "CT") == 0o750
    catalog, _ = scan(tmp_path / "study", tmp_path / "c.sqlite", workers=1)
    with catalog:
        (patient,) = annotated_patients(catalog)
    job = PatientJob(patient, "catalog", (str(tmp_path / "c.sqlite"),), BuildOptions())
    path, written, _, errors, *_ = build([job], tmp_path / "d.h5", options=BuildOptions(),
                                     label_names={}, workers=1)  # fmt: skip
    assert errors == [] and written > 0
    assert mode(path) == 0o640


def test_library_writers_refuse_an_existing_output(tmp_path):
    volume = make_phantom(shape=(24, 64, 64), tumours=1, seed=1).ct
    target = tmp_path / "ct.nii.gz"
    radpipe.save(volume, target)
    before = target.read_bytes()
    with pytest.raises(OutputExistsError, match="already exists"):
        radpipe.save(volume.with_array(np.zeros_like(volume.array)), target)
    assert target.read_bytes() == before
    with pytest.raises(OutputExistsError), atomic_folder(tmp_path / "ct.nii.gz"):
        pass
    radpipe.save(volume, target, overwrite=True)
