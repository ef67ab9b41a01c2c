"""Every per-patient command on Dask gives what the local run gives: on a LocalCluster, and on a
`dask scheduler` + `dask worker` pair started on 127.0.0.1, one of them killed mid-run."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest

from radpipe.cli.main import main
from radpipe.phantom import write_phantom_study

distributed = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Four small phantom patients (each a DICOM series and a label map)."""
    root = tmp_path_factory.mktemp("dask") / "tree"
    for n in range(1, 5):
        write_phantom_study(root / f"patient{n:02d}", patient_id=f"DASK-{n}", shape=(12, 48, 48),
                            spacing=(2.5, 3.0, 3.0), tumours=1 + n % 2, seed=n)  # fmt: skip
    return root


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local:
        yield local.scheduler_address


def digest(folder: Path) -> dict[str, str]:
    """Relative path → SHA-256 of every file under a folder (dot files left out)."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not any(part.startswith(".") for part in path.parts)
    }


def same_label_files(local: Path, remote: Path) -> int:
    """Assert both folders hold the same NIfTI files with equal stored values; their count."""
    files = sorted(p.relative_to(local) for p in local.rglob("*.nii*"))
    assert files == sorted(p.relative_to(remote) for p in remote.rglob("*.nii*"))
    for relative in files:
        np.testing.assert_array_equal(
            np.asarray(nib.load(local / relative).dataobj),
            np.asarray(nib.load(remote / relative).dataobj),
        )
    return len(files)


def both(tmp_path: Path, scheduler: str, *command: str) -> tuple[Path, Path]:
    """Run ``command OUTPUT`` locally (one process) and on the cluster; both outputs."""
    local, remote = tmp_path / "local", tmp_path / "remote"
    assert main([*command, "-o", str(local), "--workers", "1"]) == 0
    assert main([*command, "-o", str(remote), "--scheduler", scheduler]) == 0
    return local, remote


def test_analyze_on_dask_equals_local(tree, cluster, tmp_path):
    local, remote = both(tmp_path, cluster, "analyze", str(tree))
    for name in ("lesions.csv", "patients.csv"):
        assert (local / name).read_text() == (remote / name).read_text()
    assert len((local / "lesions.csv").read_text().splitlines()) == 1 + 6  # 2+1+2+1 tumours


def test_analyze_dicom_results_are_written_by_the_workers(tree, cluster, tmp_path):
    out = tmp_path / "dicom"
    assert main(["analyze", str(tree), "-o", str(tmp_path / "r"), "--dicom-results", str(out),
                 "--scheduler", cluster]) == 0  # fmt: skip
    assert len(list(out.rglob("seg.dcm"))) == 4 and len(list(out.rglob("sr.dcm"))) == 4


def test_convert_tree_on_dask_equals_local(tree, cluster, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "remote"
    assert main(["convert", str(tree), str(local), "--workers", "1"]) == 0
    assert main(["convert", str(tree), str(remote), "--scheduler", cluster]) == 0
    files = sorted(p.relative_to(local) for p in local.rglob("*.nii*"))
    assert len(files) >= 4 and files == sorted(
        p.relative_to(remote) for p in remote.rglob("*.nii*")
    )
    for relative in files:
        a, b = nib.load(local / relative), nib.load(remote / relative)
        np.testing.assert_array_equal(a.get_fdata(), b.get_fdata())
        np.testing.assert_allclose(a.affine, b.affine, atol=1e-6)


def test_export_nerf_all_series_on_dask_equals_local(tree, cluster, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "remote"
    assert main(["export", "nerf", str(tree), str(local), "--all", "--workers", "1"]) == 0
    assert main(["export", "nerf", str(tree), str(remote), "--all", "--scheduler", cluster]) == 0
    assert digest(local) == digest(remote) and len(digest(local)) > 4 * 12


def test_deidentify_on_dask_equals_local(tree, cluster, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "remote"
    assert main(["deidentify", str(tree), str(local), "--workers", "1"]) == 0
    assert main(["deidentify", str(tree), str(remote), "--scheduler", cluster]) == 0
    assert digest(local) == digest(remote) and len(digest(local)) == 4 * 12


def test_dataset_build_on_dask_equals_local(tree, cluster, tmp_path):
    local, remote = tmp_path / "local.h5", tmp_path / "remote.h5"
    assert main(["dataset", "build", str(tree), "-o", str(local), "--workers", "1"]) == 0
    assert main(["dataset", "build", str(tree), "-o", str(remote), "--scheduler", cluster]) == 0
    with h5py.File(local) as a, h5py.File(remote) as b:
        names: list[str] = []
        a.visit(names.append)
        datasets = [n for n in names if isinstance(a[n], h5py.Dataset)]
        assert {"images", "masks"} <= set(datasets) and a["images"].shape[0] >= 4 * 12
        for name in datasets:
            np.testing.assert_array_equal(a[name][()], b[name][()])


def test_segment_tree_on_dask_equals_local(tree, cluster, tmp_path):
    from radpipe.models.training import TrainOptions, train

    dataset = tmp_path / "train.h5"
    assert main(["dataset", "build", str(tree), "-o", str(dataset), "--workers", "1"]) == 0
    model = tmp_path / "model"
    train(dataset, model, options=TrainOptions(epochs=1, batch_size=8, seed=1))
    local, remote = tmp_path / "local", tmp_path / "remote"
    assert main(["segment", str(tree), str(local), "--model", str(model), "--workers", "1"]) == 0
    assert main(["segment", str(tree), str(remote), "--model", str(model),
                 "--scheduler", cluster]) == 0  # fmt: skip
    assert same_label_files(local, remote) >= 4


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def scheduler_and_workers(tmp_path):
    """`dask scheduler` and two `dask worker` processes (no nanny: a killed worker stays dead)."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ)
    processes = [subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", str(port), "--no-dashboard"], env=env, stderr=subprocess.DEVNULL)]  # fmt: skip
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                address,
                "--nthreads",
                "1",
                "--no-nanny",
                "--no-dashboard",
                "--name",
                f"w{n}",
            ],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        for n in (1, 2)
    ]
    processes += workers
    with distributed.Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=60)
    yield address, workers
    for process in processes:
        process.kill()
        process.wait(timeout=20)


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(
    tree, scheduler_and_workers, tmp_path
):
    from radpipe.export.cohort import analyse_catalog_to_reports

    address, workers = scheduler_and_workers
    local = tmp_path / "local"
    assert main(["analyze", str(tree), "-o", str(local), "--workers", "1",
                 "--dicom-results", str(tmp_path / "local-dicom")]) == 0  # fmt: skip
    killed_with: list[int] = []

    def kill_w1_while_it_works() -> None:
        """Kill worker w1 as soon as the scheduler lists a patient job on it."""
        with distributed.Client(address, timeout=30) as watcher:
            deadline = time.time() + 120
            while time.time() < deadline:
                names = {a: w["name"] for a, w in watcher.scheduler_info()["workers"].items()}
                busy = {names.get(a): keys for a, keys in watcher.processing().items()}
                if any("analyse_patient_job" in str(k) or "chunk" in str(k)
                       for k in busy.get("w1", ())):  # fmt: skip
                    killed_with.append(len(busy["w1"]))
                    workers[0].send_signal(signal.SIGKILL)
                    return
                time.sleep(0.02)

    watcher = threading.Thread(target=kill_w1_while_it_works)
    watcher.start()
    done: list[str] = []
    _, _, files = analyse_catalog_to_reports(
        tree, tmp_path / "remote", scheduler=address, on_patient=lambda r: done.append(r.patient),
        dicom_results=tmp_path / "remote-dicom",
    )  # fmt: skip
    watcher.join()
    assert killed_with and workers[0].wait(timeout=20) is not None  # killed while working
    assert len(done) == len(set(done)) == 4  # every patient once
    for name in ("lesions.csv", "patients.csv"):
        assert (local / name).read_text() == (tmp_path / "remote" / name).read_text()
    # each patient's SEG and SR exactly once, none half-written
    assert len(files) == 8 and len(list((tmp_path / "remote-dicom").rglob("*.dcm"))) == 8
    # a job killed while writing leaves at most its hidden staging folder, never a visible one
    visible = sorted(p.name for p in (tmp_path / "remote-dicom").iterdir() if p.name[0] != ".")
    assert visible == sorted(p.name for p in (tmp_path / "local-dicom").iterdir())


def test_compressed_series_convert_inside_dask_workers(cluster, tmp_path):
    """Dask's workers are daemons: a compressed series (decoded in a process pool locally) must
    decode in-process there, and give the local values."""
    root = tmp_path / "rle-tree"
    for n in (1, 2):
        write_phantom_study(root / f"p{n}", patient_id=f"RLE-{n}", shape=(16, 48, 48),
                            tumours=1, seed=n, transfer_syntax="rle")  # fmt: skip
    local, remote = tmp_path / "local", tmp_path / "remote"
    assert main(["convert", str(root), str(local), "--workers", "1"]) == 0
    assert main(["convert", str(root), str(remote), "--scheduler", cluster]) == 0
    assert same_label_files(local, remote) >= 2


def test_a_bad_scheduler_address_is_one_line_and_writes_nothing(tree, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["deidentify", str(tree), str(out), "--scheduler", "notanaddress"]) == 1
    err = capsys.readouterr().err.strip()
    assert "cannot reach the Dask scheduler at notanaddress" in err and len(err.splitlines()) == 1
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
