"""Heatmap files from ML models: JSON, CSV, raw binary, NPY / NPZ, NIfTI and grayscale PNG."""

from __future__ import annotations

import csv
import io
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from radpipe.errors import FormatError, RadpipeError, ReadError
from radpipe.io import registry
from radpipe.volume import Heatmap

#: Endings of heatmaps without geometry; volume formats of the reader registry add theirs.
GRID_SUFFIXES = (".json", ".csv", ".tsv", ".txt", ".bin", ".raw", ".npy", ".npz", ".png")


def read_heatmap(path: str | Path, *, key: str | None = None) -> Heatmap:
    """Read a heatmap file, chosen by its ending.

    Parameters
    ----------
    path : str or Path
        ``.json`` (``{"data": [[...]]}`` or a bare nested list, 2-D or 3-D), ``.csv`` / ``.tsv``
        / ``.txt`` (comma, semicolon, tab or space separated; a header row is skipped),
        ``.bin`` / ``.raw`` (rows and columns as little-endian u32, then rows×cols
        little-endian f32), ``.npy``, ``.npz`` (``key`` or the only array), ``.png``
        (grayscale) — these carry no geometry — or ``.nii`` / ``.nii.gz`` / ``.nrrd`` /
        ``.mha`` / ``.mhd``, which do: such a heatmap is placed by world position.
    key : str, optional
        Array name inside an ``.npz``.

    Raises
    ------
    ReadError
        Missing file or unknown ending.
    FormatError
        Content that is not a 2-D or 3-D grid of numbers (with the reason).
    """
    source = Path(path)
    if not source.is_file():
        raise ReadError(f"{source}: no such heatmap file")
    name = source.name.lower()
    if name.endswith(".json"):
        values = _read_json(source)
    elif name.endswith((".csv", ".tsv", ".txt")):
        values = _read_csv(source)
    elif name.endswith((".bin", ".raw")):
        values = _read_binary(source)
    elif name.endswith(".npy"):
        values = _read_npy(source)
    elif name.endswith(".npz"):
        values = _read_npz(source, key)
    elif registry.format_of(name) is not None:
        from radpipe.io import load

        volume = load(source)
        if volume.array.ndim != 3:
            raise FormatError(
                f"{source}: a heatmap volume has 3 axes, got shape {volume.array.shape}; "
                "save one class per file"
            )
        return Heatmap(volume.array, volume.affine, source=str(source))
    elif name.endswith(".png"):
        values = _read_png(source)
    else:
        endings = ", ".join(GRID_SUFFIXES + registry.volume_suffixes())
        raise ReadError(f"{source}: unknown heatmap format; use one of {endings}")
    array = np.asarray(values)
    if array.dtype.kind not in "fiub":
        raise FormatError(f"{source}: heatmap values must be numbers, got {array.dtype}")
    array = np.squeeze(array.astype(np.float32)) if array.ndim > 3 else array.astype(np.float32)
    if array.ndim not in (2, 3) or min(array.shape) == 0:
        raise FormatError(f"{source}: a heatmap must be a 2-D or 3-D grid, got shape {array.shape}")
    return Heatmap(np.ascontiguousarray(array), source=str(source))


