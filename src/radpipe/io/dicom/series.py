"""DICOM series: group frames into series, sort them along the slice normal, check spacing, and
assemble each into one ``Volume`` decoded straight into a preallocated array with every core."""

from __future__ import annotations

import dataclasses
import functools
import os
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radpipe import geometry
from radpipe.errors import (
    DuplicateSliceWarning,
    GeometryWarning,
    RadpipeError,
    RadpipeWarning,
    ReadError,
    SeriesError,
)
from radpipe.io.dicom.headers import (
    DECODER_PACKAGES,
    FrameRecord,
    PixelLayout,
    SkippedFile,
    frame_records,
    meta_from_header,
)
from radpipe.io.dicom.pixels import decode_file_frames
from radpipe.io.sources import is_archive_path, list_locations, open_source
from radpipe.volume import Volume

#: Positions closer than this along the normal (mm) are the same slice position.
POSITION_TOLERANCE_MM = 0.01
#: Slice-spacing variation below this fraction of the spacing is rounding noise.
SPACING_RELATIVE_TOLERANCE = 0.01
#: Slice axes further than this from the plane normal (degrees) count as gantry tilt.
TILT_TOLERANCE_DEG = 0.05

Progress = Callable[[int], None]


class OnDuplicate(StrEnum):
    """What to do when two images of a series share a slice position."""

    ERROR = "error"
    FIRST = "first"
    LAST = "last"


class OnIrregular(StrEnum):
    """What to do with a stack whose slices are unevenly spaced (or missing)."""

    RESAMPLE = "resample"  # onto a regular grid through the true positions (linear)
    MEAN = "mean"  # keep the slices, an affine with the mean spacing (positions approximate)
    ERROR = "error"


@dataclass
class SeriesPlan:
    """Everything needed to assemble one series, read from headers only.

    Attributes
    ----------
    key : str
        SeriesInstanceUID, with ``#n`` appended when one UID holds several stacks (different
        orientation, size, image type or echo).
    records : list of FrameRecord
        The frames to decode, in destination order.
    destinations : list of tuple of int
        Index into the output array for each record: ``(k,)`` or ``(k, t)``.
    shape : tuple of int
        Output shape, (S, R, C[, N]).
    dtype : numpy.dtype
    affine : (4, 4) float64
    """

    key: str
    records: list[FrameRecord]
    destinations: list[tuple[int, ...]]
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    dtype_is_guess: bool
    affine: NDArray[np.float64]
    units: str | None
    slice_spacing_regular: bool
    gantry_tilt_deg: float
    extra_axis: str | None
    warnings: list[RadpipeWarning] = field(default_factory=list)
    skipped_files: int = 0
    slice_positions_mm: tuple[float, ...] = ()
    """Each slice's position along the normal (mm), as its headers give it."""

    @property
    def header(self) -> Any:
        """The first frame's header (pixels not loaded), read again if the record lacks it."""
        first = self.records[0]
        full = header_of(first)
        if full is not first.header:
            self.records[0] = first = dataclasses.replace(first, header=full)
        return first.header

    @property
    def file_count(self) -> int:
        """Number of distinct files the series comes from."""
        return len({record.path for record in self.records})

    def meta(self) -> Any:
        """The VolumeMeta the assembled volume will carry."""
        slopes = {record.slope for record in self.records}
        intercepts = {record.intercept for record in self.records}
        return meta_from_header(
            self.header,
            units=self.units,
            rescale_slope=slopes.pop() if len(slopes) == 1 else None,
            rescale_intercept=intercepts.pop() if len(intercepts) == 1 else None,
            slice_spacing_regular=self.slice_spacing_regular,
            gantry_tilt_deg=self.gantry_tilt_deg,
            extra_axis=self.extra_axis,
            source_files=tuple(dict.fromkeys(record.path for record in self.records)),
            skipped_files=self.skipped_files,
            warnings=tuple(str(warning) for warning in self.warnings),
        )


def list_files(path: str | Path) -> list[str]:
    """Every regular file under ``path`` (or ``path`` itself), sorted, hidden files excluded.

    A zip archive, or a location inside one (``study.zip::CT``), lists its members' locations.
    """
    if is_archive_path(str(path)):
        return list_locations(str(path))
    root = Path(path)
    if root.is_file():
        return [str(root)]
    if not root.is_dir():
        raise ReadError(f"{root}: no such file or folder")
    found: list[str] = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in sorted(names):
            path = os.path.join(folder, name)
            # only regular files: opening a named pipe or a device could block forever
            if not name.startswith(".") and os.path.isfile(path):
                found.append(path)
    return found


