"""Folder trees and zip archives into catalog rows: what each file is (one header read, no
pixels), which layout it belongs to (generic DICOM, DICOMDIR, 3D-IRCADb, NIfTI pairs,
Sunnybrook), and the series, studies and patients they make up."""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import re
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import orjson

from radpipe.catalog.entries import SeriesEntry
from radpipe.errors import RadpipeError, ReadError
from radpipe.io import registry
from radpipe.io.dicom.headers import (
    FrameRecord,
    SkippedFile,
    frame_records,
    open_dataset,
    referenced_series,
)
from radpipe.io.sources import SEPARATOR, Source, local_copy, natural_key, read_bytes
from radpipe.privacy import pseudonym, pseudonym_key, shift_days, shifted_date

LABEL_NAME = re.compile(r"(_seg|_mask|_label|_labels|-seg|-label)(\.|$)", re.IGNORECASE)
LABEL_FOLDERS = {"labels", "labelstr", "labelsts", "masks", "segmentations", "seg"}
IGNORED_SUFFIXES = (".json", ".txt", ".md", ".csv", ".py", ".png", ".jpg", ".pdf", ".xml", ".html")


@dataclass
class FileEntry:
    """One scanned file: what it is and the facts the catalog keeps (never raw identifiers
    unless ``keep_phi``).

    Facts and frame records travel between processes and into SQLite as JSON text; the
    dictionaries are decoded only when something reads them.
    """

    location: str
    size: int
    mtime_ns: int
    kind: str
    problem: str | None = None
    facts_json: str = "{}"
    records_json: str = "[]"
    sop_uid: str | None = None
    frames: list[FrameRecord] | None = field(default=None, repr=False)
    _facts: dict[str, Any] | None = field(default=None, repr=False)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # a worker's result crosses to the parent as a plain tuple: a twentieth of the
        # dataclass's default pickling cost, which the parent pays for every scanned file
        return (
            _file_entry,
            (
                self.location,
                self.size,
                self.mtime_ns,
                self.kind,
                self.problem,
                self.facts_json if self._facts is None else _dumps(self._facts),
                self.records_json,
                self.sop_uid,
                None if self.frames is None else [record.fields() for record in self.frames],
            ),
        )

    @property
    def facts(self) -> dict[str, Any]:
        """The file's facts (decoded from JSON on first use)."""
        if self._facts is None:
            self._facts = orjson.loads(self.facts_json)
        return self._facts

    @facts.setter
    def facts(self, value: dict[str, Any]) -> None:
        self._facts = value

    def frame_records(self) -> list[FrameRecord]:
        """The file's frames as records (without parsed headers)."""
        if self.frames is None:
            self.frames = [FrameRecord.from_json(data) for data in orjson.loads(self.records_json)]
        return self.frames


def _dumps(value: Any) -> str:
    """JSON text of the facts and records the catalog caches: orjson, a ninth of the standard
    library's time (the records hold only finite numbers: the header readers refuse or drop
    the others, which orjson would write as null)."""
    return orjson.dumps(value).decode()


def _file_entry(*fields: Any) -> FileEntry:
    """A FileEntry from its pickled fields (see ``FileEntry.__reduce__``)."""
    location, size, mtime_ns, kind, problem, facts_json, records_json, sop_uid, frames = fields
    records = None if frames is None else [FrameRecord(*values) for values in frames]
    return FileEntry(
        location, size, mtime_ns, kind, problem, facts_json, records_json, sop_uid, records
    )


@dataclass
class DescribeOptions:
    """How files are described: keep identifiers or not, and the pseudonym key."""

    keep_phi: bool = False
    key: bytes = b""


def describe(job: tuple[Source, DescribeOptions]) -> FileEntry:
    """Describe one file (module-level so worker processes and Dask can run it)."""
    source, options = job
    with warnings.catch_warnings():
        # pydicom's value-format complaints (they can quote header values)
        warnings.filterwarnings("ignore", category=UserWarning, module="pydicom")
        return _describe(source, options)


