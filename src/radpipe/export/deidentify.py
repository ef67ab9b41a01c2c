"""De-identified copies of DICOM trees following the DICOM basic application-level
confidentiality profile (PS3.15 Annex E), with the options to retain longitudinal information
through shifted dates and to keep UIDs consistent through a keyed remapping."""

from __future__ import annotations

import hashlib
import hmac
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from radpipe.errors import ReadError
from radpipe.io.atomic import atomic_folder
from radpipe.io.sources import SEPARATOR, Source, natural_key, open_source, walk_sources
from radpipe.privacy import pseudonym, pseudonym_key, shift_days, shifted_date

#: Attributes the basic profile removes (X), by keyword.
REMOVE = frozenset(
    [
        "AccessionNumber",
        "AcquisitionComments",
        "AcquisitionContextSequence",
        "AcquisitionDeviceProcessingDescription",
        "ActualHumanPerformersSequence",
        "AdditionalPatientHistory",
        "AdmissionID",
        "AdmittingDiagnosesCodeSequence",
        "AdmittingDiagnosesDescription",
        "Allergies",
        "Arbitrary",
        "AuthorObserverSequence",
        "BranchOfService",
        "CommentsOnThePerformedProcedureStep",
        "ConsultingPhysicianName",
        "ContentCreatorName",
        "ContributionDescription",
        "CountryOfResidence",
        "CurrentPatientLocation",
        "CustodialOrganizationSequence",
        "DerivationDescription",
        "DeviceSerialNumber",
        "DischargeDiagnosisDescription",
        "EthnicGroup",
        "FrameComments",
        "GantryID",
        "GeneratorID",
        "HumanPerformerName",
        "IconImageSequence",
        "IdentifyingComments",
        "ImageComments",
        "ImagePresentationComments",
        "InstitutionAddress",
        "InstitutionalDepartmentName",
        "InstitutionName",
        "IssuerOfAdmissionID",
        "IssuerOfPatientID",
        "MedicalAlerts",
        "MedicalRecordLocator",
        "MilitaryRank",
        "ModifiedAttributesSequence",
        "NameOfPhysiciansReadingStudy",
        "Occupation",
        "OperatorsName",
        "OriginalAttributesSequence",
        "OtherPatientIDs",
        "OtherPatientIDsSequence",
        "OtherPatientNames",
        "PatientAddress",
        "PatientAge",
        "PatientBirthName",
        "PatientBirthTime",
        "PatientComments",
        "PatientInsurancePlanCodeSequence",
        "PatientMotherBirthName",
        "PatientReligiousPreference",
        "PatientSize",
        "PatientState",
        "PatientTelephoneNumbers",
        "PatientWeight",
        "PerformedLocation",
        "PerformedProcedureStepDescription",
        "PerformedProcedureStepID",
        "PerformingPhysicianName",
        "PerformingPhysicianIdentificationSequence",
        "PhysiciansOfRecord",
        "PhysiciansOfRecordIdentificationSequence",
        "PhysiciansReadingStudyIdentificationSequence",
        "ProtocolName",
        "ReasonForStudy",
        "ReferencedPatientAliasSequence",
        "ReferencedPatientSequence",
        "ReferringPhysicianAddress",
        "ReferringPhysicianIdentificationSequence",
        "ReferringPhysicianTelephoneNumbers",
        "RegionOfResidence",
        "RequestAttributesSequence",
        "RequestedContrastAgent",
        "RequestedProcedureComments",
        "RequestedProcedureDescription",
        "RequestedProcedureID",
        "RequestedProcedureLocation",
        "RequestingPhysician",
        "RequestingService",
        "ResultsComments",
        "ScheduledPerformingPhysicianName",
        "ScheduledProcedureStepDescription",
        "SeriesDescription",
        "ServiceEpisodeDescription",
        "ServiceEpisodeID",
        "SpecialNeeds",
        "StationName",
        "StudyComments",
        "StudyDescription",
        "TextComments",
        "TextString",
        "TopicAuthor",
        "TopicKeywords",
        "TopicSubject",
        "TopicTitle",
        "VisitComments",
    ]
)
#: Attributes the profile keeps present but empties (Z).
EMPTY = frozenset(
    ["ReferringPhysicianName", "StudyID", "PatientSex", "PatientBirthDate", "ContentCreatorName"]
)
#: UIDs that name classes or syntaxes, not instances: never remapped.
KEEP_UIDS = frozenset(
    [
        "SOPClassUID",
        "MediaStorageSOPClassUID",
        "TransferSyntaxUID",
        "ImplementationClassUID",
        "ReferencedSOPClassUID",
        "ReferencedSOPClassUIDInFile",
        "AffectedSOPClassUID",
        "CodingSchemeUID",
        "ContextGroupExtensionCreatorUID",
        "MappingResourceUID",
    ]
)
#: PS3.16 codes stating what was done (CID 7050).
METHOD_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
)