def scan_headers(
    files: Sequence[str], *, progress: Progress | None = None, collect_errors: bool = False
) -> tuple[list[FrameRecord], list[SkippedFile]]:
    """Read the header of every file once (no pixel data) and describe its frames.

    Header parsing is pure Python and holds the GIL, so large folders are parsed in a pool of
    processes (one per core); their records come back without the parsed header, which is
    read again only for the first frame of each series. Files that hold no image are returned
    as skipped, with the reason; with ``collect_errors`` unreadable files are too (marked
    ``damaged``) instead of raising their ``ReadError``.
    """
    records: list[FrameRecord] = []
    skipped: list[SkippedFile] = []
    workers = _worker_count(len(files))
    if workers > 1 and len(files) >= HEADER_PROCESS_THRESHOLD:
        from radpipe.parallel import process_pool

        chunk = max(1, min(64, len(files) // (workers * 4)))
        with process_pool(workers) as pool:
            results: Iterable[list[FrameRecord] | SkippedFile] = list(
                pool.map(
                    _frame_records_collected if collect_errors else _frame_records_without_header,
                    files,
                    chunksize=chunk,
                )
            )
    else:
        results = map(_frame_records_or_damage if collect_errors else frame_records, files)
    for result in results:
        if isinstance(result, SkippedFile):
            skipped.append(result)
        else:
            records.extend(result)
        if progress is not None:
            progress(1)
    return records, skipped


#: Folders with at least this many files have their headers parsed in worker processes.
HEADER_PROCESS_THRESHOLD = 64


def _frame_records_or_damage(path: str) -> list[FrameRecord] | SkippedFile:
    try:
        return frame_records(path)
    except ReadError as exc:
        return SkippedFile(path, str(exc), damaged=True)


def _frame_records_collected(path: str) -> list[FrameRecord] | SkippedFile:
    try:
        return _frame_records_without_header(path)
    except ReadError as exc:
        return SkippedFile(path, str(exc), damaged=True)


def _frame_records_without_header(path: str) -> list[FrameRecord] | SkippedFile:
    result = frame_records(path)
    if isinstance(result, SkippedFile):
        return result
    return [dataclasses.replace(record, header=None) for record in result]


def header_of(record: FrameRecord) -> Any:
    """The parsed header (no pixels) of a frame's file, read again if it was dropped."""
    from radpipe.io.dicom.fast_header import FastHeader
    from radpipe.io.dicom.headers import open_dataset

    if record.header is not None and not isinstance(record.header, FastHeader):
        return record.header

    dataset, _ = open_dataset(record.path, stop_before_pixels=True)
    return dataset


def _worker_count(items: int) -> int:
    from radpipe.parallel import in_worker

    if in_worker():
        return 1  # inside a pool or Dask worker: no pool of its own
    return max(1, min(os.cpu_count() or 1, 8, items))


@functools.lru_cache(maxsize=4096)
def _rounded(orientation: tuple[float, ...] | None) -> tuple[float, ...] | None:
    return tuple(round(v, 3) for v in orientation) if orientation is not None else None


def _stack_key(record: FrameRecord) -> tuple[Any, ...]:
    orientation = _rounded(record.orientation)
    layout = record.layout
    return (
        record.series_uid,
        record.split_key,
        orientation,
        layout.rows,
        layout.columns,
        layout.channels,
    )


def group_stacks(records: Iterable[FrameRecord]) -> dict[str, list[FrameRecord]]:
    """Group frames by series, then split each series into stacks of one orientation, size,
    image type and echo. Keys are the SeriesInstanceUID, ``UID#2`` ... for further stacks."""
    stacks: dict[tuple[Any, ...], list[FrameRecord]] = defaultdict(list)
    for record in records:
        stacks[_stack_key(record)].append(record)
    per_series: dict[str, list[list[FrameRecord]]] = defaultdict(list)
    for key in sorted(stacks, key=lambda k: (k[0], stacks[k][0].path, stacks[k][0].frame)):
        per_series[key[0]].append(stacks[key])
    grouped: dict[str, list[FrameRecord]] = {}
    for uid, series_stacks in per_series.items():
        series_stacks.sort(key=len, reverse=True)
        for index, stack in enumerate(series_stacks):
            grouped[uid if index == 0 else f"{uid}#{index + 1}"] = stack
    return grouped


def plan_series(
    key: str,
    records: Sequence[FrameRecord],
    *,
    on_duplicate: OnDuplicate | str = OnDuplicate.ERROR,
    skipped_files: int = 0,
) -> SeriesPlan:
    """Sort one stack of frames into a volume plan: order, geometry, dtype and warnings.

    Slices are ordered by their position projected on the slice normal (never by file name or
    InstanceNumber). When every position holds the same number N > 1 of frames with distinct
    temporal keys, the volume gets a trailing axis of length N (time, echo or frame type).

    Raises
    ------
    SeriesError
        When positions repeat unevenly (duplicates) and ``on_duplicate`` is ``"error"``.
    """
    policy = OnDuplicate(on_duplicate)
    first = records[0]
    folder = str(Path(first.path).parent)
    notes: list[RadpipeWarning] = []
    orientation = first.orientation
    if orientation is None:
        orientation = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
        notes.append(
            GeometryWarning(f"{folder}: no ImageOrientationPatient; axial orientation assumed")
        )
    normal = geometry.slice_normal(orientation)
    positions = np.array(
        [
            r.position if r.position is not None else (0.0, 0.0, float(i))
            for i, r in enumerate(records)
        ],
        dtype=np.float64,
    ).reshape(-1, 3)
    if first.position is None:
        notes.append(
            GeometryWarning(f"{folder}: no ImagePositionPatient; slices stacked 1 mm apart")
        )
    clusters = _cluster_positions(records, positions, normal)
    clusters, duplicate_warnings = _resolve_duplicates(clusters, policy, folder)
    notes.extend(DuplicateSliceWarning(text) for text in duplicate_warnings)
    time_points = len(clusters[0][1])

    first_positions = positions[[members[0] for _, members in clusters]]
    projections = np.array([projection for projection, _ in clusters])
    regular, spacing_warnings = _check_spacing(projections, folder)
    notes.extend(GeometryWarning(text) for text in spacing_warnings)

    if len(clusters) > 1:
        step = (first_positions[-1] - first_positions[0]) / (len(clusters) - 1)
    else:
        thickness = first.spacing_between_slices or first.slice_thickness or 1.0
        step = normal * thickness
    spacing = first.pixel_spacing
    if spacing is None:
        spacing = (1.0, 1.0)
        notes.append(GeometryWarning(f"{folder}: no PixelSpacing; 1 mm pixels assumed"))
    affine = geometry.affine_from_dicom(first_positions[0], orientation, spacing, step)
    tilt = geometry.shear_angle_deg(affine)
    if tilt > TILT_TOLERANCE_DEG:
        notes.append(
            GeometryWarning(
                f"{folder}: gantry tilt of {tilt:.2f} degrees; the affine is sheared "
                f"(pass resample_tilt=True / --resample-tilt for an orthogonal grid)"
            )
        )
    else:
        tilt = 0.0

    ordered: list[FrameRecord] = []
    destinations: list[tuple[int, ...]] = []
    for slice_index, (_, members) in enumerate(clusters):
        for time_index, member in enumerate(members):
            ordered.append(records[member])
            destinations.append((slice_index, time_index) if time_points > 1 else (slice_index,))

    layout = first.layout
    shape: tuple[int, ...] = (len(clusters), layout.rows, layout.columns)
    extra_axis = None
    if layout.channels > 1:
        shape = (*shape, layout.channels)
        extra_axis = "rgb"
        if time_points > 1:
            raise SeriesError(
                f"{folder}: colour series with {time_points} images per position are not "
                f"supported; pass one time point's files"
            )
    elif time_points > 1:
        shape = (*shape, time_points)
        extra_axis = "time"
    dtype, units, dtype_is_guess = _output_dtype(ordered)
    return SeriesPlan(
        key=key,
        records=ordered,
        destinations=destinations,
        shape=shape,
        dtype=dtype,
        dtype_is_guess=dtype_is_guess,
        affine=affine,
        units=units,
        slice_spacing_regular=regular,
        slice_positions_mm=tuple(float(v) for v in projections),
        gantry_tilt_deg=tilt,
        extra_axis=extra_axis,
        warnings=notes,
        skipped_files=skipped_files,
    )


def _cluster_positions(
    records: Sequence[FrameRecord], positions: NDArray[Any], normal: NDArray[Any]
) -> list[tuple[float, list[int]]]:
    """Group frame indices by their position along the normal; members sorted by temporal key.

    ``positions`` is one (N, 3) array: the projections are one product, not one per frame."""
    projections = positions @ np.asarray(normal, dtype=np.float64)
    order = np.argsort(projections, kind="stable")
    values = projections[order].tolist()
    clusters: list[tuple[float, list[int]]] = []
    for index, value in zip(order.tolist(), values, strict=True):
        if clusters and value - clusters[-1][0] <= POSITION_TOLERANCE_MM:
            clusters[-1][1].append(index)
        else:
            clusters.append((value, [index]))
    for _, members in clusters:
        members.sort(key=lambda i: (records[i].temporal_key, records[i].path, records[i].frame))
    return clusters


def _resolve_duplicates(
    clusters: list[tuple[float, list[int]]], policy: OnDuplicate, folder: str
) -> tuple[list[tuple[float, list[int]]], list[str]]:
    counts = {len(members) for _, members in clusters}
    if len(counts) == 1:
        return clusters, []
    repeated = [(value, members) for value, members in clusters if len(members) > 1]
    value, members = repeated[0]
    if policy is OnDuplicate.ERROR:
        raise SeriesError(
            f"{folder}: {len(repeated)} slice positions hold more than one image "
            f"(e.g. {len(members)} images at {value:.2f} mm along the normal); "
            f"pass on_duplicate='first' / --on-duplicate=first (or 'last') to keep one"
        )
    keep = 0 if policy is OnDuplicate.FIRST else -1
    dropped = sum(len(m) - 1 for _, m in repeated)
    warning = (
        f"{folder}: {dropped} duplicate images at {len(repeated)} slice positions dropped "
        f"(kept the {policy.value} by temporal order / InstanceNumber)"
    )
    return [(v, [m[keep]]) for v, m in clusters], [warning]


def _check_spacing(projections: NDArray[Any], folder: str) -> tuple[bool, list[str]]:
    """Report missing slices and uneven spacing, ignoring rounding noise."""
    if len(projections) < 3:
        return True, []
    gaps = np.diff(projections)
    typical = float(np.median(gaps))
    tolerance = max(POSITION_TOLERANCE_MM, SPACING_RELATIVE_TOLERANCE * typical)
    uneven = np.abs(gaps - typical) > tolerance
    if not uneven.any():
        return True, []
    ratios = gaps / typical
    missing = uneven & (np.abs(ratios - np.round(ratios)) * typical <= tolerance) & (ratios > 1.5)
    messages = []
    if missing.any():
        count = int(np.sum(np.round(ratios[missing]) - 1))
        where = int(np.argmax(missing))
        messages.append(
            f"{folder}: {count} slice(s) missing (a gap of {gaps[where]:.3f} mm after slice "
            f"{where} where the spacing is {typical:.3f} mm)"
        )
    if (uneven & ~missing).any():
        messages.append(
            f"{folder}: uneven slice spacing from {gaps.min():.3f} to {gaps.max():.3f} mm "
            f"(typical {typical:.3f} mm); the affine uses the mean spacing"
        )
    return False, messages


def _output_dtype(records: Sequence[FrameRecord]) -> tuple[np.dtype[Any], str | None, bool]:
    """CT in HU as int16 when rescale is integral; float32 otherwise; others as stored.

    Returns the dtype, the units and whether the dtype is a guess that decoding must check:
    16 stored bits with an intercept (e.g. −1024) could overflow int16 in theory but rarely
    do in practice, so int16 is tried first and the series is decoded again as int32 if a
    frame does not fit.
    """
    layout = records[0].layout
    units = "HU" if records[0].modality == "CT" and records[0].rescale_type in ("", "HU") else None
    stored = layout.stored_dtype.newbyteorder("=")
    if layout.photometric == "PALETTE COLOR":
        descriptor = header_of(records[0]).get("RedPaletteColorLookupTableDescriptor")
        bits = int(descriptor[2]) if descriptor else 16
        return np.dtype(np.uint8 if bits == 8 else np.uint16), None, False
    if layout.channels > 1:
        return (np.dtype(np.uint8) if layout.bits_allocated == 8 else stored), None, False
    if layout.float_pixels:  # parametric maps: IEEE values as stored, in their own units
        return stored, None, False
    pairs = {(record.slope, record.intercept) for record in records}
    if pairs == {(1.0, 0.0)}:
        return stored, units, False
    if all(float(s).is_integer() and float(i).is_integer() for s, i in pairs):
        low, high = layout.stored_range
        values = [v * s + i for s, i in pairs for v in (low, high)]
        int16 = np.iinfo(np.int16)
        if int16.min <= min(values) and max(values) <= int16.max:
            return np.dtype(np.int16), units, False
        if layout.bits_allocated <= 16:
            return np.dtype(np.int16), units, True
        return np.dtype(np.float64 if layout.bits_allocated > 16 else np.int32), units, False
    return np.dtype(np.float32), units, False


class _FrameOverflow(Exception):
    """A frame's values do not fit the guessed output type."""


def assemble(
    plan: SeriesPlan,
    *,
    resample_tilt: bool = False,
    irregular: OnIrregular | str = OnIrregular.RESAMPLE,
    progress: Progress | None = None,
) -> Volume:
    """Decode a planned series into one preallocated array, one thread per core.

    Parameters
    ----------
    plan : SeriesPlan
    resample_tilt : bool
        Resample a gantry-tilted series onto an orthogonal grid (linear, in-plane shifts).
    irregular : {"resample", "mean", "error"}
        Unevenly spaced or missing slices: resampled onto a regular grid through the true
        slice positions (linear between slices; default), kept with the mean spacing (slices
        then sit up to half a gap from their true place), or refused.
    progress : callable, optional
        Called with the number of frames done as they finish.

    Raises
    ------
    SeriesError
        For irregular spacing with ``irregular="error"``.
    """
    policy = OnIrregular(irregular)
    uneven = not plan.slice_spacing_regular and len(plan.slice_positions_mm) >= 3
    if uneven and policy is OnIrregular.ERROR:
        gaps = np.diff(plan.slice_positions_mm)
        raise SeriesError(
            f"{Path(plan.records[0].path).parent}: slice spacing is irregular ({gaps.min():.3f} "
            f"to {gaps.max():.3f} mm); pass irregular='resample' / --irregular resample to "
            "resample through the true positions, or 'mean' to keep the slices"
        )
    try:
        output = _decode_all(plan, plan.dtype, checked=plan.dtype_is_guess, progress=progress)
    except _FrameOverflow:
        output = _decode_all(plan, np.dtype(np.int32), checked=False, progress=None)
    volume = Volume(output, plan.affine, meta=plan.meta())
    resampled = resample_tilt and plan.gantry_tilt_deg > 0
    regridded = uneven and policy is OnIrregular.RESAMPLE and volume.array.ndim == 3
    for note in plan.warnings:
        if resampled and "gantry tilt of" in str(note):
            continue
        if regridded and "uneven slice spacing" in str(note):  # said by the resampling note
            continue
        warnings.warn(note, stacklevel=2)
    if regridded:
        volume = resample_irregular_slices(volume, plan)
    if resampled:
        volume = resample_sheared_slices(volume)
    return volume


def resample_irregular_slices(volume: Volume, plan: SeriesPlan) -> Volume:
    """Resample unevenly spaced slices onto a regular grid through their true positions.

    The new slices are the median gap apart, from the first slice's position to the last's;
    each is the linear blend of the two source slices around it, so every output plane lies
    where the headers put it (a missing slice is filled from its neighbours, and said so).
    """
    positions = np.asarray(plan.slice_positions_mm, dtype=np.float64)
    gaps = np.diff(positions)
    step = float(np.median(gaps))
    count = round((positions[-1] - positions[0]) / step) + 1
    targets = positions[0] + step * np.arange(count)
    targets[-1] = min(targets[-1], positions[-1])
    upper = np.clip(np.searchsorted(positions, targets, side="right"), 1, len(positions) - 1)
    lower = upper - 1
    weight = (targets - positions[lower]) / (positions[upper] - positions[lower])
    source = volume.array
    result = np.empty((count, *source.shape[1:]), dtype=source.dtype)
    integer = np.issubdtype(source.dtype, np.integer)
    for index in range(count):
        w = float(weight[index])
        blended = source[lower[index]] * (1.0 - w) + source[upper[index]] * w
        result[index] = np.rint(blended) if integer else blended
    affine = volume.affine.copy()
    span = positions[-1] - positions[0]
    first_to_last = volume.affine[:3, 0] * (len(positions) - 1)  # mean step × (n − 1)
    affine[:3, 0] = first_to_last / span * step
    folder = Path(plan.records[0].path).parent
    note = (
        f"irregular slice spacing {gaps.min():.3f}–{gaps.max():.3f} mm resampled onto a "
        f"regular {step:.3f} mm grid through the true slice positions (linear; "
        "--irregular mean keeps the slices, --irregular error refuses)"
    )
    warnings.warn(GeometryWarning(f"{folder}: {note}"), stacklevel=3)
    meta = volume.meta.replace(warnings=(*volume.meta.warnings, note), slice_spacing_regular=True)
    return Volume(result, affine, meta=meta)


def _decode_all(
    plan: SeriesPlan, dtype: np.dtype[Any], *, checked: bool, progress: Progress | None
) -> NDArray[Any]:
    # np.zeros, not np.empty: on Linux its pages arrive pre-zeroed and first writes through
    # buffered ufunc casts are several times faster than into fresh np.empty memory.
    output = np.zeros(plan.shape, dtype=dtype)
    by_file: dict[str, list[tuple[FrameRecord, tuple[int, ...]]]] = defaultdict(list)
    for record, destination in zip(plan.records, plan.destinations, strict=True):
        by_file[record.path].append((record, destination))

    def decode_one_file(path: str) -> int:
        items = by_file[path]
        if _reads_in_place(items[0][0], output):
            _read_frames_in_place(path, items, output, checked=checked)
            return len(items)
        frames = decode_file_frames(path, items[0][0].layout, [record.frame for record, _ in items])
        for (record, destination), values in zip(items, frames, strict=True):
            _store_frame(values, record, output, destination, checked=checked)
        return len(items)

    paths = list(by_file)
    workers = _worker_count(len(paths))
    if workers > 1 and _decoder_holds_the_gil(plan.records[0]) and len(paths) >= 4 * workers:
        _decode_in_processes(by_file, output, workers, checked=checked, progress=progress)
    elif workers == 1:
        for path in paths:
            done = decode_one_file(path)
            if progress is not None:
                progress(done)
    else:
        with ThreadPoolExecutor(workers) as pool:
            for done in pool.map(decode_one_file, paths):
                if progress is not None:
                    progress(done)
    return output


def _decoder_holds_the_gil(record: FrameRecord) -> bool:
    """Compressed frames decode in Python plugins that hold the GIL: use processes for them
    (not for JPEG 2000 through imagecodecs, which releases it: threads share the output)."""
    from radpipe.io.dicom.pixels import releases_the_gil

    layout = record.layout
    return (
        layout.pixel_offset is None
        and layout.transfer_syntax in DECODER_PACKAGES
        and not releases_the_gil(layout)
    )


def _decode_frames_job(job: tuple[str, PixelLayout, list[int]]) -> list[NDArray[Any]]:
    path, layout, frames = job
    return decode_file_frames(path, layout, frames)


def _decode_in_processes(
    by_file: dict[str, list[tuple[FrameRecord, tuple[int, ...]]]],
    output: NDArray[Any],
    workers: int,
    *,
    checked: bool,
    progress: Progress | None,
) -> None:
    """Decode compressed files in a process pool (fork where available) and store the frames."""
    from radpipe.parallel import process_pool

    jobs = [
        (path, items[0][0].layout, [record.frame for record, _ in items])
        for path, items in by_file.items()
    ]
    with process_pool(workers) as pool:
        for (path, _, _), frames in zip(
            jobs, pool.map(_decode_frames_job, jobs, chunksize=4), strict=True
        ):
            items = by_file[path]
            for (record, destination), values in zip(items, frames, strict=True):
                _store_frame(values, record, output, destination, checked=checked)
            if progress is not None:
                progress(len(items))


def _reads_in_place(record: FrameRecord, output: NDArray[Any]) -> bool:
    """Whether a frame's native bytes can be read straight into its slot of ``output``."""
    layout = record.layout
    if layout.pixel_offset is None or output.ndim != 3 or layout.photometric != "MONOCHROME2":
        return False
    if not np.issubdtype(output.dtype, np.integer):
        return False
    if layout.stored_dtype.itemsize != output.dtype.itemsize or not layout.stored_dtype.isnative:
        return False
    info = np.iinfo(output.dtype)
    return (
        float(record.slope).is_integer()
        and float(record.intercept).is_integer()
        and info.min <= record.intercept <= info.max
        and info.min <= record.slope <= info.max
    )


def _read_frames_in_place(
    path: str,
    items: Sequence[tuple[FrameRecord, tuple[int, ...]]],
    output: NDArray[Any],
    *,
    checked: bool,
) -> None:
    """Read native frames into their slots, then rescale there in the output's integer type.

    Integer rescale in place wraps modulo 2**bits, which gives the exact result whenever the
    result fits the output type; ``checked`` verifies that from each frame's stored range.
    """
    info = np.iinfo(output.dtype)
    handle: Any
    with open_source(path) as handle:
        for record, destination in items:
            layout = record.layout
            assert layout.pixel_offset is not None
            target = output[destination[0]]
            handle.seek(layout.pixel_offset + record.frame * target.nbytes)
            if handle.readinto(target) != target.nbytes:
                raise ReadError(
                    f"{path}: pixel data is truncated (frame {record.frame} needs "
                    f"{target.nbytes} bytes); the file is incomplete, copy it again from the source"
                )
            stored = target.view(layout.stored_dtype)
            if layout.signed and layout.bits_stored < layout.bits_allocated:
                shift = layout.bits_allocated - layout.bits_stored
                stored <<= shift
                stored >>= shift
            slope, intercept = int(record.slope), int(record.intercept)
            if checked:
                ends = (
                    int(stored.min()) * slope + intercept,
                    int(stored.max()) * slope + intercept,
                )
                if min(ends) < info.min or max(ends) > info.max:
                    raise _FrameOverflow
            if slope != 1:
                target *= slope
            if intercept != 0:
                target += intercept


def _store_frame(
    values: NDArray[Any],
    record: FrameRecord,
    output: NDArray[Any],
    destination: tuple[int, ...],
    *,
    checked: bool = False,
) -> None:
    """Write one decoded frame into its place, inverting MONOCHROME1 and applying rescale."""
    layout = record.layout
    if checked:
        info = np.iinfo(output.dtype)
        ends = (float(values.min()) * record.slope, float(values.max()) * record.slope)
        if min(ends) + record.intercept < info.min or max(ends) + record.intercept > info.max:
            raise _FrameOverflow
    target = (
        output[destination]
        if len(destination) == 1
        else output[destination[0], ..., destination[1]]
    )
    if layout.photometric == "MONOCHROME1":
        low, high = layout.stored_range
        values = (low + high) - values.astype(np.int64)
    slope, intercept = record.slope, record.intercept
    if slope == 1.0 and intercept == 0.0:
        np.copyto(target, values, casting="unsafe")
    elif np.issubdtype(output.dtype, np.integer):
        if slope == 1.0:
            np.add(values, np.int32(intercept), out=target, casting="unsafe")
        else:
            np.copyto(
                target, values.astype(np.int32) * int(slope) + int(intercept), casting="unsafe"
            )
    else:
        np.copyto(target, values * slope + intercept, casting="unsafe")


def resample_sheared_slices(volume: Volume) -> Volume:
    """Resample a sheared (gantry-tilted) volume onto an orthogonal grid.

    Each slice keeps its plane; its in-plane offset from the first slice is undone by linear
    interpolation, so the slice axis becomes the plane normal. Voxels shifted in from outside
    the field of view take the volume's minimum value.
    """
    from scipy import ndimage

    affine = volume.affine
    step = affine[:3, 0]
    col_axis, row_axis = affine[:3, 1], affine[:3, 2]
    normal = np.cross(row_axis, col_axis)
    normal /= np.linalg.norm(normal)
    along_normal = float(np.dot(step, normal))
    in_plane = step - along_normal * normal
    shift_rows = float(np.dot(in_plane, col_axis) / np.dot(col_axis, col_axis))
    shift_cols = float(np.dot(in_plane, row_axis) / np.dot(row_axis, row_axis))
    source = volume.array
    fill = float(source.min())
    result = np.empty(source.shape, dtype=source.dtype)
    for k in range(source.shape[0]):
        offset = [k * shift_rows, k * shift_cols] + [0.0] * (source.ndim - 3)
        ndimage.shift(source[k], offset, output=result[k], order=1, mode="constant", cval=fill)
    new_affine = affine.copy()
    new_affine[:3, 0] = normal * along_normal
    note = f"resampled from a {volume.meta.gantry_tilt_deg:.2f} degree gantry tilt"
    meta = volume.meta.replace(warnings=(*volume.meta.warnings, note))
    where = Path(volume.meta.source_files[0]).parent if volume.meta.source_files else "series"
    warnings.warn(GeometryWarning(f"{where}: {note}"), stacklevel=2)
    return Volume(result, new_affine, meta=meta)


def scan_series(
    path: str | Path,
    *,
    on_duplicate: OnDuplicate | str = OnDuplicate.ERROR,
    progress: Progress | None = None,
    on_total: Progress | None = None,
    collect_errors: bool = False,
) -> tuple[list[SeriesPlan], list[SkippedFile]]:
    """Find and plan every series under a file, folder or zip location from headers alone.

    The one DICOM pipeline behind ``load``, ``info`` and every command that reads a series:
    listing (zip-aware), one header pass, grouping into stacks, and planning with one duplicate
    policy (``on_duplicate``; a listing passes ``"first"`` and reports the duplicates as a
    warning of the plan).

    Parameters
    ----------
    progress : callable, optional
        Called with a count of files done.
    on_total : callable, optional
        Called with the number of files before their headers are read.
    collect_errors : bool
        Survey mode (``info``): unreadable files and series that cannot be planned come back
        as ``damaged`` SkippedFiles instead of stopping everything.

    Returns
    -------
    plans : list of SeriesPlan
    skipped : list of SkippedFile
    """
    files = list_files(path)
    if on_total is not None:
        on_total(len(files))
    records, skipped = scan_headers(files, progress=progress, collect_errors=collect_errors)
    if not records:
        if any(item.damaged or is_mosaic_skip(item) for item in skipped) and (
            collect_errors or any(is_mosaic_skip(item) for item in skipped)
        ):
            return [], skipped
        reasons = sorted({s.reason for s in skipped})
        raise ReadError(
            f"{path}: no DICOM images found in {len(files)} file(s)"
            + (f" (skipped: {', '.join(reasons)})" if reasons else "")
        )
    plans = []
    for key, stack in group_stacks(records).items():
        try:
            plans.append(
                plan_series(key, stack, on_duplicate=on_duplicate, skipped_files=len(skipped))
            )
        except RadpipeError as exc:
            if not collect_errors:
                raise
            skipped.append(SkippedFile(str(Path(stack[0].path).parent), str(exc), damaged=True))
    return plans, skipped


def choose_series(plans: Sequence[SeriesPlan], series: str | None, source: str) -> SeriesPlan:
    """Pick the series to load: the only one, or the one ``series`` names (UID or ``UID#n``)."""
    if series is not None:
        for plan in plans:
            if plan.key == series:
                return plan
        matches = [plan for plan in plans if plan.key.split("#")[0] == series]
        if len(matches) == 1:
            return matches[0]
        available = ", ".join(plan.key for plan in plans)
        raise SeriesError(f"{source}: no series {series!r}; available: {available}")
    if len(plans) > 1:
        listing = "; ".join(
            f"{plan.key} ({plan.header.get('Modality', '?')}, {plan.shape[0]} slices)"
            for plan in plans
        )
        raise SeriesError(
            f"{source}: holds {len(plans)} series, choose one with series=UID / --series UID: "
            f"{listing}"
        )
    return plans[0]


def read_series(
    path: str | Path,
    *,
    series: str | None = None,
    on_duplicate: OnDuplicate | str = OnDuplicate.ERROR,
    resample_tilt: bool = True,
    irregular: OnIrregular | str = OnIrregular.RESAMPLE,
    progress: Progress | None = None,
) -> Volume:
    """Load one DICOM series from a folder, a list of files' folder or a single file.

    Parameters
    ----------
    path : str or Path
        A folder (searched recursively) or a DICOM file (single- or multi-frame).
    series : str, optional
        SeriesInstanceUID (or ``UID#n``) to load when the folder holds several.
    on_duplicate : {"error", "first", "last"}
        What to do with images that share a slice position unevenly.
    resample_tilt : bool
        Resample a gantry-tilted series onto an orthogonal grid.

    Returns
    -------
    Volume
        (S, R, C) or (S, R, C, N); CT in HU.

    Examples
    --------
    >>> vol = read_series("study/CT")  # doctest: +SKIP
    """
    plans, skipped = scan_series(path, on_duplicate=on_duplicate)
    mosaics = [item.path for item in skipped if is_mosaic_skip(item)]
    if mosaics and (not plans or (series is not None and not _has_plan(plans, series))):
        from radpipe.io.dicom.mosaic import read_mosaic_series

        return read_mosaic_series(mosaics, series=series)
    plan = choose_series(plans, series, str(path))
    return assemble(plan, resample_tilt=resample_tilt, irregular=irregular, progress=progress)


def is_mosaic_skip(item: SkippedFile) -> bool:
    """Whether a skipped file is a Siemens mosaic (read by ``io.dicom.mosaic``)."""
    return item.reason.startswith("Siemens mosaic")


def _has_plan(plans: Sequence[SeriesPlan], series: str) -> bool:
    return any(plan.key == series or plan.key.split("#")[0] == series for plan in plans)
