"""Writers killed at the worst moment: everything written, nothing yet renamed into place. No
output stands under its final name, the earlier output (if any) is intact, a re-run cleans the
dead writer's temporaries and completes; a killed command leaves no worker process running."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

#: Runs the CLI with os.replace made fatal: SIGKILL when the first output would be published.
KILL_ON_PUBLISH = """
import os, signal, sys
def publish(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
os.replace = publish
from radpipe.cli.main import main
sys.exit(main(sys.argv[1:]))
"""

#: Runs the CLI with slow slice rendering in the workers, and kills the command after 2 s.
KILL_WHILE_WORKING = """
import os, signal, sys, threading, time
import radpipe.export.png as png
def slow(job):
    time.sleep(60)
png._render_chunk = slow
threading.Timer(2.0, lambda: os.kill(os.getpid(), signal.SIGKILL)).start()
from radpipe.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def run(script: str, argv: list[str], **options) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, *argv], capture_output=True, text=True, check=False,
        timeout=120, **options,
    )  # fmt: skip


def hidden(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(".")]


WRITERS = {
    "convert nrrd": (["convert", "{series}", "{out}/ct.nrrd"], "ct.nrrd"),
    "convert nifti": (["convert", "{series}", "{out}/ct.nii.gz"], "ct.nii.gz"),
    "deidentify": (["deidentify", "{series}", "{out}/deid"], "deid"),
    "export nerf": (["export", "nerf", "{series}", "{out}/nerf"], "nerf"),
    "render slices": (["render", "{series}", "--all-slices", "-o", "{out}/slices"], "slices"),
    "render png": (["render", "{series}", "-o", "{out}/views.png"], "views.png"),
    "dataset build": (["dataset", "build", "{study}", "-o", "{out}/d.h5", "--workers", "1"],
                      "d.h5"),
}  # fmt: skip


@pytest.mark.parametrize("writer", list(WRITERS), ids=list(WRITERS))
def test_a_writer_killed_before_publishing_leaves_nothing_half_written(
    phantom_study, tmp_path, writer
):
    template, name = WRITERS[writer]
    out = tmp_path / "out"
    out.mkdir()
    values = {"series": str(phantom_study.series_folder), "study": str(phantom_study.folder),
              "out": str(out)}  # fmt: skip
    argv = [part.format(**values) for part in template]
    killed = run(KILL_ON_PUBLISH, argv)
    # the command itself is killed, or (slices written by workers) a worker is and the
    # command stops with one line
    assert killed.returncode in (-9, 1), killed.stderr
    assert not (out / name).exists()  # nothing under the final name
    if killed.returncode == -9:
        assert hidden(out), "the dead writer's temporaries are there to clean"
    else:
        assert killed.stderr.count("\n") == 1 and "worker process" in killed.stderr
    done = run("import sys; from radpipe.cli.main import main; sys.exit(main(sys.argv[1:]))",
               argv)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out / name).exists()
    assert hidden(out) == [], "a re-run removes a dead writer's temporaries"


def _session_processes(session: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] != "Z":  # session id, not a zombie
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_a_killed_command(phantom_study, tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-c", KILL_WHILE_WORKING, "render", str(phantom_study.series_folder),
         "--all-slices", "-o", str(tmp_path / "slices"), "--workers", "2"],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert process.wait(timeout=60) == -9
    deadline = time.monotonic() + 5
    while _session_processes(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = _session_processes(process.pid)
    for pid in survivors:  # do not leave them running even when the test fails
        os.kill(pid, 9)
    assert survivors == []
    assert not (tmp_path / "slices").exists()