def _describe(source: Source, options: DescribeOptions) -> FileEntry:
    entry = FileEntry(source.location, source.size, source.mtime_ns, kind="other")
    path = source.location.replace(SEPARATOR, "/")
    lower = path.rsplit("/", 1)[-1].lower()
    try:
        if registry.format_of(lower) is not None:
            entry.kind = "volume"
            entry.facts = _volume_facts(source.location)
        elif lower.endswith(".txt") and "contour" in path.rsplit("/", 1)[0].lower():
            entry.kind = "contour"
        elif lower == "link.csv":
            entry.kind = "link-table"
            entry.facts = {"rows": _read_link_table(source.location)}
        elif lower.endswith(IGNORED_SUFFIXES):
            entry.kind = "other"
        else:
            _describe_dicom(entry, options)
    except RadpipeError as exc:
        entry.kind, entry.problem = "problem", str(exc)
    if entry._facts is not None:
        entry.facts_json = _dumps(entry._facts)
        entry.sop_uid = entry._facts.get("sop_uid")
        entry._facts = None  # the JSON travels; the parent decodes only what it needs
    if entry.frames is not None:
        entry.records_json = _dumps([record.to_json() for record in entry.frames])
    return entry


def _describe_dicom(entry: FileEntry, options: DescribeOptions) -> None:
    result = frame_records(entry.location, file_size=entry.size)
    if isinstance(result, SkippedFile):
        if result.reason == "not DICOM":
            entry.kind = "other"
            return
        if result.reason == "DICOMDIR":
            entry.kind = "dicomdir"
            return
        if result.reason.startswith("Siemens mosaic"):
            dataset, _ = open_dataset(entry.location, stop_before_pixels=True)
            entry.kind = "dicom-mosaic"
            entry.facts = dicom_facts(dataset, options)
            return
        if result.reason.startswith(("DICOM SEG", "RT Structure Set")):
            dataset, _ = open_dataset(entry.location, stop_before_pixels=True)
            entry.kind = "dicom-seg" if result.reason.startswith("DICOM SEG") else "dicom-rtstruct"
            entry.facts = dicom_facts(dataset, options)
            return
        entry.kind, entry.problem = "unsupported", result.reason
        return
    entry.kind = "dicom-image"
    entry.facts = dicom_facts(result[0].header, options)
    entry.frames = [FrameRecord(*record.fields()) for record in result]  # without headers


def _text(dataset: Any, keyword: str) -> str | None:
    value = dataset.get(keyword)
    if value is None or value == "":
        return None
    if type(value) is str:  # the fast reader's values (stripped already but for edge cases)
        return value.strip()
    if not isinstance(value, str) and hasattr(value, "__iter__"):
        return "\\".join(str(v).strip() for v in value)
    return str(value).strip()


@functools.lru_cache(maxsize=4096)
def _pseudonym(patient_id: str | None, key: bytes) -> str:
    """``pseudonym`` once per patient and key in a process (a keyed hash per file otherwise)."""
    return pseudonym(patient_id, key=key)


@functools.lru_cache(maxsize=4096)
def _shift_days(patient_id: str | None, key: bytes) -> int:
    return shift_days(patient_id, key)


_shifted_date = functools.lru_cache(maxsize=4096)(shifted_date)


def dicom_facts(dataset: Any, options: DescribeOptions) -> dict[str, Any]:
    """The per-file facts a catalog keeps, with identifiers pseudonymised and dates shifted."""
    patient_id = _text(dataset, "PatientID")
    key = options.key
    days = 0 if options.keep_phi else _shift_days(patient_id, key)
    facts: dict[str, Any] = {
        "patient": patient_id if options.keep_phi else _pseudonym(patient_id, key),
        "study_uid": _text(dataset, "StudyInstanceUID"),
        "study_description": _text(dataset, "StudyDescription"),
        "study_date": _shifted_date(_text(dataset, "StudyDate"), days),
        "acquisition_date": _shifted_date(
            _text(dataset, "AcquisitionDate") or _text(dataset, "SeriesDate"), days
        ),
        "series_uid": _text(dataset, "SeriesInstanceUID"),
        "series_number": _text(dataset, "SeriesNumber"),
        "series_description": _text(dataset, "SeriesDescription"),
        "modality": _text(dataset, "Modality"),
        "manufacturer": _text(dataset, "Manufacturer"),
        "model": _text(dataset, "ManufacturerModelName"),
        "kvp": _text(dataset, "KVP"),
        "slice_thickness": _text(dataset, "SliceThickness"),
        "contrast": _text(dataset, "ContrastBolusAgent"),
        "body_part": _text(dataset, "BodyPartExamined"),
        "sop_uid": _text(dataset, "SOPInstanceUID"),
        "window_center": _text(dataset, "WindowCenter"),
        "window_width": _text(dataset, "WindowWidth"),
        "burned_in_annotation": _text(dataset, "BurnedInAnnotation"),
        "referenced_series": referenced_series(dataset),
    }
    if options.keep_phi:
        facts["patient_name"] = _text(dataset, "PatientName")
        facts["patient_birth_date"] = _text(dataset, "PatientBirthDate")
        facts["accession_number"] = _text(dataset, "AccessionNumber")
        facts["institution"] = _text(dataset, "InstitutionName")
    return facts