def _read_json(source: Path) -> Any:
    try:
        document = json.loads(source.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{source}: not valid JSON ({exc})") from exc
    except RecursionError:
        raise FormatError(
            f"{source}: JSON nested too deeply; a heatmap is a 2-D or 3-D list of numbers"
        ) from None
    if isinstance(document, dict):
        for name in ("data", "heatmap", "values"):
            if name in document:
                document = document[name]
                break
        else:
            raise FormatError(f"{source}: JSON object without a 'data' array")
    try:
        array = np.array(document, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise FormatError(
            f"{source}: JSON heatmap must be nested lists of numbers of equal length ({exc})"
        ) from exc
    return array


def _read_csv(source: Path) -> Any:
    text = source.read_text(errors="replace")
    sample = text[:4096]
    delimiter = ";" if ";" in sample else "\t" if "\t" in sample else "," if "," in sample else None
    rows: list[list[str]] = []
    if delimiter is None:
        rows = [line.split() for line in text.splitlines() if line.strip()]
    else:
        rows = [
            r
            for r in csv.reader(io.StringIO(text), delimiter=delimiter)
            if any(c.strip() for c in r)
        ]
    if not rows:
        raise FormatError(f"{source}: empty CSV heatmap")
    if not _numeric_row(rows[0]):
        rows = rows[1:]  # header
    for number, row in enumerate(rows, start=1):
        if not _numeric_row(row):
            raise FormatError(f"{source}: row {number} has a value that is not a number: {row[:6]}")
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise FormatError(
            f"{source}: ragged CSV: rows have {sorted(widths)} values; "
            "every row needs the same count"
        )
    return np.array([[float(c) for c in row] for row in rows], dtype=np.float64)


def _numeric_row(row: list[str]) -> bool:
    try:
        [float(c) for c in row]
    except ValueError:
        return False
    return True


def _read_binary(source: Path) -> Any:
    data = source.read_bytes()
    if len(data) < 8:
        raise FormatError(f"{source}: binary heatmap needs an 8-byte header (rows, columns as u32)")
    rows, columns = struct.unpack_from("<II", data)
    expected = 8 + rows * columns * 4
    if len(data) != expected:
        raise FormatError(
            f"{source}: binary heatmap header says {rows}×{columns} float32 values "
            f"({expected} bytes with the header) but the file has {len(data)} bytes"
        )
    return np.frombuffer(data, dtype="<f4", offset=8).reshape(rows, columns)


#: Largest heatmap radpipe decodes (bytes, from the array header, before decompressing).
MAX_HEATMAP_BYTES = 2 * 1024**3


def _checked_header(handle: Any, source: str) -> None:
    """Read an .npy header and refuse arrays too large to be a heatmap, before their data."""
    from numpy.lib import format as npy_format

    try:
        major, _ = npy_format.read_magic(handle)
        read_header = (
            npy_format.read_array_header_1_0 if major == 1 else npy_format.read_array_header_2_0
        )
        shape, _, dtype = read_header(handle)
    except (ValueError, OSError, EOFError) as exc:
        raise FormatError(f"{source}: not a readable .npy array ({exc})") from None
    needed = int(np.prod(shape, dtype=np.float64)) * np.dtype(dtype).itemsize
    if needed > MAX_HEATMAP_BYTES:
        raise FormatError(
            f"{source}: the array header announces {list(shape)} {dtype} "
            f"({needed / 1024**3:.1f} GiB), more than a heatmap radpipe reads "
            f"({MAX_HEATMAP_BYTES // 1024**3} GiB)"
        )


def _read_npy(source: Path) -> Any:
    with open(source, "rb") as handle:
        _checked_header(handle, str(source))
    try:
        return np.load(source, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise FormatError(f"{source}: not a readable .npy array ({exc})") from exc


def _read_npz(source: Path, key: str | None) -> Any:
    try:
        with np.load(source, allow_pickle=False) as archive:
            names = list(archive.files)
            if key is None:
                if len(names) != 1:
                    raise FormatError(
                        f"{source}: holds arrays {names}; choose one with key= / --heatmap-key"
                    )
                key = names[0]
            if key not in names:
                raise FormatError(f"{source}: no array {key!r}; it holds {names}")
            with archive.zip.open(f"{key}.npy") as member:
                _checked_header(member, f"{source}::{key}")
            return archive[key]
    except RadpipeError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise FormatError(f"{source}: not a readable .npz archive ({exc})") from exc


def _read_png(source: Path) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(source) as image:
            return np.asarray(
                image.convert("L") if image.mode not in ("L", "I", "I;16", "F") else image
            )
    except (UnidentifiedImageError, OSError) as exc:
        raise FormatError(f"{source}: not a readable PNG ({exc})") from exc
