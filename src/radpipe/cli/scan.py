"""``radpipe scan``, ``radpipe catalog query`` and ``radpipe metadata``: datasets as catalogs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from radpipe.cli.console import progress_bar, stdout
from radpipe.cli.options import SchedulerOption, WorkersOption, chosen_output, output_option

DEFAULT_CATALOG = Path("radpipe-catalog.sqlite")

catalog_app = typer.Typer(help="Query a catalog written by `radpipe scan`.", no_args_is_help=True)

CatalogOption = Annotated[
    Path, typer.Option("--catalog", help="SQLite catalog to create or update (also the cache).")
]
KeepPhiOption = Annotated[
    bool, typer.Option("--keep-phi", help="Keep real patient identifiers and dates.")
]


def _run_scan(
    root: Path,
    catalog: Path,
    *,
    workers: int | None,
    scheduler: str | None,
    keep_phi: bool,
    max_archive_bytes: int | None = None,
    max_members: int | None = None,
) -> Any:
    from radpipe.catalog.store import scan
    from radpipe.io.sources import ArchiveLimits

    defaults = ArchiveLimits()
    limits = ArchiveLimits(
        max_total_bytes=max_archive_bytes or defaults.max_total_bytes,
        max_members=max_members or defaults.max_members,
    )
    with progress_bar(f"Scanning {root.name}") as (advance, set_total):
        return scan(
            root,
            catalog,
            workers=workers,
            scheduler=scheduler,
            keep_phi=keep_phi,
            limits=limits,
            progress=advance,
            on_total=set_total,
        )


def scan_command(
    root: Annotated[Path, typer.Argument(help="Folder, zip archive or file to scan.")],
    catalog: CatalogOption = DEFAULT_CATALOG,
    as_json: Annotated[
        Path | None, typer.Option("--json", help="Also export the catalog as JSON.")
    ] = None,
    as_csv: Annotated[
        Path | None, typer.Option("--csv", help="Also export one CSV row per series.")
    ] = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    keep_phi: KeepPhiOption = False,
    max_archive_bytes: Annotated[
        int | None,
        typer.Option("--max-archive-bytes", min=1, help="Refuse zips expanding beyond this."),
    ] = None,
    max_members: Annotated[
        int | None, typer.Option("--max-members", min=1, help="Refuse zips with more members.")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace existing exports.")
    ] = False,
) -> None:
    """Scan ROOT (folders and zip archives, nested) into a catalog of patients and series.

    Example:

    $ radpipe scan /data/3Dircadb1 --catalog ircadb.sqlite
    """
    found, report = _run_scan(
        root,
        catalog,
        workers=workers,
        scheduler=scheduler,
        keep_phi=keep_phi,
        max_archive_bytes=max_archive_bytes,
        max_members=max_members,
    )
    with found:
        print_series(found.series(), title=f"{root} → {catalog}")
        cached = report.files - report.read
        stdout.print(
            f"{report.files} files ({report.read} read, {cached} from the cache, "
            f"{report.removed} gone), {report.series} series, {report.patients} patients, "
            f"{report.problems} problems in {report.seconds:.2f} s"
        )
        problems = found.problems()
        for location, reason in problems[:20]:
            stdout.print(f"[yellow]problem:[/yellow] {location}: {reason}")
        if len(problems) > 20:
            stdout.print(f"[yellow]… {len(problems) - 20} more problems in the catalog[/yellow]")
        if as_json is not None:
            found.write_json(as_json, overwrite=overwrite)
        if as_csv is not None:
            found.write_csv(as_csv, overwrite=overwrite)


def print_series(entries: list[Any], title: str) -> None:
    """Print catalog series as a table."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in (
        "patient",
        "role",
        "name",
        "mod",
        "format",
        "shape",
        "spacing mm",
        "layout",
        "files",
    ):
        table.add_column(column, overflow="fold")
    for entry in entries:
        shape = " × ".join(map(str, entry.shape)) if entry.shape else "-"
        spacing = " × ".join(f"{v:.3g}" for v in entry.spacing) if entry.spacing else "-"
        table.add_row(
            entry.patient, entry.role, entry.name or "-", entry.modality or "-", entry.format,
            shape, spacing, entry.layout, str(entry.files),
        )  # fmt: skip
    stdout.print(table)