def _volume_facts(location: str) -> dict[str, Any]:
    """Shape, spacing and orientation of a NIfTI / NRRD / MINC file from its header alone."""
    import nibabel as nib

    from radpipe import geometry

    name = PurePosixPath(location.replace(SEPARATOR, "/")).name
    lower = name.lower()
    with local_copy(location) as path:
        try:
            if lower.endswith((".nrrd", ".nhdr")):
                import nrrd

                try:
                    header = nrrd.read_header(str(path))
                except StopIteration:  # pynrrd on an empty file
                    raise ReadError("an empty NRRD file") from None
                sizes = [int(v) for v in header["sizes"]][::-1]
                directions = header.get("space directions")
                rows = [] if directions is None else list(directions)
                spacing = [
                    float(np.linalg.norm(d))
                    for d in rows
                    if d is not None and np.all(np.isfinite(np.asarray(d, dtype=float)))
                ][::-1]
                return {"shape": sizes, "spacing": spacing or None, "orientation": None}
            if registry.format_of(lower) is registry.format_of("x.mha"):
                from radpipe.io.metaimage import read_geometry

                volume = read_geometry(path)
                return {
                    "shape": list(volume.shape),
                    "spacing": list(volume.spacing),
                    "orientation": volume.orientation_code,
                }
            image: Any = nib.load(str(path))
        except (OSError, ValueError, KeyError, nib.filebasedimages.ImageFileError) as exc:
            raise ReadError(f"{location}: cannot read the image header ({exc})") from exc
        shape = list(image.shape)[:3][::-1] + list(image.shape)[3:]
        affine = geometry.affine_from_ras_ijk(image.affine)
        return {
            "shape": shape,
            "spacing": list(geometry.spacing_of(affine)),
            "orientation": geometry.orientation_code(affine),
        }


def _is_contour_file(location: str) -> bool:
    parts = PurePosixPath(location.replace(SEPARATOR, "/")).parts
    return location.lower().endswith(".txt") and any("contour" in p.lower() for p in parts[:-1])


def _read_link_table(location: str) -> list[list[str]]:
    text = read_bytes(location).decode("utf-8", errors="replace")
    return [row for row in csv.reader(io.StringIO(text)) if row]


# --------------------------------------------------------------------------------------------
# Layouts


@dataclass(frozen=True)
class Placement:
    """Where a file sits in a recognised layout: layout name, role, series name, patient folder."""

    layout: str
    role: str
    name: str | None
    group: str | None


def _parts(location: str, root: str) -> list[str]:
    text = location.replace(SEPARATOR, "/")
    prefix = root.rstrip("/") + "/"
    if text.startswith(prefix):
        text = text[len(prefix) :]
    return [p for p in text.split("/") if p]


def placement(location: str, root: str) -> Placement:
    """Recognise the layout a file belongs to from its location under ``root``."""
    parts = _parts(location, root)
    folders: list[str] = []
    for part in parts[:-1]:
        name = part[:-4] if part.lower().endswith(".zip") else part
        if not folders or folders[-1] != name:  # X.zip holding X/ is one folder
            folders.append(name)
    upper = [p.upper() for p in folders]
    if "PATIENT_DICOM" in upper:
        index = upper.index("PATIENT_DICOM")
        return Placement("3D-IRCADb", "image", "patient", "/".join(folders[: index + 1]))
    if "MASKS_DICOM" in upper:
        index = upper.index("MASKS_DICOM")
        organ = folders[index + 1] if len(folders) > index + 1 else "mask"
        return Placement("3D-IRCADb", "mask", organ, "/".join(folders[: index + 2]))
    lower = [p.lower() for p in folders]
    if "contourfiles" in lower:
        index = lower.index("contourfiles")
        name = folders[-1] if len(folders) > index + 1 else "contours"
        return Placement("Sunnybrook", "contours", name, "/".join(folders))
    if "dicoms" in lower:
        return Placement("Sunnybrook", "image", None, None)
    return Placement("DICOM tree", "image", None, None)


