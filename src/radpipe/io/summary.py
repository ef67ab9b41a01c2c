"""What is in a file or folder: one summary row per series (the data behind ``radpipe info``)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from radpipe.errors import RadpipeWarning
from radpipe.privacy import pseudonym
from radpipe.volume import Volume, VolumeMeta


@dataclass(frozen=True)
class SeriesSummary:
    """One series as ``radpipe info`` shows it. Patient is pseudonymised unless asked otherwise."""

    key: str
    patient: str
    modality: str | None
    description: str | None
    shape: tuple[int, ...]
    dtype: str
    spacing_mm: tuple[float, float, float]
    orientation: str
    slice_spacing_regular: bool | None
    gantry_tilt_deg: float
    units: str | None
    value_min: float | None
    value_max: float | None
    files: int
    skipped_files: int
    warnings: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return asdict(self)


def summarize_volume(
    volume: Volume, *, key: str | None = None, keep_phi: bool = False, values: bool = True
) -> SeriesSummary:
    """Summarise an in-memory volume (value range from its voxels when ``values``)."""
    meta = volume.meta
    return _summary(
        meta,
        key=key or meta.series_uid or (meta.source_files[0] if meta.source_files else "volume"),
        shape=volume.shape,
        dtype=str(volume.dtype),
        affine=volume.affine,
        keep_phi=keep_phi,
        value_range=(float(volume.array.min()), float(volume.array.max())) if values else None,
    )


def _summary(
    meta: VolumeMeta,
    *,
    key: str,
    shape: tuple[int, ...],
    dtype: str,
    affine: Any,
    keep_phi: bool,
    value_range: tuple[float, float] | None,
) -> SeriesSummary:
    from radpipe import geometry

    patient = meta.patient_id if keep_phi else pseudonym(meta.patient_id)
    spacing = geometry.spacing_of(affine)
    return SeriesSummary(
        key=key,
        patient=(patient or "") if meta.patient_id or not keep_phi else "",
        modality=meta.modality,
        description=meta.series_description,
        shape=tuple(int(n) for n in shape),
        dtype=dtype,
        spacing_mm=(round(spacing[0], 6), round(spacing[1], 6), round(spacing[2], 6)),
        orientation=geometry.orientation_code(affine),
        slice_spacing_regular=meta.slice_spacing_regular,
        gantry_tilt_deg=round(meta.gantry_tilt_deg, 3),
        units=meta.units,
        value_min=value_range[0] if value_range else None,
        value_max=value_range[1] if value_range else None,
        files=len(meta.source_files),
        skipped_files=meta.skipped_files,
        warnings=meta.warnings,
    )


@dataclass(frozen=True)
class Survey:
    """What ``info`` found under a path: the series it could read and the problems, each a
    (file or series folder, reason) pair."""

    series: list[SeriesSummary]
    problems: list[tuple[str, str]]


def summarize_path(
    path: str | Path,
    *,
    keep_phi: bool = False,
    values: bool = True,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> list[SeriesSummary]:
    """Summarise every series under a DICOM file or folder, or one volume file; the first
    problem raises (see :func:`survey_path` to list the readable series and the problems).

    Parameters
    ----------
    path : str or Path
    keep_phi : bool
        Show the real PatientID instead of a pseudonym.
    values : bool
        Decode the pixels to report each series' value range (slower); header facts only
        when False.
    progress : callable, optional
        Called with a count of files / frames done.
    on_total : callable, optional
        Called with the total count of work units before work starts and again when known.
    """
    return _survey(path, keep_phi=keep_phi, values=values, progress=progress,
                   on_total=on_total, collect=False).series  # fmt: skip


def survey_path(
    path: str | Path,
    *,
    keep_phi: bool = False,
    values: bool = True,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> Survey:
    """Every series under ``path`` that can be read, and a problem for each file or series
    that cannot (an unsupported colour series or one corrupt file hides nothing else).

    Raises
    ------
    ReadError
        If ``path`` does not exist, or nothing under it is DICOM or a volume file.
    """
    return _survey(path, keep_phi=keep_phi, values=values, progress=progress,
                   on_total=on_total, collect=True)  # fmt: skip


def _survey(
    path: str | Path,
    *,
    keep_phi: bool,
    values: bool,
    progress: Callable[[int], None] | None,
    on_total: Callable[[int], None] | None,
    collect: bool,
) -> Survey:
    from radpipe.errors import RadpipeError
    from radpipe.io import load, registry
    from radpipe.io.dicom.series import assemble, scan_series
    from radpipe.io.sources import check_location

    source = str(path)
    if check_location(source) == "file" and registry.format_of(source) is not None:
        volume = load(source)
        name = Path(source.split("::")[-1]).name
        return Survey([summarize_volume(volume, key=name, keep_phi=keep_phi, values=values)], [])
    plans, skipped = scan_series(
        source, on_duplicate="first", progress=progress, on_total=on_total,
        collect_errors=collect,
    )  # fmt: skip
    problems = [(item.path, item.reason) for item in skipped if item.damaged]
    mosaic_summaries = _mosaic_summaries(skipped, keep_phi=keep_phi, values=values,
                                         problems=problems, collect=collect)  # fmt: skip
    if values and on_total is not None:
        on_total(
            sum(plan.file_count for plan in plans)
            + len(skipped)
            + sum(len(plan.records) for plan in plans)
        )
    summaries = []
    for plan in plans:
        value_range = None
        if values:
            try:
                with warnings.catch_warnings():  # the summary carries the plan's warnings
                    warnings.simplefilter("ignore", RadpipeWarning)
                    volume = assemble(plan, progress=progress)
            except RadpipeError as exc:
                if not collect:
                    raise
                problems.append((plan.key, str(exc)))
                continue
            value_range = (float(np.min(volume.array)), float(np.max(volume.array)))
            del volume
        summaries.append(
            _summary(
                plan.meta(),
                key=plan.key,
                shape=plan.shape,
                dtype=str(plan.dtype),
                affine=plan.affine,
                keep_phi=keep_phi,
                value_range=value_range,
            )
        )
    return Survey(summaries + mosaic_summaries, problems)


def _mosaic_summaries(
    skipped: list[Any],
    *,
    keep_phi: bool,
    values: bool,
    problems: list[tuple[str, str]],
    collect: bool,
) -> list[SeriesSummary]:
    """Summaries of the Siemens mosaic series among the skipped files, one per folder."""
    from radpipe.errors import RadpipeError
    from radpipe.io.dicom.mosaic import read_mosaic_series
    from radpipe.io.dicom.series import is_mosaic_skip

    folders: dict[str, list[str]] = {}
    for item in skipped:
        if is_mosaic_skip(item):
            folders.setdefault(str(Path(item.path).parent), []).append(item.path)
    found = []
    for folder, files in folders.items():
        try:
            volume = read_mosaic_series(files)
        except RadpipeError as exc:
            if not collect:
                raise
            problems.append((folder, str(exc)))
            continue
        found.append(summarize_volume(volume, keep_phi=keep_phi, values=values))
    return found
