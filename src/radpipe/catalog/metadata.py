"""Metadata tables from a catalog: one row per series (or per file) with the fields a study
needs, identifiers pseudonymised and dates given as day offsets per patient."""

from __future__ import annotations

import csv
import datetime
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from radpipe.catalog.entries import SeriesEntry
from radpipe.catalog.store import Catalog
from radpipe.errors import FormatError
from radpipe.io.atomic import atomic_path

#: Default columns of ``radpipe metadata``, in order.
DEFAULT_FIELDS = (
    "patient", "study_uid", "series_uid", "modality", "manufacturer", "model", "kvp",
    "slice_thickness_mm", "slice_spacing_mm", "spacing_row_mm", "spacing_column_mm", "slices",
    "rows", "columns",
    "contrast", "acquisition_day_offset", "window_center", "window_width", "body_part",
    "description", "role", "name", "files",
)  # fmt: skip
#: Extra columns available with ``--fields``.
OPTIONAL_FIELDS = ("orientation", "layout", "format", "location", "study_description", "sop_uid")


def _day_offsets(catalog: Catalog) -> dict[str, datetime.date]:
    first: dict[str, datetime.date] = {}
    for entry in catalog.series():
        date = _date(entry.facts.get("acquisition_date") or entry.facts.get("study_date"))
        if date is not None and (entry.patient not in first or date < first[entry.patient]):
            first[entry.patient] = date
    return first


def _date(value: Any) -> datetime.date | None:
    try:
        return datetime.datetime.strptime(str(value)[:8], "%Y%m%d").date() if value else None
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    """A header value as a number (the first of a multi-value), or None."""
    try:
        return float(str(value).split("\\")[0])
    except (TypeError, ValueError):
        return None


def _series_fields(entry: SeriesEntry, first: dict[str, datetime.date]) -> dict[str, Any]:
    facts = entry.facts
    shape = entry.shape or (None, None, None)
    spacing = entry.spacing or (None, None, None)
    date = _date(facts.get("acquisition_date") or facts.get("study_date"))
    offset = (date - first[entry.patient]).days if date and entry.patient in first else None
    return {
        "patient": entry.patient,
        "study_uid": entry.study_uid,
        "series_uid": entry.series_uid,
        "modality": entry.modality,
        "manufacturer": facts.get("manufacturer"),
        "model": facts.get("model"),
        "kvp": facts.get("kvp"),
        "slice_thickness_mm": _number(facts.get("slice_thickness")),
        "slice_spacing_mm": spacing[0],
        "spacing_row_mm": spacing[1],
        "spacing_column_mm": spacing[2],
        "slices": shape[0],
        "rows": shape[1] if len(shape) > 1 else None,
        "columns": shape[2] if len(shape) > 2 else None,
        "contrast": facts.get("contrast"),
        "acquisition_day_offset": offset,
        "window_center": facts.get("window_center"),
        "window_width": facts.get("window_width"),
        "body_part": facts.get("body_part"),
        "description": entry.description,
        "role": entry.role,
        "name": entry.name,
        "files": entry.files,
        "orientation": entry.orientation,
        "layout": entry.layout,
        "format": entry.format,
        "location": entry.first_location,
        "study_description": facts.get("study_description"),
        "sop_uid": facts.get("sop_uid"),
    }


