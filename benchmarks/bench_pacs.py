"""Retrieving a 300-slice study over loopback from a real Orthanc: radpipe's C-GET and C-MOVE
against dcmtk's ``getscu`` and ``movescu`` (Debian ``dcmtk``) on the same PACS, in one run.

    .venv/bin/python benchmarks/bench_pacs.py [--slices 300] [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pydicom

from radpipe.pacs import get, move, resolve_peer, send
from radpipe.pacs.testing import OrthancServer, free_port
from radpipe.phantom import write_phantom_study


def timed(function: Callable[[Path], None], work: Path, runs: int) -> float:
    """Median seconds of ``function(fresh folder)`` over ``runs`` runs."""
    times = []
    for run in range(runs):
        folder = work / f"out-{function.__name__}-{run}"
        started = time.perf_counter()
        function(folder)
        times.append(time.perf_counter() - started)
        shutil.rmtree(folder, ignore_errors=True)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    if shutil.which("Orthanc") is None or shutil.which("getscu") is None:
        sys.exit("needs Orthanc and dcmtk (make installs orthanc and dcmtk)")
    with tempfile.TemporaryDirectory(prefix="radpipe-bench-pacs-") as folder:
        work = Path(folder)
        study = write_phantom_study(work / "study", shape=(arguments.slices, 512, 512),
                                    spacing=(1.0, 0.8, 0.8), tumours=3, seed=2)  # fmt: skip
        uid = str(pydicom.dcmread(study.files[0], stop_before_pixels=True).StudyInstanceUID)
        server = OrthancServer(work / "orthanc", free_port(), free_port(), free_port())
        server.start()
        try:
            peer = resolve_peer("127.0.0.1", server.dicom_port, server.aet)
            assert send(peer, [study.series_folder]).sent == arguments.slices
            port, aet = str(server.dicom_port), server.aet
            keys = ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={uid}"]

            def radpipe_get(out: Path) -> None:
                assert len(get(peer, uid, out).received) == arguments.slices

            def radpipe_move(out: Path) -> None:
                result = move(peer, uid, out, listen_port=server.move_port)
                assert len(result.received) == arguments.slices

            def dcmtk_get(out: Path) -> None:
                out.mkdir()
                command = ["getscu", "-aet", "RADPIPE", "-aec", aet, "-S", *keys, "-od", str(out),
                           "127.0.0.1", port]  # fmt: skip
                subprocess.run(command, check=True, capture_output=True)
                assert len(list(out.iterdir())) == arguments.slices

            def dcmtk_move(out: Path) -> None:
                out.mkdir()
                command = ["movescu", "-aet", "RADPIPE", "-aem", "RADPIPE", "-aec", aet, "--port",
                           str(server.move_port), "-S", *keys, "-od", str(out), "127.0.0.1",
                           port]  # fmt: skip
                subprocess.run(command, check=True, capture_output=True)
                assert len(list(out.iterdir())) == arguments.slices

            figures = {f.__name__: timed(f, work, arguments.runs)
                       for f in (radpipe_get, dcmtk_get, radpipe_move, dcmtk_move)}  # fmt: skip
        finally:
            server.stop()
    size_mb = arguments.slices * 512 * 512 * 2 / 1e6
    print(f"\nretrieving a {arguments.slices}-slice 512×512 CT study ({size_mb:.0f} MB) from "
          f"Orthanc over loopback, median of {arguments.runs}")  # fmt: skip
    for ours, theirs, label in (("radpipe_get", "dcmtk_get", "C-GET"),
                                ("radpipe_move", "dcmtk_move", "C-MOVE")):  # fmt: skip
        rate, peer_rate = arguments.slices / figures[ours], arguments.slices / figures[theirs]
        print(f"  {label}: radpipe {figures[ours]:6.2f} s ({rate:6.0f} instances/s), dcmtk "
              f"{figures[theirs]:6.2f} s ({peer_rate:6.0f}/s): radpipe {rate / peer_rate:.2f}x "
              "dcmtk's throughput (target >= 1x)")  # fmt: skip


if __name__ == "__main__":
    main()
