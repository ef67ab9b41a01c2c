"""DICOM networking with pynetdicom: C-ECHO, C-FIND at patient / study / series / image level,
C-GET and C-MOVE that fetch only the instances not yet stored (resumable), and C-STORE of
files, folders and zip archives in the transfer syntaxes the peer accepts."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radpipe._optional import import_optional
from radpipe.errors import PacsError
from radpipe.pacs.peer import Peer
from radpipe.pacs.storage import Receiver, instance_path

LEVELS = ("patient", "study", "series", "image")

#: The attributes each query level asks the peer to return.
RETURN_KEYS = {
    "PATIENT": ("PatientID", "PatientName", "PatientBirthDate", "PatientSex",
                "NumberOfPatientRelatedStudies"),
    "STUDY": ("PatientID", "PatientName", "StudyInstanceUID", "StudyDate", "StudyTime",
              "StudyDescription", "AccessionNumber", "ModalitiesInStudy",
              "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"),
    "SERIES": ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "Modality", "SeriesNumber",
               "SeriesDescription", "NumberOfSeriesRelatedInstances"),
    "IMAGE": ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
              "SOPClassUID", "InstanceNumber"),
}  # fmt: skip

#: Statuses of a C-FIND / C-GET / C-MOVE response that mean "more to come".
PENDING = (0xFF00, 0xFF01)


def _pynetdicom() -> Any:
    module = import_optional("pynetdicom", extra="pacs")
    import logging

    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)  # its own log lines name patients
    return module


def _associate(ae: Any, peer: Peer, **options: Any) -> Any:
    """An established association, or a PacsError saying why there is none."""
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.called_aet, **options)
    if assoc.is_established:
        return assoc
    if assoc.is_rejected:
        raise PacsError(
            f"{peer} refused the association (rejected: check --called-aet {peer.called_aet!r} and "
            f"that the PACS knows radpipe's AE title {peer.calling_aet!r})"
        )
    if assoc.is_aborted and _reachable(peer):
        raise PacsError(f"{peer} aborted the association request")
    raise PacsError(
        f"cannot reach {peer.host}:{peer.port} (no DICOM service answered; check --host and "
        "--port, and that the PACS is running)"
    )


def _reachable(peer: Peer) -> bool:
    import socket

    try:
        with socket.create_connection((peer.host, peer.port), timeout=3):
            return True
    except OSError:
        return False


def _ae(peer: Peer) -> Any:
    pynetdicom = _pynetdicom()
    ae = pynetdicom.AE(ae_title=peer.calling_aet)
    ae.acse_timeout = 10
    ae.dimse_timeout = 60
    ae.network_timeout = 30
    ae.connection_timeout = 5
    return ae


def echo(peer: Peer) -> float:
    """C-ECHO round trip in seconds (association included).

    Raises
    ------
    PacsError
        If the peer cannot be reached, refuses, or answers with a failure status.
    """
    from pynetdicom.sop_class import Verification

    ae = _ae(peer)
    ae.add_requested_context(Verification)
    started = time.perf_counter()
    assoc = _associate(ae, peer)
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    if not status or status.Status != 0x0000:
        raise PacsError(f"{peer} answered the echo with status {_status_text(status)}")
    return time.perf_counter() - started


def _status_text(status: Any) -> str:
    return "none (connection lost)" if not status else f"0x{int(status.Status):04X}"


def _query(level: str, filters: dict[str, str]) -> Any:
    from pydicom.dataset import Dataset

    chosen = level.upper()
    if chosen not in RETURN_KEYS:
        raise PacsError(f"level {level!r}: use patient, study, series or image")
    query = Dataset()
    query.QueryRetrieveLevel = chosen
    for keyword in RETURN_KEYS[chosen]:
        setattr(query, keyword, "")
    for keyword, value in filters.items():
        if value not in (None, ""):
            setattr(query, keyword, value)
    return query


def find(peer: Peer, level: str = "study", **filters: str) -> list[dict[str, str]]:
    """C-FIND: every match at ``level`` as ``{keyword: value}`` (raw values: identifiers
    included; the CLI pseudonymises what it prints).

    ``filters`` are DICOM keywords (``PatientID``, ``StudyInstanceUID``, ``Modality``,
    ``StudyDate="20240101-20241231"``, ``AccessionNumber``; wildcards ``*`` and ``?``).

    Raises
    ------
    PacsError
        If the peer cannot be reached, refuses, or ends the query with a failure.
    """
    from pynetdicom.sop_class import (
        PatientRootQueryRetrieveInformationModelFind,
        StudyRootQueryRetrieveInformationModelFind,
    )

    model = (
        PatientRootQueryRetrieveInformationModelFind
        if level.lower() == "patient"
        else StudyRootQueryRetrieveInformationModelFind
    )
    query = _query(level, filters)
    ae = _ae(peer)
    ae.add_requested_context(model)
    assoc = _associate(ae, peer)
    found = []
    try:
        for status, identifier in assoc.send_c_find(query, model):
            if not status:
                raise PacsError(f"{peer} dropped the connection during the query")
            if status.Status in PENDING and identifier is not None:
                found.append({
                    element.keyword: str(element.value) for element in identifier
                    if element.keyword and element.keyword != "QueryRetrieveLevel"
                })  # fmt: skip
            elif status.Status not in (0x0000, *PENDING):
                raise PacsError(f"{peer} ended the query with status {_status_text(status)}")
    finally:
        if assoc.is_established:
            assoc.release()
    return found


@dataclass
class Retrieval:
    """What a C-GET / C-MOVE brought."""

    folder: Path
    expected: int
    already_present: int
    received: list[Path] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _instances(peer: Peer, uid: str, level: str) -> list[tuple[str, str, str]]:
    """(study, series, instance) UIDs of a study or series on the peer."""
    key = {"study": "StudyInstanceUID", "series": "SeriesInstanceUID"}.get(level.lower())
    if key is None:
        raise PacsError(f"level {level!r}: retrieve a study or a series")
    rows = find(peer, "image", **{key: uid})
    found = [
        (row.get("StudyInstanceUID", ""), row.get("SeriesInstanceUID", ""),
         row.get("SOPInstanceUID", ""))
        for row in rows if row.get("SOPInstanceUID")
    ]  # fmt: skip
    if not found:
        raise PacsError(f"{peer} holds no {level} {uid}; look it up with `radpipe pacs find`")
    return found


def _plan(
    peer: Peer, uid: str, level: str, folder: Path
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    instances = _instances(peer, uid, level)
    try:
        missing = [i for i in instances if not instance_path(folder, *i).is_file()]
    except ValueError as exc:
        raise PacsError(f"{peer} answered with {exc}; radpipe files instances by UID") from None
    return instances, missing


def _start(
    peer: Peer,
    uid: str,
    level: str,
    folder: Path,
    progress: Callable[[int], None] | None,
    on_total: Callable[[int], None] | None,
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]], Retrieval, Receiver]:
    """What a retrieval starts from: the instances, those missing, the result so far and the
    receiver that files (and counts) what arrives."""
    instances, missing = _plan(peer, uid, level, folder)
    result = Retrieval(folder, len(instances), len(instances) - len(missing))
    if on_total is not None:
        on_total(len(missing))
    receiver = Receiver(folder, on_stored=(lambda *_: progress(1)) if progress else None)
    return instances, missing, result, receiver


def _retrieval_identifiers(
    uid: str, level: str, instances: list[tuple[str, str, str]], missing: list[tuple[str, str, str]]
) -> Iterator[Any]:
    """One identifier for the whole study / series when nothing is stored yet, else one per
    missing instance (IMAGE level)."""
    from pydicom.dataset import Dataset

    if len(missing) == len(instances):
        query = Dataset()
        query.QueryRetrieveLevel = level.upper()
        setattr(query, "StudyInstanceUID" if level == "study" else "SeriesInstanceUID", uid)
        if level == "series":
            query.StudyInstanceUID = missing[0][0]
        yield query
        return
    for study, series, instance in missing:
        query = Dataset()
        query.QueryRetrieveLevel = "IMAGE"
        query.StudyInstanceUID, query.SeriesInstanceUID = study, series
        query.SOPInstanceUID = instance
        yield query


def _finish(result: Retrieval, receiver: Receiver, peer: Peer, problem: str | None) -> Retrieval:
    result.received = list(receiver.stored)
    result.failed = list(receiver.failed)
    short = result.expected - result.already_present - len(result.received)
    if problem is None and short > 0:
        problem = (
            f"{peer} delivered {len(result.received)} of the "
            f"{result.expected - result.already_present} missing instances ({short} failed"
            + (f"; here: {result.failed[0]}" if result.failed else " on the PACS side")
            + ")"
        )
    if problem is not None:
        have = result.already_present + len(result.received)
        raise PacsError(
            f"{problem}; {have} of {result.expected} instances are stored complete in "
            f"{result.folder} — run the same command again to fetch only the rest"
        )
    return result


def get(
    peer: Peer,
    uid: str,
    folder: str | Path,
    *,
    level: str = "study",
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> Retrieval:
    """C-GET a study or series into ``folder`` (``<study>/<series>/<instance>.dcm``), fetching
    only the instances not already there; each arrives whole (atomic rename).

    Raises
    ------
    PacsError
        Unreachable or refusing peer, an unknown UID, or a transfer that stops part way (what
        arrived is kept; a second call fetches the rest).
    """
    from pynetdicom import StoragePresentationContexts, build_role, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet

    target = Path(folder)
    instances, missing, result, receiver = _start(peer, uid, level, target, progress, on_total)
    if not missing:
        return result
    ae = _ae(peer)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    roles = []
    for context in StoragePresentationContexts[:127]:
        ae.add_requested_context(context.abstract_syntax, _all_syntaxes())
        roles.append(build_role(context.abstract_syntax, scp_role=True))
    assoc = _associate(ae, peer, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, receiver.handle)])
    problem = None
    try:
        for query in _retrieval_identifiers(uid, level.lower(), instances, missing):
            for status, _ in assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet):
                if not status:
                    problem = f"{peer} stopped the transfer (connection lost or aborted)"
                    break
                if status.Status not in (0x0000, 0xB000, *PENDING):
                    problem = f"{peer} ended the retrieval with status {_status_text(status)}"
            if problem:
                break
    finally:
        if assoc.is_established:
            assoc.release()
    return _finish(result, receiver, peer, problem)


def get_many(
    peer: Peer,
    uids: list[str],
    folder: str | Path,
    *,
    level: str = "study",
    workers: int | None = None,
    scheduler: str | None = None,
) -> Iterator[tuple[str, Retrieval | str]]:
    """C-GET several studies (or series) at once, one association per study, on local
    processes or a Dask cluster (``folder`` must then be shared by the workers).

    Parameters
    ----------
    peer : Peer
        The PACS.
    uids : list of str
        Study (or series) UIDs; one given twice is retrieved once.
    folder : str or Path
        Where instances are stored (``<study>/<series>/<instance>.dcm``).
    level : str
        ``study`` or ``series``.
    workers, scheduler
        Local processes (default: up to four), or a Dask scheduler address.

    Yields
    ------
    (uid, Retrieval or str)
        The retrieval, or what went wrong for a study that could not be retrieved (the others
        go on). Instances arrive whole, so a retried study fetches only what is missing.
    """
    from radpipe.parallel import run_map

    uids = list(dict.fromkeys(uids))  # a UID given twice is retrieved once
    jobs = [(peer, uid, str(Path(folder).resolve()), level) for uid in uids]
    chosen = workers if workers is not None else min(4, max(1, len(uids)))
    yield from zip(
        uids, run_map(_get_job, jobs, workers=chosen, scheduler=scheduler, chunksize=1),
        strict=True,
    )  # fmt: skip


def _get_job(job: tuple[Peer, str, str, str]) -> Retrieval | str:
    peer, uid, folder, level = job
    try:
        return get(peer, uid, folder, level=level)
    except PacsError as exc:
        return str(exc)


def move(
    peer: Peer,
    uid: str,
    folder: str | Path,
    *,
    level: str = "study",
    listen_port: int,
    destination_aet: str | None = None,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> Retrieval:
    """C-MOVE a study or series to radpipe's own storage SCP, started on ``listen_port`` for
    the transfer under ``destination_aet`` (default: radpipe's calling AE title, which the
    PACS must know with this machine's address and that port); resumable as :func:`get`.

    Raises
    ------
    PacsError
        As :func:`get`, and when the PACS does not know the destination.
    """
    from pynetdicom import AllStoragePresentationContexts, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove

    from radpipe.pacs.peer import check_aet, check_port

    target = Path(folder)
    destination = check_aet(destination_aet or peer.calling_aet, "--move-aet")
    check_port(listen_port, "--listen-port")
    instances, missing, result, receiver = _start(peer, uid, level, target, progress, on_total)
    if not missing:
        return result
    server_ae = _ae(Peer(peer.host, peer.port, peer.called_aet, destination))
    for context in AllStoragePresentationContexts:
        server_ae.add_supported_context(context.abstract_syntax, _all_syntaxes())
    try:
        server = server_ae.start_server(
            ("0.0.0.0", listen_port), block=False,
            evt_handlers=[(evt.EVT_C_STORE, receiver.handle)],
        )  # fmt: skip
    except OSError as exc:
        raise PacsError(f"cannot listen on port {listen_port} for the move ({exc})") from None
    problem = None
    try:
        ae = _ae(peer)
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
        assoc = _associate(ae, peer)
        try:
            for query in _retrieval_identifiers(uid, level.lower(), instances, missing):
                for status, _ in assoc.send_c_move(
                    query, destination, StudyRootQueryRetrieveInformationModelMove
                ):
                    if not status:
                        problem = f"{peer} stopped the transfer (connection lost or aborted)"
                        break
                    if status.Status == 0xA801:
                        problem = (
                            f"{peer} does not know the move destination {destination!r}; "
                            "register radpipe's AE title, host and --listen-port in the PACS"
                        )
                    elif status.Status not in (0x0000, 0xB000, *PENDING):
                        problem = f"{peer} ended the move with status {_status_text(status)}"
                if problem:
                    break
        finally:
            if assoc.is_established:
                assoc.release()
    finally:
        server.shutdown()
    return _finish(result, receiver, peer, problem)


def _all_syntaxes() -> list[str]:
    from pynetdicom import ALL_TRANSFER_SYNTAXES

    return list(ALL_TRANSFER_SYNTAXES)


@dataclass
class Sending:
    """What a C-STORE run sent."""

    sent: int = 0
    failed: list[str] = field(default_factory=list)


def dicom_files(sources: Iterable[str | Path]) -> list[str]:
    """DICOM files (zip members included) under files, folders and archives."""
    from radpipe.io.sources import check_location, list_locations

    found = []
    for source in sources:
        location = str(source)
        if check_location(location) == "file" and not location.lower().endswith(".zip"):
            found.append(location)
            continue
        if Path(location).is_dir() and not any(Path(location).iterdir()):
            continue  # an empty folder holds nothing to send
        found.extend(list_locations(location))
    return found


def read_instances(sources: Iterable[str | Path]) -> list[tuple[str, Any]]:
    """(location, dataset) of every DICOM instance under ``sources`` (files, folders, zips).

    Raises
    ------
    PacsError
        If there is none.
    """
    import pydicom

    from radpipe.io.sources import open_source

    chosen = list(sources)
    found = []
    for location in dicom_files(chosen):
        try:
            with open_source(location) as handle:
                dataset = pydicom.dcmread(handle)
        except (pydicom.errors.InvalidDicomError, OSError, ValueError):
            continue
        if "SOPClassUID" in dataset and "SOPInstanceUID" in dataset:
            found.append((location, dataset))
    if not found:
        raise PacsError(f"no DICOM instance found in {', '.join(str(s) for s in chosen)}")
    return found


def send(
    peer: Peer,
    sources: Iterable[str | Path],
    *,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> Sending:
    """C-STORE every DICOM file under ``sources``; a file whose own transfer syntax the peer
    does not accept goes uncompressed (Explicit VR Little Endian) when the peer takes that.

    Raises
    ------
    PacsError
        Unreachable or refusing peer, no DICOM file, or a connection lost part way.
    """
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    datasets = read_instances(sources)
    ae = _ae(peer)
    pairs: dict[str, set[str]] = {}
    for _, dataset in datasets:
        syntax = str(dataset.file_meta.get("TransferSyntaxUID", ImplicitVRLittleEndian))
        pairs.setdefault(str(dataset.SOPClassUID), set()).add(syntax)
    if len(pairs) > 128:
        raise PacsError(f"{len(pairs)} SOP classes in one send; send them in smaller groups")
    for sop_class, syntaxes in pairs.items():
        wanted = sorted(syntaxes | {ExplicitVRLittleEndian, ImplicitVRLittleEndian})
        ae.add_requested_context(sop_class, wanted[:16])
    if on_total is not None:
        on_total(len(datasets))
    assoc = _associate(ae, peer)
    result = Sending()
    try:
        accepted = {(c.abstract_syntax, c.transfer_syntax[0]) for c in assoc.accepted_contexts}
        for location, dataset in datasets:
            syntax = str(dataset.file_meta.get("TransferSyntaxUID", ImplicitVRLittleEndian))
            sop_class = str(dataset.SOPClassUID)
            if (sop_class, syntax) not in accepted and syntax not in (
                ExplicitVRLittleEndian,
                ImplicitVRLittleEndian,
            ):
                try:
                    dataset.decompress()
                except (RuntimeError, ValueError, NotImplementedError) as exc:
                    result.failed.append(f"{location}: cannot be decompressed for the peer ({exc})")
                    continue
            try:
                status = assoc.send_c_store(dataset)
            except (ValueError, AttributeError) as exc:  # no context the peer accepted for it
                result.failed.append(f"{location}: {exc}")
                continue
            if not status:
                raise PacsError(
                    f"{peer} dropped the connection after {result.sent} of {len(datasets)} "
                    "instances; send again (the PACS keeps what it received)"
                )
            if status.Status in (0x0000, 0xB000, 0xB007, 0xB006):
                result.sent += 1
            else:
                result.failed.append(f"{location}: status {_status_text(status)}")
            if progress is not None:
                progress(1)
    finally:
        if assoc.is_established:
            assoc.release()
    return result