def patient_folder(location: str, root: str) -> str:
    """The first folder under the root: the patient folder of most multi-patient layouts."""
    parts = _parts(location, root)
    if len(parts) > 1:
        first = parts[0]
        return first[:-4] if first.lower().endswith(".zip") else first
    return PurePosixPath(root).name


# --------------------------------------------------------------------------------------------
# Building series, studies and patients


@dataclass
class BuiltCatalog:
    """Series rows, the series key of every file, and the problems found while building."""

    series: list[SeriesEntry]
    file_series: dict[str, str]
    problems: list[tuple[str, str]]


def build_series(entries: list[FileEntry], root: str, *, keep_phi: bool) -> BuiltCatalog:
    """Group described files into series rows (DICOM stacks planned from headers only)."""
    from radpipe.io.dicom.series import group_stacks, plan_series

    key = b"" if keep_phi else pseudonym_key()
    rows: list[SeriesEntry] = []
    file_series: dict[str, str] = {}
    problems: list[tuple[str, str]] = [
        (e.location, e.problem) for e in entries if e.problem is not None
    ]
    entry_by_location = {e.location: e for e in entries}
    dicomdir_folders = [
        e.location.rsplit("/", 1)[0] for e in entries if e.kind == "dicomdir" and "/" in e.location
    ]

    places: dict[str, Placement] = {}

    def place_of(location: str) -> Placement:
        folder = location.rsplit("/", 1)[0]
        if folder not in places:
            places[folder] = placement(location, root)
        return places[folder]

    sop_seen: dict[str, str] = {}
    records: list[FrameRecord] = []
    for entry in entries:
        if entry.kind not in ("dicom-image", "dicom-seg", "dicom-rtstruct"):
            continue
        sop = entry.sop_uid
        if sop and sop in sop_seen:
            problems.append(
                (entry.location, f"duplicate SOPInstanceUID {sop} (also {sop_seen[sop]})")
            )
            continue
        if sop:
            sop_seen[sop] = entry.location
        if entry.kind != "dicom-image":
            continue
        place = place_of(entry.location)
        for record in entry.frame_records():
            if place.group is not None:
                record = dataclasses.replace(
                    record, split_key=(*record.split_key, f"folder={place.group}")
                )
            records.append(record)

    damaged: dict[str, list[str]] = {}
    for entry in entries:
        if entry.kind == "problem":
            damaged.setdefault(entry.location.rsplit("/", 1)[0], []).append(entry.location)
    for series_key, stack in group_stacks(records).items():
        first = stack[0]
        first_entry = entry_by_location.get(first.path)
        facts = dict(first_entry.facts) if first_entry is not None else {}
        unreadable = sorted(
            {name for folder in {r.path.rsplit("/", 1)[0] for r in stack}
             for name in damaged.get(folder, [])}
        )  # fmt: skip
        if unreadable:
            facts["damaged_files"] = unreadable
        place = placement(first.path, root)
        layout = place.layout
        if layout == "DICOM tree" and any(first.path.startswith(f + "/") for f in dicomdir_folders):
            layout = "DICOMDIR"
        try:
            plan = plan_series(series_key, stack, on_duplicate="first")
        except RadpipeError as exc:
            problems.append((first.path, str(exc)))
            continue
        spacing = [float(abs(v)) for v in _spacing(plan.affine)]
        rows.append(
            SeriesEntry(
                key=series_key,
                patient=facts.get("patient") or pseudonym(None, key=key),
                study_uid=facts.get("study_uid"),
                series_uid=first.series_uid,
                modality=facts.get("modality"),
                description=facts.get("series_description"),
                role=place.role,
                name=place.name,
                layout=layout,
                format="DICOM",
                shape=tuple(plan.shape),
                spacing=(spacing[0], spacing[1], spacing[2]),
                orientation=_orientation(plan.affine),
                slice_spacing_regular=plan.slice_spacing_regular,
                gantry_tilt_deg=plan.gantry_tilt_deg,
                files=plan.file_count,
                first_location=first.path,
                warnings=tuple(str(warning) for warning in plan.warnings)
                + (
                    (
                        f"{len(unreadable)} unreadable file(s) in the series folder "
                        f"(e.g. {unreadable[0]})",
                    )
                    if unreadable
                    else ()
                ),
                facts=facts,
            )
        )
        for record in stack:
            file_series[record.path] = series_key

    mosaics: dict[tuple[str, str], list[FileEntry]] = {}
    for entry in entries:  # Siemens mosaics: one series per SeriesInstanceUID and folder
        if entry.kind == "dicom-mosaic":
            folder = entry.location.rsplit("/", 1)[0]
            mosaics.setdefault((str(entry.facts.get("series_uid")), folder), []).append(entry)
    for (uid, _), members in mosaics.items():
        first_entry = min(members, key=lambda e: natural_key(e.location))
        facts = first_entry.facts
        series_key = f"{uid}:mosaic" if uid != "None" else f"{first_entry.location}:mosaic"
        place = placement(first_entry.location, root)
        rows.append(
            SeriesEntry(
                key=series_key,
                patient=facts.get("patient") or pseudonym(None, key=key),
                study_uid=facts.get("study_uid"),
                series_uid=None if uid == "None" else uid,
                modality=facts.get("modality"),
                description=facts.get("series_description"),
                role="image",
                name=place.name,
                layout=place.layout,
                format="DICOM mosaic",
                shape=None,
                spacing=None,
                orientation=None,
                slice_spacing_regular=None,
                gantry_tilt_deg=0.0,
                files=len(members),
                first_location=first_entry.location,
                facts=facts,
            )
        )
        for member in members:
            file_series[member.location] = series_key
    for entry in entries:
        if entry.kind in ("dicom-seg", "dicom-rtstruct") and entry.location not in file_series:
            if any(p[0] == entry.location for p in problems):
                continue
            facts = entry.facts
            role = "segmentation" if entry.kind == "dicom-seg" else "contours"
            series_key = f"{facts.get('series_uid') or entry.location}:{role}"
            used = {row.key for row in rows}
            if series_key in used:  # one SeriesInstanceUID, several objects (other geometry)
                number = 2
                while f"{series_key}#{number}" in used:
                    number += 1
                series_key = f"{series_key}#{number}"
            referenced = facts.get("referenced_series") or []
            rows.append(
                SeriesEntry(
                    key=series_key,
                    patient=facts.get("patient") or pseudonym(None, key=key),
                    study_uid=facts.get("study_uid"),
                    series_uid=facts.get("series_uid"),
                    modality=facts.get("modality"),
                    description=facts.get("series_description"),
                    role=role,
                    name=None,
                    layout="DICOM tree",
                    format="DICOM SEG" if entry.kind == "dicom-seg" else "RTSTRUCT",
                    shape=None,
                    spacing=None,
                    orientation=None,
                    slice_spacing_regular=None,
                    gantry_tilt_deg=0.0,
                    files=1,
                    first_location=entry.location,
                    linked=referenced[0] if referenced else None,
                    facts=facts,
                )
            )
            file_series[entry.location] = series_key

    dicom_patients = {
        patient_folder(row.first_location, root): row.patient
        for row in rows
        if row.format == "DICOM"
    }
    dicom_rows = [row for row in rows if row.format == "DICOM" and row.role == "image"]
    volume_rows = _volume_rows(entries, root, file_series, key, dicom_patients)
    for row in volume_rows:
        if row.role == "label" and row.linked is None:
            # a label map beside a DICOM series (the phantom's labels.nii.gz + CT/)
            folder = row.first_location.rsplit("/", 1)[0] + "/"
            beside = [r for r in dicom_rows if r.first_location.startswith(folder)]
            if len(beside) == 1:
                row.linked = beside[0].key
                row.patient = beside[0].patient  # the label map belongs to that series' patient
                row.layout = "image + label pairs"
    rows.extend(volume_rows)
    rows.extend(_contour_rows(entries, root, file_series, rows, key))
    rows.sort(key=lambda r: (r.patient, r.study_uid or "", natural_key(r.first_location)))
    return BuiltCatalog(rows, file_series, problems)


