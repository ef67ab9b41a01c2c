"""Archive limits hold before anything is decompressed: a zip bomb is refused in about a second
with little memory, nested archives share one budget, and every command reports the refusal."""

from __future__ import annotations

import io
import resource
import subprocess
import sys
import time
import zipfile

import pytest

from radpipe.errors import ReadError
from radpipe.io.sources import ArchiveLimits, Problem, list_locations, walk_sources


def zeros_member(archive: zipfile.ZipFile, name: str, size: int) -> None:
    with archive.open(name, "w", force_zip64=True) as handle:
        chunk = bytes(min(size, 64 * 1024**2))
        for _ in range(size // len(chunk)):
            handle.write(chunk)


#: Runs the CLI and prints the process's own peak resident memory (KiB) last on stderr: VmHWM
#: of this process image (ru_maxrss would include the forking parent's size, kept over exec).
MEASURED = """
import sys
from radpipe.cli.main import main
code = main(sys.argv[1:])
status = open("/proc/self/status").read()
peak = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))
print(f"peak_kib={peak}", file=sys.stderr)
sys.exit(code)
"""


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    """1 GiB of zeros as one 'DICOM' member, about 1 MB on disk."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        zeros_member(archive, "CT/IM0001.dcm", 1024**3)
    return path


def test_a_zip_bomb_is_refused_quickly_with_little_memory(bomb, tmp_path):
    assert bomb.stat().st_size < 2 * 1024**2
    (problem,) = [item for item in walk_sources(bomb) if isinstance(item, Problem)]
    assert "ratio limit" in problem.reason
    for command in (
        ["scan", str(bomb), "--catalog", str(tmp_path / "c.sqlite")],
        ["info", str(bomb)],
        ["convert", str(bomb), str(tmp_path / "x.nii.gz")],
    ):
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", MEASURED, *command],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        peak_mb = int(result.stderr.rsplit("peak_kib=", 1)[1]) / 1024
        assert seconds < 5, command  # 0.4 s here, the interpreter's start included
        assert peak_mb < 200, (command, peak_mb)  # about 65 MB here
        if command[0] != "scan":  # a scan lists it among its problems and goes on
            assert result.returncode == 1 and "ratio limit" in result.stderr, result.stderr
    with pytest.raises(ReadError, match="ratio limit"):
        list_locations(f"{bomb}::CT")


def test_nested_archives_share_one_budget(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as archive:
        zeros_member(archive, "a.dcm", 40 * 1024**2)
    path = tmp_path / "outer.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for number in range(3):
            archive.writestr(f"part{number}.zip", inner.getvalue())
    limits = ArchiveLimits(max_total_bytes=100 * 1024**2, max_ratio=10_000)
    problems = [item for item in walk_sources(path, limits=limits) if isinstance(item, Problem)]
    assert problems and "nested archives counted together" in problems[0].reason
    roomy = ArchiveLimits(max_total_bytes=200 * 1024**2, max_ratio=10_000)
    assert not [i for i in walk_sources(path, limits=roomy) if isinstance(i, Problem)]


def test_a_huge_npz_heatmap_is_refused_from_its_header(tmp_path):
    from numpy.lib import format as npy_format

    from radpipe.errors import FormatError
    from radpipe.io.heatmaps import read_heatmap

    path = tmp_path / "big.npz"
    header = {"descr": "<f4", "fortran_order": False, "shape": (1000, 1000, 1000)}
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("heat.npy", "w", force_zip64=True) as handle,
    ):
        npy_format.write_array_header_1_0(handle, header)
        handle.write(bytes(16 * 1024**2))  # the rest would be 3.7 GiB of zeros
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(FormatError, match=r"announces \[1000, 1000, 1000\] float32"):
        read_heatmap(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024  # KiB


def test_members_sharing_a_name_are_refused_not_read_twice(tmp_path, phantom_study):
    import warnings

    files = sorted(phantom_study.series_folder.glob("*.dcm"))
    path = tmp_path / "dup.zip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        with zipfile.ZipFile(path, "w") as archive:
            archive.write(files[0], "a.dcm")
            archive.write(files[1], "a.dcm")
    problems = [item for item in walk_sources(path) if isinstance(item, Problem)]
    assert len(problems) == 2 and "several members of this name" in problems[0].reason
    with pytest.raises(ReadError, match="several members"):
        import radpipe

        radpipe.load(path)
