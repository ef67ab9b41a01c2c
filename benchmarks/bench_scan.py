"""Dataset scan: radpipe's catalog scan against a plain pydicom walk and SimpleITK's series
discovery, then the cached re-scan.

Writes 200 phantom patients of 100 small slices (20,000 DICOM files, 50 patients zipped)
once into bench-output/, then times each in one run: the best of three first scans (each into
a new catalog) and of their re-scans, against the best of two pydicom walks.

    .venv/bin/python benchmarks/bench_scan.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH_DIR, report
from radpipe.catalog.store import scan
from radpipe.phantom import write_phantom_study


def dataset(patients: int, slices: int, zipped: int) -> Path:
    root = BENCH_DIR / f"scan_{patients}x{slices}"
    if (root / ".complete").exists():
        return root
    print(f"writing {patients} patients x {slices} slices to {root} ...", flush=True)
    shutil.rmtree(root, ignore_errors=True)
    for number in range(patients):
        folder = root / f"patient{number:04d}"
        study = write_phantom_study(
            folder, patient_id=f"BENCH-{number:04d}", shape=(slices, 32, 32),
            spacing=(2.0, 6.0, 6.0), tumours=0, seed=number,
        )  # fmt: skip
        study.labels_path.unlink()  # images only: the label map and its names' sidecar go
        study.labels_path.with_name("labels.json").unlink(missing_ok=True)
        if number < zipped:
            with zipfile.ZipFile(folder / "CT.zip", "w", zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(study.series_folder.glob("[!.]*")):
                    archive.write(path, f"CT/{path.name}")
            shutil.rmtree(study.series_folder)
    (root / ".complete").touch()
    return root


def pydicom_walk(root: Path) -> int:
    import pydicom

    count = 0
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            if name.endswith(".zip"):
                with zipfile.ZipFile(path) as archive:
                    for member in archive.namelist():
                        if member.rsplit("/", 1)[-1].startswith("."):
                            continue  # the writer's hidden marker: radpipe skips it too
                        with archive.open(member) as handle:
                            pydicom.dcmread(handle, stop_before_pixels=True)
                        count += 1
            elif not name.startswith("."):
                pydicom.dcmread(path, stop_before_pixels=True)
                count += 1
    return count


def sitk_series(root: Path) -> int:
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    count = 0
    for folder, _, names in os.walk(root):
        if any(n.endswith(".dcm") for n in names):
            for series in reader.GetGDCMSeriesIDs(folder):
                count += len(reader.GetGDCMSeriesFileNames(folder, series))
    return count


def timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--slices", type=int, default=100)
    parser.add_argument("--zipped", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many first scans")
    args = parser.parse_args()
    root = dataset(args.patients, args.slices, args.zipped)
    files = args.patients * args.slices
    firsts, agains = [], []
    for _ in range(args.repeats):  # each first scan into a new catalog, then its re-scan
        with tempfile.TemporaryDirectory() as work:
            catalog_path = Path(work) / "catalog.sqlite"
            seconds, (_, scan_report) = timed(lambda path=catalog_path: scan(root, path))
            assert scan_report.files == files and scan_report.series == args.patients, scan_report
            firsts.append(seconds)
            for _ in range(3):
                seconds, (_, rescan_report) = timed(lambda path=catalog_path: scan(root, path))
                assert rescan_report.read == 0 and rescan_report.files == files
                agains.append(seconds)
    first, again = min(firsts), min(agains)
    walks = []
    for _ in range(max(1, args.repeats - 1)):
        seconds, walked = timed(lambda: pydicom_walk(root))
        assert walked == files
        walks.append(seconds)
    walk_seconds = min(walks)
    plain_files = (args.patients - args.zipped) * args.slices
    sitk_seconds, found = timed(lambda: sitk_series(root))
    assert found == plain_files

    scan_rate, walk_rate = files / first, files / walk_seconds
    sitk_rate = plain_files / sitk_seconds
    print(f"\n{files} DICOM files, {args.zipped * args.slices} of them in zip archives")
    print(f"  radpipe scan          {scan_rate:9.0f} files/s")
    print(
        f"  pydicom walk          {walk_rate:9.0f} files/s   radpipe {scan_rate / walk_rate:4.2f}x"
    )
    print(
        f"  SimpleITK GDCM IDs    {sitk_rate:9.0f} files/s   radpipe {scan_rate / sitk_rate:4.2f}x"
    )
    print(f"  radpipe cached rescan {files / again:9.0f} files/s   {first / again:5.1f}x the first")
    print("  targets: scan >= 3x the pydicom walk; cached rescan >= 20x faster than the first")
    report("scan of the whole tree", first, {"pydicom walk": walk_seconds})
    report("cached re-scan", again, {"first scan": first})


if __name__ == "__main__":
    main()