def _spacing(affine: Any) -> tuple[float, float, float]:
    from radpipe import geometry

    return geometry.spacing_of(affine)


def _orientation(affine: Any) -> str:
    from radpipe import geometry

    return geometry.orientation_code(affine)


def _volume_stem(location: str) -> str:
    return registry.strip_suffix(PurePosixPath(location.replace(SEPARATOR, "/")).name)


IMAGE_TOKENS = ("", "_image", "_img", "_ct", "_mr", "_0000", "_t1", "_volume")


def _volume_rows(
    entries: list[FileEntry],
    root: str,
    file_series: dict[str, str],
    key: bytes,
    dicom_patients: dict[str, str],
) -> list[SeriesEntry]:
    """Image and label files, labels paired with their image by name (``case_seg`` →
    ``case``, ``case_image``, ``case_0000`` …, or the same name in an image folder)."""
    volumes = [e for e in entries if e.kind == "volume"]
    images: dict[str, str] = {}
    for entry in volumes:
        if not _is_label_file(entry.location):
            images.setdefault(_volume_stem(entry.location).lower(), entry.location)
    linked_images: set[str] = set()
    links: dict[str, str | None] = {}
    for entry in volumes:
        if _is_label_file(entry.location):
            base = LABEL_NAME.sub("", _volume_stem(entry.location)).lower()
            match = next((images[base + t] for t in IMAGE_TOKENS if base + t in images), None)
            links[entry.location] = match
            if match:
                linked_images.add(match)
    rows = []
    for entry in volumes:
        is_label = _is_label_file(entry.location)
        stem = _volume_stem(entry.location)
        linked = links.get(entry.location)
        paired = linked is not None or entry.location in linked_images
        folder = patient_folder(entry.location, root)
        patient = dicom_patients.get(folder) or (pseudonym(folder, key=key) if key else folder)
        rows.append(
            SeriesEntry(
                key=entry.location,
                patient=patient,
                study_uid=None,
                series_uid=None,
                modality=None,
                description=stem,
                role="label" if is_label else "image",
                name=stem,
                layout="image + label pairs" if paired else "volume files",
                format=_format_of(entry.location),
                shape=entry.facts.get("shape"),
                spacing=entry.facts.get("spacing"),
                orientation=entry.facts.get("orientation"),
                slice_spacing_regular=True,
                gantry_tilt_deg=0.0,
                files=1,
                first_location=entry.location,
                linked=linked,
            )
        )
        file_series[entry.location] = entry.location
    return rows


