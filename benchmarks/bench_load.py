"""Series load: radpipe against SimpleITK's ImageSeriesReader, dcm2niix and a plain pydicom loop.

Writes a 512×512×300 phantom CT series (uncompressed) and 100-slice RLE and JPEG 2000 series
once into bench-output/, then times each reader in one run and prints the ratios.

    .venv/bin/python benchmarks/bench_load.py [--slices 300]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import radpipe
from common import BENCH_DIR, best_time, report
from radpipe.phantom import write_phantom_study


def phantom_series(slices: int, syntax: str) -> Path:
    folder = BENCH_DIR / f"phantom_{slices}_{syntax}"
    if not (folder / "CT").is_dir():
        print(f"writing {slices}-slice {syntax} phantom to {folder} ...", flush=True)
        write_phantom_study(
            folder,
            shape=(slices, 512, 512),
            spacing=(1.0, 0.7, 0.7),
            tumours=4,
            seed=1,
            transfer_syntax=syntax,
            overwrite=True,
        )
    return folder / "CT"


def load_sitk(folder: Path) -> object:
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def load_pydicom_loop(folder: Path) -> np.ndarray:
    import pydicom

    datasets = [pydicom.dcmread(path) for path in sorted(folder.glob("*.dcm"))]
    datasets.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    return np.stack(
        [ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in datasets]
    )


def run_dcm2niix(folder: Path) -> None:
    with tempfile.TemporaryDirectory() as output:
        subprocess.run(
            ["dcm2niix", "-z", "n", "-b", "n", "-o", output, str(folder)],
            check=True,
            capture_output=True,
        )


def raw_read(folder: Path) -> None:
    for path in folder.glob("*.dcm"):
        path.read_bytes()


def compare_compressed(syntax: str, repeats: int) -> None:
    folder = phantom_series(100, syntax)
    ours = best_time(lambda: radpipe.load(folder), repeats=repeats)
    peers = {
        "SimpleITK ImageSeriesReader": best_time(lambda: load_sitk(folder), repeats=repeats),
        "pydicom loop": best_time(lambda: load_pydicom_loop(folder), repeats=1),
    }
    if shutil.which("dcm2niix"):
        peers["dcm2niix (writes .nii)"] = best_time(lambda: run_dcm2niix(folder), repeats=repeats)
    report(f"{syntax} 100x512x512 series", ours, peers)


def compare_mosaic(repeats: int) -> None:
    """A Siemens EPI mosaic series (dcm_qa_nih mr_0003, 2 time points of 5 slices)."""
    folder = Path(__file__).resolve().parents[2] / "shared/data/dcm_qa_nih/In/20180918Si/mr_0003"
    if not folder.is_dir():
        print(f"\nmosaic: {folder} not found; skipped")
        return
    import warnings

    import pydicom
    from nibabel.nicom import dicomwrappers

    def nibabel_route() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for path in sorted(folder.glob("*.dcm")):
                dicomwrappers.wrapper_from_data(pydicom.dcmread(path)).get_data()

    peers = {"nibabel MosaicWrapper loop": best_time(nibabel_route, repeats=repeats * 3)}
    if shutil.which("dcm2niix"):
        peers["dcm2niix (writes .nii)"] = best_time(lambda: run_dcm2niix(folder), repeats=repeats)
    ours = best_time(lambda: radpipe.load(folder), repeats=repeats * 3)
    report("Siemens mosaic series (5 × 72 × 72 × 2)", ours, peers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    uncompressed = phantom_series(args.slices, "explicit")
    volume = radpipe.load(uncompressed)
    import SimpleITK as sitk

    reference = sitk.GetArrayFromImage(load_sitk(uncompressed))
    assert np.array_equal(volume.array, reference), "radpipe and SimpleITK disagree"
    del reference
    ours = best_time(lambda: radpipe.load(uncompressed), repeats=args.repeats)
    peers = {
        "SimpleITK ImageSeriesReader": best_time(
            lambda: load_sitk(uncompressed), repeats=args.repeats
        ),
        "pydicom loop": best_time(lambda: load_pydicom_loop(uncompressed), repeats=1),
        "raw bytes (floor)": best_time(lambda: raw_read(uncompressed), repeats=args.repeats),
    }
    if shutil.which("dcm2niix"):
        peers["dcm2niix (writes .nii)"] = best_time(
            lambda: run_dcm2niix(uncompressed), repeats=args.repeats
        )
    report(f"uncompressed {volume.shape} int16 series", ours, peers)

    for syntax in ("rle", "jpeg2000"):
        compare_compressed(syntax, args.repeats)
    compare_mosaic(args.repeats)

    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "radpipe.cli.main", "--help"], check=True, capture_output=True
    )
    print(f"\nradpipe --help starts in {time.perf_counter() - start:.3f} s (target < 0.5 s)")


if __name__ == "__main__":
    main()
