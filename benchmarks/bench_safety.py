"""What data safety costs, and what it saves:

- refusing a 1 GiB zip bomb (about 1 MB on disk): radpipe's listing (declared sizes and ratio,
  before anything is inflated) against the naive route, Python's zipfile reading the member;
- writing a 300×512×512 CT as NIfTI through radpipe.save (input guard, temporary name, umask,
  rename) against nibabel's own save of the same image.

    .venv/bin/python benchmarks/bench_safety.py
"""

from __future__ import annotations

import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import radpipe
from common import best_time, report
from radpipe.io.sources import Problem, walk_sources


def make_bomb(path: Path) -> None:
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("CT/IM0001.dcm", "w", force_zip64=True) as handle,
    ):
        chunk = bytes(64 * 1024**2)
        for _ in range(16):
            handle.write(chunk)


def main() -> None:
    import nibabel as nib

    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        bomb = folder / "bomb.zip"
        make_bomb(bomb)

        def refuse() -> None:
            problems = [i for i in walk_sources(bomb) if isinstance(i, Problem)]
            assert problems

        def inflate() -> None:
            with zipfile.ZipFile(bomb) as archive, archive.open("CT/IM0001.dcm") as member:
                while member.read(64 * 1024**2):
                    pass

        started = time.perf_counter()
        inflate()
        naive = time.perf_counter() - started
        report(
            f"refuse a 1 GiB zip bomb ({bomb.stat().st_size / 1e6:.1f} MB on disk)",
            best_time(refuse),
            {"zipfile reading the member": naive},
        )

        rng = np.random.default_rng(0)
        ct = radpipe.Volume(
            rng.integers(-1024, 2000, (300, 512, 512), dtype=np.int16),
            np.diag([2.5, 0.7, 0.7, 1.0]),
        )
        image = ct.to_nibabel()
        target = folder / "ct.nii"

        def ours() -> None:
            radpipe.save(ct, target, overwrite=True)

        def theirs() -> None:
            nib.save(image, folder / "plain.nii")

        peers = {"nibabel.save": best_time(theirs, repeats=7)}
        report("write 300×512×512 int16 NIfTI, best of 7", best_time(ours, repeats=7), peers)


if __name__ == "__main__":
    main()
