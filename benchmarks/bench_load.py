"""Series load: radpipe against SimpleITK's ImageSeriesReader, dcm2niix and a plain pydicom loop.

Writes a 512×512×300 phantom CT series (uncompressed) and 100-slice RLE, JPEG 2000, JPEG-LS and
JPEG lossless series once into bench-output/, then times each reader in one run and prints the
ratios, and the per-frame time of each packaged decoder on the same codestreams.

    .venv/bin/python benchmarks/bench_load.py [--slices 300] [--only decoders|compressed]
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
    folder = jpeg_lossless_series(100) if syntax == "jpeg-lossless" else phantom_series(100, syntax)
    ours = best_time(lambda: radpipe.load(folder), repeats=repeats)
    peers = {
        "SimpleITK ImageSeriesReader": best_time(lambda: load_sitk(folder), repeats=repeats),
        "pydicom loop": best_time(lambda: load_pydicom_loop(folder), repeats=1),
    }
    if shutil.which("dcm2niix"):
        try:
            peers["dcm2niix (writes .nii)"] = best_time(
                lambda: run_dcm2niix(folder), repeats=repeats
            )
        except subprocess.CalledProcessError:  # this build lacks the codec (JPEG-LS: CharLS)
            print(f"\n(dcm2niix cannot convert the {syntax} series: its build lacks the codec)")
    report(f"{syntax} 100x512x512 series", ours, peers)


def jpeg_lossless_series(slices: int) -> Path:
    """The uncompressed phantom series re-encoded as JPEG Lossless SV1 (process 14, first-order
    prediction; libjpeg-turbo's lossless encoder, as scanners and PACS write it)."""
    import imagecodecs
    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGLosslessSV1

    folder = BENCH_DIR / f"phantom_{slices}_jpeg-lossless" / "CT"
    if folder.is_dir():
        return folder
    print(f"writing {slices}-slice JPEG lossless phantom to {folder} ...", flush=True)
    source = phantom_series(slices, "explicit")
    temporary = folder.with_name("CT.partial")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    for path in sorted(source.glob("*.dcm")):
        dataset = pydicom.dcmread(path)
        stream = imagecodecs.jpeg8_encode(
            dataset.pixel_array, lossless=True, predictor=1, bitspersample=dataset.BitsStored
        )
        dataset.PixelData = encapsulate([stream])
        dataset["PixelData"].VR = "OB"
        dataset.file_meta.TransferSyntaxUID = JPEGLosslessSV1
        dataset.save_as(temporary / path.name, enforce_file_format=True)
    temporary.rename(folder)
    return folder


def compare_decoders(repeats: int) -> None:
    """Per-frame decode time of each packaged decoder on the same codestreams, and whether it
    gives pydicom's default values: the table radpipe's choice of decoder comes from."""
    import pydicom
    from pydicom.encaps import generate_frames
    from pydicom.pixels import pixel_array

    cases = {
        "JPEG 2000": (phantom_series(100, "jpeg2000"),
                      {"pydicom + pylibjpeg-openjpeg": ("pydicom", "pylibjpeg"),
                       "pydicom + python-gdcm": ("pydicom", "gdcm"),
                       "imagecodecs jpeg2k (OpenJPEG)": ("imagecodecs", "jpeg2k_decode")}),
        "JPEG-LS": (phantom_series(100, "jpegls"),
                    {"pydicom + pyjpegls (CharLS)": ("pydicom", "pyjpegls"),
                     "pydicom + pylibjpeg-libjpeg": ("pydicom", "pylibjpeg"),
                     "pydicom + python-gdcm": ("pydicom", "gdcm"),
                     "imagecodecs jpegls (CharLS)": ("imagecodecs", "jpegls_decode")}),
        "JPEG lossless SV1": (jpeg_lossless_series(100),
                              {"pydicom + pylibjpeg-libjpeg": ("pydicom", "pylibjpeg"),
                               "pydicom + python-gdcm": ("pydicom", "gdcm"),
                               "imagecodecs jpeg8 (libjpeg-turbo)": ("imagecodecs", "jpeg8_decode"),
                               "imagecodecs ljpeg (liblj92)": ("imagecodecs", "ljpeg_decode"),
                               "imagecodecs jpegsof3": ("imagecodecs", "jpegsof3_decode")}),
    }  # fmt: skip
    print("\nper-frame decode, 20 frames of 512x512 (one thread; identical = pydicom's values)")
    for title, (folder, decoders) in cases.items():
        paths = sorted(folder.glob("*.dcm"))[:20]
        reference = [np.asarray(pixel_array(str(p))) for p in paths]
        streams = []
        for path in paths:
            dataset = pydicom.dcmread(path)
            streams.append(bytes(next(generate_frames(dataset.PixelData, number_of_frames=1))))
        print(f"  {title}")
        for name, (kind, which) in decoders.items():
            decode = _decoder(kind, which, paths, streams)
            try:
                values = decode()
            except Exception as exc:  # a plugin that is missing or refuses the stream
                print(f"    {name:<36} unavailable ({type(exc).__name__}: {str(exc)[:60]})")
                continue
            same = all(
                np.array_equal(v.view(r.dtype) if v.dtype != r.dtype and v.itemsize == r.itemsize
                               else v, r)
                for v, r in zip(values, reference, strict=True)
            )  # fmt: skip
            seconds = best_time(decode, repeats=repeats)
            gil = " (releases the GIL)" if kind == "imagecodecs" else ""
            print(f"    {name:<36} {seconds / len(paths) * 1000:6.1f} ms/frame  "
                  f"{'identical' if same else 'DIFFERENT'}{gil}")  # fmt: skip


def _decoder(kind: str, which: str, paths: list[Path], streams: list[bytes]):
    """A function decoding every frame of ``paths`` with one decoder."""
    from pydicom.pixels import pixel_array

    if kind == "pydicom":
        return lambda: [np.asarray(pixel_array(str(p), decoding_plugin=which)) for p in paths]
    import imagecodecs

    codec = getattr(imagecodecs, which)
    return lambda: [np.asarray(codec(stream)) for stream in streams]


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
    parser.add_argument(
        "--only", choices=["decoders", "compressed"], help="run one part: the per-frame decoder "
        "table, or the compressed series loads"
    )  # fmt: skip
    args = parser.parse_args()
    if args.only == "decoders":
        compare_decoders(args.repeats)
        return
    if args.only == "compressed":
        for syntax in ("rle", "jpeg2000", "jpegls", "jpeg-lossless"):
            compare_compressed(syntax, args.repeats)
        return

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

    for syntax in ("rle", "jpeg2000", "jpegls", "jpeg-lossless"):
        compare_compressed(syntax, args.repeats)
    compare_decoders(args.repeats)
    compare_mosaic(args.repeats)

    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "radpipe.cli.main", "--help"], check=True, capture_output=True
    )
    print(f"\nradpipe --help starts in {time.perf_counter() - start:.3f} s (target < 0.5 s)")


if __name__ == "__main__":
    main()
