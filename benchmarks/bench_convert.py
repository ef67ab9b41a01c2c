"""Whole-tree conversion: `radpipe convert ROOT OUTDIR` against `dcm2niix -z y -o OUTDIR ROOT`
on the same tree (8 phantom CT series of 120×256×256, compressed NIfTI + JSON sidecars both).

    .venv/bin/python benchmarks/bench_convert.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH_DIR, best_time, report
from radpipe.export.tree import convert_tree
from radpipe.phantom import write_phantom_study

TREE = BENCH_DIR / "convert-tree"
PATIENTS = 8


def make_tree() -> Path:
    marker = TREE / ".complete"
    if not marker.exists():
        shutil.rmtree(TREE, ignore_errors=True)
        for number in range(PATIENTS):
            write_phantom_study(TREE / f"p{number:02d}", patient_id=f"BENCH-{number}",
                                shape=(120, 256, 256), tumours=2, seed=number)  # fmt: skip
        marker.write_text("ok")
    return TREE


def main() -> None:
    tree = make_tree()
    dcm2niix = shutil.which("dcm2niix")
    with tempfile.TemporaryDirectory() as work:
        out = Path(work)

        def ours() -> None:
            result = convert_tree(tree, out / "radpipe", overwrite=True)
            assert len(result.written) == PATIENTS, result.problems

        def theirs() -> None:
            target = out / "dcm2niix"
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            subprocess.run([dcm2niix, "-z", "y", "-b", "y", "-o", str(target), str(tree)],
                           check=True, capture_output=True)  # fmt: skip
            assert len(list(target.glob("*.nii.gz"))) == PATIENTS

        peers = {"dcm2niix -z y": best_time(theirs)} if dcm2niix else {}
        report(f"convert a tree of {PATIENTS} series (120×256×256) to .nii.gz + .json",
               best_time(ours), peers)  # fmt: skip
        print("  target: radpipe/dcm2niix <= 1.0")


if __name__ == "__main__":
    main()