def metadata_rows(
    catalog: Catalog,
    *,
    per_file: bool = False,
    fields: Sequence[str] | None = None,
    keep_phi: bool = False,
) -> list[dict[str, Any]]:
    """Rows of metadata, one per series (or per file of each series with ``per_file``).

    Parameters
    ----------
    fields : sequence of str, optional
        Column names (``DEFAULT_FIELDS`` by default, plus ``OPTIONAL_FIELDS``) or any DICOM
        keyword (``EchoTime``, ``ConvolutionKernel``, ``ContrastBolusAgent`` …), read from the
        series' first file (or each file with ``per_file``).
    keep_phi : bool
        Allow keywords that identify the patient (names, IDs, birth date, addresses). Without
        it they are refused; dates are shifted per patient as the catalog shifts them.

    Raises
    ------
    FormatError
        If a field is neither a column nor a DICOM keyword, or identifies the patient without
        ``keep_phi``.
    """
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    chosen = list(fields) if fields else list(DEFAULT_FIELDS)
    columns = DEFAULT_FIELDS + OPTIONAL_FIELDS
    keywords = [f for f in chosen if f not in columns]
    unknown = [f for f in keywords if tag_for_keyword(f) is None]
    if unknown:
        raise FormatError(
            f"unknown metadata field(s) {', '.join(unknown)}: not a column "
            f"({', '.join(columns)}) nor a DICOM keyword such as EchoTime"
        )
    identifying = [f for f in keywords if _identifies(f, dictionary_VR(tag_for_keyword(f) or 0))]
    if identifying and not keep_phi:
        raise FormatError(
            f"{', '.join(identifying)} identif{'ies' if len(identifying) == 1 else 'y'} the "
            "patient; add --keep-phi (and keep the table on this machine) to include "
            f"{'it' if len(identifying) == 1 else 'them'}"
        )
    first = _day_offsets(catalog)
    rows = []
    for entry in catalog.series():
        values = _series_fields(entry, first)
        locations = catalog.files(entry) if per_file else catalog.files(entry)[:1]
        for location in locations if (per_file or keywords) else [None]:
            row = {f: values[f] for f in chosen if f in values}
            if keywords and location is not None:
                row.update(_header_fields(location, keywords, keep_phi=keep_phi))
            row = {f: row.get(f) for f in chosen}
            if per_file:
                row["file"] = location
            rows.append(row)
    return rows


def _identifies(keyword: str, vr: str) -> bool:
    """Whether a DICOM attribute can identify the patient (de-identification profile or PN)."""
    from radpipe.export.deidentify import EMPTY, REMOVE

    return vr == "PN" or keyword in REMOVE or keyword in EMPTY


def _header_fields(location: str, keywords: Sequence[str], *, keep_phi: bool) -> dict[str, Any]:
    """The keywords' values in one file's header (dates shifted unless ``keep_phi``)."""
    from radpipe.errors import ReadError
    from radpipe.io.dicom.headers import open_dataset
    from radpipe.privacy import pseudonym_key, shift_days, shifted_date

    try:
        dataset, _ = open_dataset(location, stop_before_pixels=True)
    except ReadError:
        return {}
    days = 0 if keep_phi else shift_days(str(dataset.get("PatientID", "") or ""), pseudonym_key())
    found: dict[str, Any] = {}
    for keyword in keywords:
        element = dataset.get(keyword)
        if element is None or element == "":
            found[keyword] = None
            continue
        vr = dataset.data_element(keyword).VR
        if vr == "SQ":
            found[keyword] = f"{len(element)} item(s)"
        elif vr == "DA" and not keep_phi:
            found[keyword] = shifted_date(str(element), days)
        elif isinstance(element, bytes):
            found[keyword] = f"{len(element)} bytes"
        else:
            found[keyword] = (
                "\\".join(map(str, element)) if vr != "PN" and _multi(element) else (str(element))
            )
    return found


def _multi(value: Any) -> bool:
    return isinstance(value, list | tuple) or type(value).__name__ == "MultiValue"


def check_table_path(path: str | Path) -> Path:
    """``path`` if it ends in ``.csv``, ``.tsv`` or ``.json`` (checked before a long scan).

    Raises
    ------
    FormatError
        Otherwise.
    """
    from radpipe.errors import FormatError

    target = Path(path)
    if target.suffix.lower() not in (".csv", ".tsv", ".json"):
        raise FormatError(f"{target}: write the table as .csv, .tsv or .json")
    return target


def write_table(
    rows: list[dict[str, Any]],
    path: str | Path,
    *,
    overwrite: bool = False,
    input_folders: Sequence[str | Path] = (),
) -> Path:
    """Write rows as CSV (or JSON when the path ends in ``.json``), atomically.

    Raises
    ------
    FormatError
        If the path ends in neither ``.csv``, ``.tsv`` nor ``.json``.
    """
    target = check_table_path(path)
    columns = list(rows[0]) if rows else []
    with atomic_path(target, overwrite=overwrite, input_folders=input_folders) as temporary:
        if target.suffix.lower() == ".json":
            temporary.write_text(json.dumps(rows, indent=2, default=str))
        else:
            with open(temporary, "w", newline="") as handle:
                delimiter = "\t" if target.suffix.lower() == ".tsv" else ","
                writer = csv.DictWriter(handle, fieldnames=columns, delimiter=delimiter)
                writer.writeheader()
                writer.writerows(rows)
    return target