@dataclass
class DeidentifyReport:
    """What a de-identification wrote and what a person should still look at."""

    written: int = 0
    skipped: list[str] = field(default_factory=list)
    burned_in: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


def remap_uid(uid: str, key: bytes) -> str:
    """A new UID for ``uid``: ``2.25.`` + a keyed hash, the same for the same input and key."""
    digest = hmac.new(key, uid.encode(), hashlib.sha256).digest()[:16]
    return f"2.25.{int.from_bytes(digest, 'big')}"


def deidentify_dataset(dataset: Any, *, key: bytes) -> bool:
    """De-identify a pydicom Dataset in place.

    Parameters
    ----------
    dataset : pydicom.Dataset
    key : bytes
        Secret for pseudonyms, UID remapping and the per-patient date shift.

    Returns
    -------
    bool
        Whether the image may carry burned-in identifying text (BurnedInAnnotation YES, or
        an ultrasound / secondary capture / screen image) that a person must check.
    """
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    patient_id = str(dataset.get("PatientID", "") or "")
    days = shift_days(patient_id, key)
    burned_in = str(dataset.get("BurnedInAnnotation", "")).upper() == "YES" or str(
        dataset.get("Modality", "")
    ).upper() in ("US", "SC", "OT", "XC", "ES")

    def clean(item: Any) -> None:
        item.remove_private_tags()
        for element in list(item):
            keyword = element.keyword
            if keyword in REMOVE:
                del item[element.tag]
            elif keyword in EMPTY:
                element.value = ""
            elif element.VR == "SQ":
                for child in element.value:
                    clean(child)
            elif element.VR == "PN":
                element.value = ""
            elif element.VR == "UI" and keyword not in KEEP_UIDS and element.value:
                values = element.value if element.VM > 1 else [element.value]
                mapped = [remap_uid(str(v), key) for v in values]
                element.value = mapped if element.VM > 1 else mapped[0]
            elif element.VR == "DA" and element.value:
                element.value = shifted_date(str(element.value), days) or ""
            elif element.VR == "DT" and element.value:
                text = str(element.value)
                element.value = (shifted_date(text[:8], days) or "") + text[8:]

    clean(dataset)
    dataset.PatientID = pseudonym(patient_id, key=key)
    dataset.PatientName = dataset.PatientID
    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethod = "radpipe: PS3.15 basic profile, dates shifted, UIDs remapped"
    codes = []
    for value, meaning in METHOD_CODES:
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, "DCM", meaning
        codes.append(code)
    dataset.DeidentificationMethodCodeSequence = Sequence(codes)
    meta = getattr(dataset, "file_meta", None)
    if meta is not None and "MediaStorageSOPInstanceUID" in meta and "SOPInstanceUID" in dataset:
        meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    return burned_in


def _output_path(source: Source, root: Path) -> PurePosixPath:
    text = source.location
    prefix = str(root).rstrip("/") + "/"
    if text.startswith(prefix):
        text = text[len(prefix) :]
    elif text.startswith(str(root) + SEPARATOR):  # a member of the archive given as source
        text = root.name + text[len(str(root)) :]
    elif text == str(root):
        text = root.name
    parts: list[str] = []
    for piece in text.split(SEPARATOR):
        name = piece[:-4] if piece.lower().endswith(".zip") else piece
        parts.extend(p for p in name.split("/") if p and p != "..")
    return PurePosixPath(*parts)


