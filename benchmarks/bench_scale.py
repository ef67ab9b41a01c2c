"""Per-patient commands at scale: one process, every core, and a Dask cluster (LocalCluster of
two one-thread workers here), on eight phantom patients (48×192×192 CT + label map each, as
`radpipe demo` writes them). Prints patients/s, the speed-up over one process, the throughput
per core and the projected hours for 100,000 studies of this size per 100 cores.

    .venv/bin/python benchmarks/bench_scale.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH_DIR
from radpipe.parallel import default_workers
from radpipe.phantom import write_phantom_study

PATIENTS = 8


def cohort() -> Path:
    root = BENCH_DIR / "scale-cohort"
    if not (root / "done").exists():
        shutil.rmtree(root, ignore_errors=True)
        for n in range(1, PATIENTS + 1):
            write_phantom_study(root / f"patient{n:02d}", patient_id=f"SCALE-{n:03d}",
                                shape=(48, 192, 192), spacing=(2.5, 1.8, 1.8), tumours=1 + n % 3,
                                seed=n)  # fmt: skip
        (root / "done").touch()
    return root


def timed(run: Callable[[Path], object]) -> float:
    with tempfile.TemporaryDirectory(prefix="radpipe-bench-") as work:
        start = time.perf_counter()
        run(Path(work) / "out")
        return time.perf_counter() - start


def main() -> None:
    from dask.distributed import LocalCluster

    from radpipe.export.cohort import analyse_catalog_to_reports
    from radpipe.export.deidentify import deidentify_tree

    root = cohort()
    cores = default_workers()
    commands: dict[str, Callable[..., object]] = {
        "analyze (per patient: load, measure, pictures)": lambda out, **kw: (
            analyse_catalog_to_reports(root, out, **kw)
        ),
        "deidentify (per file, 48 files a patient)": lambda out, **kw: deidentify_tree(
            root, out, **kw
        ),
    }
    with LocalCluster(n_workers=cores, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:  # fmt: skip
        address = cluster.scheduler_address
        for name, command in commands.items():
            command_any = command
            timed(lambda out, c=command_any: c(out, workers=1))  # warm-up: caches, imports
            timed(lambda out, c=command_any: c(out, scheduler=address))  # and the workers'
            one = timed(lambda out, c=command_any: c(out, workers=1))
            local = timed(lambda out, c=command_any: c(out, workers=cores))
            dask = timed(lambda out, c=command_any: c(out, scheduler=address))
            print(f"\n{name}, {PATIENTS} patients")
            for label, seconds in (("1 process", one), (f"{cores} processes", local),
                                   (f"Dask, {cores} workers", dask)):  # fmt: skip
                print(f"  {label:<18} {seconds:6.2f} s  {PATIENTS / seconds:6.2f} patients/s  "
                      f"speed-up {one / seconds:4.2f}x")  # fmt: skip
            per_core = PATIENTS / local / cores
            hours = 100_000 / (per_core * 100) / 3600
            print(f"  per core {per_core:.2f} patients/s → 100,000 such studies on 100 cores: "
                  f"{hours:.1f} h")  # fmt: skip


if __name__ == "__main__":
    main()