@catalog_app.command("query")
def query(
    catalog: Annotated[Path, typer.Argument(help="Catalog file written by `radpipe scan`.")],
    modality: Annotated[str | None, typer.Option(help="e.g. CT, MR, SEG.")] = None,
    role: Annotated[
        str | None, typer.Option(help="image, mask, label, segmentation, contours.")
    ] = None,
    patient: Annotated[str | None, typer.Option(help="Patient pseudonym.")] = None,
    layout: Annotated[str | None, typer.Option(help="e.g. '3D-IRCADb', 'DICOM tree'.")] = None,
    max_slice_spacing: Annotated[
        float | None, typer.Option(help="Largest distance between slice centres, mm.")
    ] = None,
    min_slices: Annotated[int | None, typer.Option(help="Fewest slices.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the series of CATALOG that match every filter.

    Example:

    $ radpipe catalog query ircadb.sqlite --modality CT --role image --json
    """
    from radpipe.catalog.store import open_catalog

    with open_catalog(catalog) as found:
        entries = found.series(
            modality=modality,
            role=role,
            patient=patient,
            layout=layout,
            max_slice_spacing=max_slice_spacing,
            min_slices=min_slices,
        )
    if as_json:
        typer.echo(json.dumps([e.as_row() for e in entries], indent=2))
    else:
        print_series(entries, title=f"{catalog}: {len(entries)} series")


@catalog_app.command("problems")
def problems(
    catalog: Annotated[Path, typer.Argument(help="Catalog file written by `radpipe scan`.")],
) -> None:
    """List what could not be scanned, with the reason.

    Example:

    $ radpipe catalog problems ircadb.sqlite
    """
    from radpipe.catalog.store import open_catalog

    with open_catalog(catalog) as found:
        for location, reason in found.problems():
            typer.echo(f"{location}: {reason}")


def metadata(
    root: Annotated[Path, typer.Argument(help="Folder or archive to describe.")],
    out: Annotated[
        Path, typer.Option("-o", "--output", "--out", help="CSV, TSV or JSON table to write.")
    ],
    per_file: Annotated[bool, typer.Option("--per-file", help="One row per file.")] = False,
    fields: Annotated[
        str | None,
        typer.Option("--fields", help="Comma-separated columns or DICOM keywords (EchoTime, …)."),
    ] = None,
    catalog: CatalogOption = DEFAULT_CATALOG,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    keep_phi: KeepPhiOption = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace OUT if it exists.")
    ] = False,
) -> None:
    """Write a metadata table (one row per series or file) for ROOT.

    Example:

    $ radpipe metadata /data/3Dircadb1 --out metadata.csv
    """
    from radpipe.catalog.metadata import check_table_path, metadata_rows, write_table
    from radpipe.io.atomic import check_writable, guard_output

    check_table_path(out)
    guard_output(out, input_folders=[root])
    check_writable(out, overwrite=overwrite)
    found, _ = _run_scan(root, catalog, workers=workers, scheduler=scheduler, keep_phi=keep_phi)
    with found:
        chosen = [f.strip() for f in fields.split(",")] if fields else None
        rows = metadata_rows(found, per_file=per_file, fields=chosen, keep_phi=keep_phi)
    write_table(rows, out, overwrite=overwrite, input_folders=[root])
    stdout.print(f"wrote {out}: {len(rows)} rows")


def deidentify(
    source: Annotated[Path, typer.Argument(help="DICOM folder, file or zip archive.")],
    target: Annotated[
        Path | None, typer.Argument(help="Folder to create with the de-identified copy.")
    ] = None,
    output_flag: Annotated[Path | None, output_option("Folder for the de-identified copy")] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace TARGET if it exists.")
    ] = False,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Write a de-identified copy of SOURCE (PS3.15 basic profile; dates shifted; UIDs remapped).

    Example:

    $ radpipe deidentify hospital-export/ anonymised/
    """
    target = chosen_output(target, output_flag, "output folder")
    from radpipe.export.deidentify import deidentify_tree

    with progress_bar(f"De-identifying {source.name}") as (advance, _):
        report = deidentify_tree(source, target, overwrite=overwrite, progress=advance,
                                 workers=workers, scheduler=scheduler)  # fmt: skip
    stdout.print(
        f"wrote {report.written} de-identified DICOM files to {target}; "
        f"{len(report.skipped)} non-DICOM files not copied"
    )
    for location in report.burned_in:
        stdout.print(f"[yellow]check for burned-in text:[/yellow] {location}")
    for location, reason in report.problems:
        stdout.print(f"[yellow]problem:[/yellow] {location}: {reason}")