def _identifiers(dataset: Any) -> list[str]:
    """The patient's ID and name parts (3 characters or more), as they may appear in folder
    and file names."""
    found = [str(dataset.get("PatientID", "") or "")]
    name = str(dataset.get("PatientName", "") or "")
    found.extend(part for part in name.replace("^", " ").replace(",", " ").split())
    return [value.lower() for value in found if len(value.strip()) >= 3]


def _scrubbed(path: PurePosixPath, identifiers: list[str], pseudonym_text: str) -> PurePosixPath:
    """``path`` with every component that holds a patient identifier replaced by the
    pseudonym (a file keeps its ending)."""
    parts = []
    for part in path.parts:
        if any(value in part.lower() for value in identifiers):
            suffix = "".join(PurePosixPath(part).suffixes[-1:]) if part == path.name else ""
            part = pseudonym_text + suffix
        parts.append(part)
    return PurePosixPath(*parts)


#: Ending of a file still being written by a worker (a killed worker's is swept, not published).
PARTIAL = ".radpipe-part"


def _deidentify_file(job: tuple[Source, str, str, bytes]) -> str:
    """De-identify one file into the temporary output folder: written, burned-in or skipped."""
    import os
    import tempfile

    import pydicom
    from pydicom.errors import InvalidDicomError

    item, root, temporary, secret = job
    try:
        with open_source(item.location) as handle, warnings.catch_warnings():
            # pydicom's value-format complaints (they can quote header values)
            warnings.filterwarnings("ignore", category=UserWarning, module="pydicom")
            dataset = pydicom.dcmread(handle)
    except (InvalidDicomError, ReadError, OSError, ValueError, EOFError):
        return "skipped"
    identifiers = _identifiers(dataset)
    burned_in = deidentify_dataset(dataset, key=secret)
    relative = _scrubbed(_output_path(item, Path(root)), identifiers, str(dataset.PatientID))
    output = Path(temporary) / relative
    output.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(
        prefix=f".{output.name}.", suffix=PARTIAL, dir=output.parent
    )
    os.close(descriptor)
    try:
        dataset.save_as(name, enforce_file_format=False)
        os.replace(name, output)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return "burned-in" if burned_in else "written"


def deidentify_tree(
    source: str | Path,
    target: str | Path,
    *,
    key: bytes | None = None,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
) -> DeidentifyReport:
    """Write a de-identified copy of every DICOM file under ``source`` into ``target``.

    Files are de-identified on local processes (``workers``, all cores by default) or a Dask
    cluster (``scheduler``; ``source`` and ``target``'s folder must then be shared paths).
    Each file is written to a temporary name and renamed, so a retried job replaces it.

    Zip archives are read in place and their members written as plain files (``a.zip`` →
    folder ``a``). Non-DICOM files are not copied (they may hold identifiers); they are
    listed in the report. The target folder appears only once everything is written.
    ``progress`` is called with 1 per file handled.
    """
    from radpipe.parallel import run_map

    root = Path(source)
    secret = key or pseudonym_key()
    report = DeidentifyReport()
    items = sorted(walk_sources(root), key=lambda item: natural_key(item.location))
    with atomic_folder(target, overwrite=overwrite, input_folders=[root]) as temporary:
        files = [item for item in items if isinstance(item, Source)]
        for item in items:
            if not isinstance(item, Source):
                report.problems.append((item.location, item.reason))
                if progress is not None:
                    progress(1)
        jobs = [(item, str(root), str(temporary), secret) for item in files]
        for item, outcome in zip(
            files, run_map(_deidentify_file, jobs, workers=workers, scheduler=scheduler),
            strict=True,
        ):  # fmt: skip
            if progress is not None:
                progress(1)
            if outcome == "skipped":
                report.skipped.append(item.location)
                continue
            if outcome == "burned-in":
                report.burned_in.append(item.location)
            report.written += 1
        for leftover in Path(temporary).rglob(f"*{PARTIAL}"):  # jobs of a lost worker, re-run
            leftover.unlink(missing_ok=True)
        if report.written == 0:
            raise ReadError(
                f"{source}: no DICOM file to de-identify ({len(report.skipped)} other file(s), "
                f"{len(report.problems)} problem(s)); nothing was written"
            )
    return report
