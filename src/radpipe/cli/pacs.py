"""``radpipe pacs echo | find | get | move | send | listen``: DICOM networking with a PACS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from radpipe.cli.console import progress_bar, stdout
from radpipe.cli.options import SchedulerOption, WorkersOption

pacs_app = typer.Typer(
    help="Query, retrieve and send studies over DICOM networking.", no_args_is_help=True
)

Host = Annotated[str | None, typer.Option("--host", help="PACS host (or RADPIPE_PACS_HOST).")]
Port = Annotated[int | None, typer.Option("--port", help="PACS DICOM port (or RADPIPE_PACS_PORT).")]
Called = Annotated[
    str | None, typer.Option("--called-aet", help="The PACS's AE title (RADPIPE_PACS_CALLED_AET).")
]
Calling = Annotated[
    str | None, typer.Option("--calling-aet", help="radpipe's AE title (default RADPIPE).")
]
Profile = Annotated[
    str | None, typer.Option("--profile", help="Table of ~/.config/radpipe/pacs.toml to use.")
]
Web = Annotated[
    str | None,
    typer.Option("--dicomweb", help="DICOMweb root URL: QIDO-RS / WADO-RS / STOW-RS instead."),
]

#: Columns that identify a patient: pseudonymised or dropped unless --keep-phi.
IDENTIFYING = ("PatientName", "PatientBirthDate", "AccessionNumber")


def _peer(host: str | None, port: int | None, called: str | None, calling: str | None,
          profile: str | None) -> Any:  # fmt: skip
    from radpipe.pacs.peer import resolve_peer

    return resolve_peer(host, port, called, calling, profile=profile)


@pacs_app.command("echo")
def echo_command(
    host: Host = None, port: Port = None, called_aet: Called = None, calling_aet: Calling = None,
    profile: Profile = None,
) -> None:  # fmt: skip
    """C-ECHO: is the PACS there, and how long does a round trip take.

    Example:

    $ radpipe pacs echo --host pacs.local --port 4242 --called-aet ORTHANC
    """
    from radpipe.pacs.dimse import echo

    peer = _peer(host, port, called_aet, calling_aet, profile)
    stdout.print(f"{peer}: echo answered in {echo(peer) * 1000:.1f} ms")


def _shown(row: dict[str, str], keep_phi: bool, level: str) -> dict[str, str]:
    """The columns shown: with --keep-phi all; else only the level's query keys, less names,
    birth dates and accession numbers, and the patient ID as a pseudonym (a PACS may return
    more than was asked, such as referring physicians or institutions)."""
    from radpipe.pacs.dimse import RETURN_KEYS
    from radpipe.privacy import pseudonym

    if keep_phi:
        return row
    allowed = set(RETURN_KEYS.get(level.upper(), ())) - set(IDENTIFYING)
    shown = {k: v for k, v in row.items() if k in allowed}
    if "PatientID" in shown:
        shown["PatientID"] = pseudonym(shown["PatientID"])
    return shown


@pacs_app.command("find")
def find_command(
    level: Annotated[
        str, typer.Option("--level", help="patient, study, series or image.")
    ] = "study",
    patient_id: Annotated[str | None, typer.Option("--patient-id")] = None,
    study_uid: Annotated[str | None, typer.Option("--study-uid")] = None,
    series_uid: Annotated[str | None, typer.Option("--series-uid")] = None,
    modality: Annotated[str | None, typer.Option("--modality")] = None,
    study_date: Annotated[
        str | None, typer.Option("--study-date", help="YYYYMMDD or a range 20240101-20241231.")
    ] = None,
    accession: Annotated[str | None, typer.Option("--accession")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
    keep_phi: Annotated[
        bool, typer.Option("--keep-phi", help="Show names, IDs and accession numbers.")
    ] = False,
    host: Host = None, port: Port = None, called_aet: Called = None, calling_aet: Calling = None,
    profile: Profile = None, dicomweb: Web = None,
) -> None:  # fmt: skip
    """C-FIND (or QIDO-RS with --dicomweb): studies, series or patients matching the keys,
    pseudonymised unless --keep-phi.

    Example:

    $ radpipe pacs find --level series --modality CT --study-date 20240101-20241231

    $ radpipe pacs find --dicomweb http://pacs.local:8042/dicom-web --patient-id 12345
    """
    from rich.table import Table

    from radpipe.pacs import dicomweb as web
    from radpipe.pacs.dimse import find

    peer: Any = dicomweb or _peer(host, port, called_aet, calling_aet, profile)
    filters = {
        "PatientID": patient_id, "StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid,
        "StudyDate": study_date, "AccessionNumber": accession,
        ("Modality" if level.lower() in ("series", "image") else "ModalitiesInStudy"): modality,
    }  # fmt: skip
    given = {key: value for key, value in filters.items() if value}
    search = web.find if dicomweb else find
    rows = [_shown(row, keep_phi, level) for row in search(peer, level, **given)]
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    columns = list(dict.fromkeys(k for row in rows for k in row if k != "SpecificCharacterSet"))
    table = Table(title=f"{len(rows)} {level} match(es) on {peer}")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(row.get(column, "") for column in columns))
    stdout.print(table)


def _retrieve(kind: str, uid: str, out: Path, level: str, catalog: Path | None,
              run: Any) -> None:  # fmt: skip
    with progress_bar(f"Retrieving ({kind})") as (advance, set_total):
        result = run(progress=advance, on_total=set_total)
    _say_retrieved(uid, result, out, level)
    _add_to_catalog(out, catalog)


def _say_retrieved(uid: str, result: Any, out: Path, level: str) -> None:
    stdout.print(
        f"{uid}: {len(result.received)} instance(s) received into {out}, "
        f"{result.already_present} already there, {result.expected} in the {level}"
    )
    for problem in result.failed:
        stdout.print(f"[yellow]not stored:[/yellow] {problem}")


def _add_to_catalog(out: Path, catalog: Path | None) -> None:
    if catalog is not None:
        from radpipe.catalog.store import scan

        _, report = scan(out, catalog)
        stdout.print(f"catalog {catalog}: {report.series} series, {report.files} files")


@pacs_app.command("get")
def get_command(
    uids: Annotated[
        list[str], typer.Argument(help="Study (or with --level series, series) UID(s).")
    ],
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder to store the instances in.")],
    level: Annotated[str, typer.Option("--level", help="study or series.")] = "study",
    catalog: Annotated[
        Path | None, typer.Option("--catalog", help="Catalog to add the study to.")
    ] = None,
    host: Host = None, port: Port = None, called_aet: Called = None, calling_aet: Calling = None,
    profile: Profile = None, dicomweb: Web = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
) -> None:  # fmt: skip
    """C-GET (or WADO-RS with --dicomweb) a study or series; instances already in OUT are not
    fetched again. Several UIDs are retrieved in parallel (--workers, or --scheduler).

    Example:

    $ radpipe pacs get 1.2.840.113619.2.55.3 -o studies --catalog studies.sqlite

    $ radpipe pacs get $(cat study-uids.txt) -o studies --workers 4
    """
    from radpipe.errors import PacsError
    from radpipe.pacs import dicomweb as web
    from radpipe.pacs.dimse import get, get_many

    if dicomweb:
        for uid in uids:  # WADO-RS: one study after another
            _retrieve("WADO-RS", uid, out, level, catalog,
                      lambda *, uid=uid, **hooks: web.get(dicomweb, uid, out, level=level,
                                                          **hooks))  # fmt: skip
        return
    if len(uids) == 1:
        peer = _peer(host, port, called_aet, calling_aet, profile)
        _retrieve("C-GET", uids[0], out, level, catalog,
                  lambda **hooks: get(peer, uids[0], out, level=level, **hooks))  # fmt: skip
        return
    peer = _peer(host, port, called_aet, calling_aet, profile)
    failures = []
    for uid, result in get_many(peer, uids, out, level=level, workers=workers,
                                scheduler=scheduler):  # fmt: skip
        if isinstance(result, str):
            failures.append(f"{uid}: {result}")
        else:
            _say_retrieved(uid, result, out, level)
    _add_to_catalog(out, catalog)
    if failures:
        raise PacsError(
            f"{len(failures)} of {len(uids)} retrieval(s) failed — " + "; ".join(failures)
        )


@pacs_app.command("move")
def move_command(
    uid: Annotated[str, typer.Argument(help="Study (or with --level series, series) UID.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder to store the instances in.")],
    listen_port: Annotated[
        int, typer.Option("--listen-port", help="Port of radpipe's storage SCP for the move.")
    ] = 11113,
    move_aet: Annotated[
        str | None, typer.Option("--move-aet", help="Destination AE (default: --calling-aet).")
    ] = None,
    level: Annotated[str, typer.Option("--level", help="study or series.")] = "study",
    catalog: Annotated[Path | None, typer.Option("--catalog")] = None,
    host: Host = None, port: Port = None, called_aet: Called = None, calling_aet: Calling = None,
    profile: Profile = None,
) -> None:  # fmt: skip
    """C-MOVE a study or series to radpipe's own storage SCP (started for the transfer).

    Example:

    $ radpipe pacs move 1.2.840.113619.2.55.3 -o studies --listen-port 11113
    """
    from radpipe.pacs.dimse import move

    peer = _peer(host, port, called_aet, calling_aet, profile)
    _retrieve("C-MOVE", uid, out, level, catalog,
              lambda **hooks: move(peer, uid, out, level=level, listen_port=listen_port,
                                   destination_aet=move_aet, **hooks))  # fmt: skip


@pacs_app.command("send")
def send_command(
    paths: Annotated[list[Path], typer.Argument(help="DICOM files, folders or zip archives.")],
    host: Host = None, port: Port = None, called_aet: Called = None, calling_aet: Calling = None,
    profile: Profile = None, dicomweb: Web = None,
) -> None:  # fmt: skip
    """C-STORE (or STOW-RS with --dicomweb) files, folders or zips (a SEG or SR from radpipe
    included).

    Example:

    $ radpipe pacs send report/seg.dcm --host pacs.local --port 4242 --called-aet ORTHANC
    """
    from radpipe.pacs import dicomweb as web
    from radpipe.pacs.dimse import send

    peer: Any = dicomweb or _peer(host, port, called_aet, calling_aet, profile)
    store = web.send if dicomweb else send
    with progress_bar("Sending") as (advance, set_total):
        result = store(peer, paths, progress=advance, on_total=set_total)
    stdout.print(f"{peer}: {result.sent} instance(s) stored")
    for problem in result.failed:
        stdout.print(f"[yellow]not stored:[/yellow] {problem}")


@pacs_app.command("listen")
def listen_command(
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder to file incoming studies in.")],
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 11112,
    aet: Annotated[str, typer.Option("--aet", help="This node's AE title.")] = "RADPIPE",
    catalog: Annotated[
        Path | None, typer.Option("--catalog", help="Catalog kept up to date.")
    ] = None,
    analyze: Annotated[
        bool, typer.Option("--analyze", help="Analyse each completed study's masks.")
    ] = False,
    segment: Annotated[
        Path | None, typer.Option("--segment", help="Model folder: segment each study.")
    ] = None,
    results: Annotated[
        Path | None, typer.Option("--results", help="Folder for the hooks' outputs.")
    ] = None,
    settle: Annotated[
        float, typer.Option("--settle", help="Seconds without new instances before a hook runs.")
    ] = 5.0,
) -> None:
    """Run a storage SCP (a research node) that files incoming studies until Ctrl-C.

    Example:

    $ radpipe pacs listen --port 11112 -o incoming --segment liver-model --analyze
    """
    from radpipe.pacs.hooks import study_hook
    from radpipe.pacs.storage import StorageNode

    hook: Any = None
    if analyze or segment is not None or catalog is not None:
        if segment is not None:
            from radpipe.models.card import read_card

            read_card(segment)  # a bad model folder fails before listening
        chosen = results or out.resolve().with_name(out.resolve().name + "-results")
        hook = study_hook(results=chosen, model=segment, analyze=analyze, catalog=catalog)

    def stored(path: Path, dataset: Any) -> None:
        typer.echo(f"stored {path.relative_to(out)}", err=True)

    node = StorageNode(out, port=port, aet=aet, on_study=hook, on_stored=stored,
                       settle_seconds=settle)  # fmt: skip
    stdout.print(f"listening as {aet} on port {port}; filing into {out} (Ctrl-C stops)")
    with node:
        try:
            node.wait()
        except KeyboardInterrupt:
            stdout.print("stopping")
    for problem in node.problems:
        stdout.print(f"[yellow]study not processed:[/yellow] {problem}")
