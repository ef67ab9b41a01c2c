"""Whole-tree conversion, as dcm2niix users do it: every DICOM series under a folder or zip
becomes one NIfTI file named from a pattern, with a JSON sidecar of the acquisition facts under
BIDS key names (identifiers pseudonymised unless asked), series converted in parallel."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radpipe.errors import FormatError, RadpipeError

#: Default file name pattern; fields: patient, series_number, series_description, modality,
#: study_date, series_uid.
DEFAULT_PATTERN = "{patient}_{series_number}_{series_description}"

#: BIDS sidecar key → DICOM keyword (values as DICOM gives them; times converted to seconds).
BIDS_KEYS = (
    ("Modality", "Modality"),
    ("Manufacturer", "Manufacturer"),
    ("ManufacturersModelName", "ManufacturerModelName"),
    ("MagneticFieldStrength", "MagneticFieldStrength"),
    ("RepetitionTime", "RepetitionTime"),
    ("EchoTime", "EchoTime"),
    ("InversionTime", "InversionTime"),
    ("FlipAngle", "FlipAngle"),
    ("SliceThickness", "SliceThickness"),
    ("SpacingBetweenSlices", "SpacingBetweenSlices"),
    ("ImageType", "ImageType"),
    ("SeriesDescription", "SeriesDescription"),
    ("ProtocolName", "ProtocolName"),
    ("SeriesNumber", "SeriesNumber"),
    ("ScanningSequence", "ScanningSequence"),
    ("SequenceVariant", "SequenceVariant"),
    ("BodyPartExamined", "BodyPartExamined"),
    ("ConvolutionKernel", "ConvolutionKernel"),
    ("KVP", "KVP"),
    ("PixelBandwidth", "PixelBandwidth"),
)
#: Keys whose DICOM value is in milliseconds and BIDS wants in seconds.
MILLISECONDS = {"RepetitionTime", "EchoTime", "InversionTime"}


@dataclass
class TreeConversion:
    """What a whole-tree conversion wrote and what it could not convert."""

    written: list[Path] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


def safe_name(text: str) -> str:
    """A file name of letters, digits, ``.``, ``_`` and ``-`` only."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "series"
    return cleaned[:150]


def sidecar(header: Any, *, patient: str) -> dict[str, Any]:
    """The BIDS-style acquisition facts of a series' first header."""
    facts: dict[str, Any] = {}
    for key, keyword in BIDS_KEYS:
        value = header.get(keyword)
        if value is None or value == "":
            continue
        many = isinstance(value, list | tuple) or type(value).__name__ == "MultiValue"
        if keyword == "ImageType" or many:
            value = [str(v) for v in value] if many else [str(value)]
        else:
            try:
                value = float(value) if not isinstance(value, str) else value
            except (TypeError, ValueError):
                value = str(value)
            if isinstance(value, float) and value.is_integer() and keyword == "SeriesNumber":
                value = int(value)
        if key in MILLISECONDS and isinstance(value, float):
            value = value / 1000.0
        facts[key] = value
    facts["PatientID"] = patient
    facts["ConversionSoftware"] = "radpipe"
    return facts


def _convert_one(job: tuple[Any, str, dict[str, Any]]) -> tuple[str, str | None]:
    """Assemble one planned series and write its NIfTI and sidecar (runs in workers)."""
    import warnings

    from radpipe.io.dicom.series import assemble
    from radpipe.io.nifti import write_nifti

    plan, target, facts = job
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            volume = assemble(plan)
        write_nifti(volume, target)
        facts["SliceSpacingRegular"] = bool(volume.meta.slice_spacing_regular)
        Path(target[: -len(".nii.gz")] + ".json").write_text(json.dumps(facts, indent=2))
    except RadpipeError as exc:
        return target, str(exc)
    return target, None