LABEL_STEMS = {"label", "labels", "seg", "segmentation", "mask", "masks", "labelmap"}


def _is_label_file(location: str) -> bool:
    parts = PurePosixPath(location.replace(SEPARATOR, "/")).parts
    stem = _volume_stem(location)
    return (
        bool(LABEL_NAME.search(stem))
        or stem.lower() in LABEL_STEMS
        or any(p.lower() in LABEL_FOLDERS for p in parts[:-1])
    )


def _format_of(location: str) -> str:
    found = registry.format_of(location)
    return found.name if found is not None else "image file"


def _contour_rows(
    entries: list[FileEntry],
    root: str,
    file_series: dict[str, str],
    existing: list[SeriesEntry],
    key: bytes,
) -> list[SeriesEntry]:
    """Sunnybrook contour folders, linked to their DICOM patient through ``link.csv``."""
    groups: dict[str, list[FileEntry]] = defaultdict(list)
    for entry in entries:
        if entry.kind == "contour":
            groups[entry.location.rsplit("/", 1)[0]].append(entry)
    links: dict[str, str] = {}
    for entry in entries:
        if entry.kind == "link-table":
            for row in entry.facts.get("rows", []):
                if len(row) >= 2:
                    links[row[1].strip()] = row[0].strip()
    rows = []
    for folder, files in sorted(groups.items()):
        place = placement(files[0].location, root)
        parts = _parts(folder, root)
        contour_patient = next(
            (parts[i + 1] for i, p in enumerate(parts[:-1]) if p.lower() == "contourfiles"), None
        )
        dicom_folder = links.get(contour_patient or "")
        image = next(
            (
                r
                for r in existing
                if r.format == "DICOM" and dicom_folder and f"/{dicom_folder}/" in r.first_location
            ),
            None,
        )
        patient = image.patient if image else pseudonym(contour_patient, key=key)
        key_name = f"{folder}:contours"
        rows.append(
            SeriesEntry(
                key=key_name,
                patient=patient,
                study_uid=image.study_uid if image else None,
                series_uid=None,
                modality=None,
                description=PurePosixPath(folder).name,
                role="contours",
                name=place.name,
                layout="Sunnybrook",
                format="contour text",
                shape=None,
                spacing=None,
                orientation=None,
                slice_spacing_regular=None,
                gantry_tilt_deg=0.0,
                files=len(files),
                first_location=sorted((f.location for f in files), key=natural_key)[0],
                linked=image.key if image else None,
            )
        )
        for entry in files:
            file_series[entry.location] = key_name
    return rows


def count_kinds(entries: list[FileEntry]) -> dict[str, int]:
    """How many files of each kind were scanned."""
    return dict(Counter(e.kind for e in entries))