def convert_tree(
    root: str | Path,
    folder: str | Path,
    *,
    pattern: str = DEFAULT_PATTERN,
    keep_phi: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> TreeConversion:
    """Convert every DICOM series under ``root`` (zips included) into ``folder``.

    Parameters
    ----------
    root : folder, zip archive or ``archive.zip::folder``
    folder : output folder (appears whole when everything is written)
    pattern : file name pattern; ``{patient}`` is a pseudonym unless ``keep_phi``
    workers, scheduler : local processes, or a Dask scheduler address
    progress : called with 1 per series converted

    Returns
    -------
    TreeConversion
        The NIfTI files written and, for each series or file that could not be converted, the
        reason (the run goes on).

    Raises
    ------
    FormatError
        For a pattern naming an unknown field.
    ReadError
        If ``root`` holds no DICOM image at all.
    """
    from radpipe.io.atomic import atomic_folder
    from radpipe.io.dicom.series import is_mosaic_skip, scan_series
    from radpipe.parallel import run_map
    from radpipe.privacy import pseudonym

    plans, skipped = scan_series(root, on_duplicate="first", collect_errors=True)
    result = TreeConversion(problems=[(s.path, s.reason) for s in skipped if s.damaged])
    unsupported: dict[tuple[str, str], int] = {}
    mosaics: dict[str, list[str]] = {}
    for item in skipped:  # images radpipe cannot assemble, counted per folder
        if is_mosaic_skip(item):
            mosaics.setdefault(str(Path(item.path).parent), []).append(item.path)
            continue
        if not item.damaged and item.reason not in ("not DICOM", "DICOMDIR", "no pixel data"):
            place = (str(Path(item.path.split("::")[-1]).parent), item.reason)
            unsupported[place] = unsupported.get(place, 0) + 1
    result.problems.extend(
        (folder, f"{count} file(s): {reason}") for (folder, reason), count in unsupported.items()
    )
    names: dict[str, int] = {}
    jobs = []
    target = Path(folder)
    with atomic_folder(
        target, overwrite=overwrite, input_folders=[str(root).split("::")[0]]
    ) as staging:
        for plan in plans:
            header = plan.header
            patient_id = str(header.get("PatientID", "") or "")
            fields = {
                "patient": patient_id if keep_phi else pseudonym(patient_id),
                "series_number": str(header.get("SeriesNumber", "") or "0"),
                "series_description": str(header.get("SeriesDescription", "") or "series"),
                "modality": str(header.get("Modality", "") or "OT"),
                "study_date": str(header.get("StudyDate", "") or "") if keep_phi else "",
                "series_uid": plan.key.replace("#", "-"),
            }
            try:
                stem = safe_name(pattern.format(**fields))
            except (KeyError, IndexError, ValueError) as exc:
                raise FormatError(
                    f"--name {pattern!r}: unknown field {exc}; use {', '.join(sorted(fields))}"
                ) from None
            names[stem] = names.get(stem, 0) + 1
            if names[stem] > 1:
                stem = f"{stem}_{names[stem]}"
            facts = sidecar(header, patient=fields["patient"])
            # headers stay here (a zip member's holds a closed buffer); workers re-read them
            travelling = dataclasses.replace(
                plan, records=[dataclasses.replace(r, header=None) for r in plan.records]
            )
            jobs.append((travelling, str(staging / f"{stem}.nii.gz"), facts))
        for folder_name, files in mosaics.items():  # Siemens mosaics, unpacked here
            from radpipe.io.dicom.mosaic import read_mosaic_series
            from radpipe.io.nifti import write_nifti

            try:
                volume = read_mosaic_series(files)
            except RadpipeError as exc:
                result.problems.append((folder_name, str(exc)))
                continue
            header = volume.meta.header
            patient_id = str(header.get("PatientID", "") or "")
            patient = patient_id if keep_phi else pseudonym(patient_id)
            stem = safe_name(pattern.format(
                patient=patient, series_number=str(header.get("SeriesNumber", "0")),
                series_description=str(header.get("SeriesDescription", "series")),
                modality=str(header.get("Modality", "MR")), study_date="",
                series_uid=str(header.get("SeriesInstanceUID", "")),
            ))  # fmt: skip
            names[stem] = names.get(stem, 0) + 1
            if names[stem] > 1:
                stem = f"{stem}_{names[stem]}"
            write_nifti(volume, staging / f"{stem}.nii.gz")
            facts = sidecar(header, patient=patient)
            if volume.meta.slice_timing_s:
                facts["SliceTiming"] = list(volume.meta.slice_timing_s)
            if volume.meta.phase_encoding_direction:
                facts["PhaseEncodingDirection"] = volume.meta.phase_encoding_direction
            (staging / f"{stem}.json").write_text(json.dumps(facts, indent=2))
            result.written.append(target / f"{stem}.nii.gz")
        for path, problem in run_map(_convert_one, jobs, workers=workers, scheduler=scheduler):
            name = Path(path).name
            if problem is None:
                result.written.append(target / name)
            else:
                result.problems.append((name, problem))
            if progress is not None:
                progress(1)
    return result
