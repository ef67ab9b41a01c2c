"""``radpipe info PATH``: a table (or JSON) of the series found in a file or folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from radpipe.cli.console import progress_bar, stdout


def info(
    path: Annotated[
        Path, typer.Argument(help="DICOM file or folder, NIfTI, Analyze, MINC or NRRD file.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    headers_only: Annotated[
        bool, typer.Option("--headers-only", help="Skip decoding pixels (no value range; faster).")
    ] = False,
    keep_phi: Annotated[
        bool, typer.Option("--keep-phi", help="Show real patient IDs instead of pseudonyms.")
    ] = False,
) -> None:
    """Show the series in PATH: patient (pseudonymised), modality, shape, spacing, orientation.

    Example:

    $ radpipe info study/

    $ radpipe info study.zip --json
    """
    import sys

    from radpipe.errors import ReadError
    from radpipe.io.summary import survey_path

    with progress_bar(f"Reading {path.name}") as (advance, set_total):
        survey = survey_path(
            path, keep_phi=keep_phi, values=not headers_only, progress=advance, on_total=set_total
        )
    if not survey.series:
        where, reason = survey.problems[0]
        more = (
            f" (and {len(survey.problems) - 1} more problem(s))" if len(survey.problems) > 1 else ""
        )
        raise ReadError(f"{reason}{more}" if reason.startswith(where) else f"{where}: {reason}")
    if as_json:
        typer.echo(json.dumps([s.as_dict() for s in survey.series], indent=2))
        for where, reason in survey.problems:
            print(f"radpipe: warning: not listed: {_one_line(reason, where)}", file=sys.stderr)
        return
    print_table(survey.series, title=str(path))
    if survey.problems:
        from rich.table import Table

        table = Table(title="not listed", title_justify="left")
        table.add_column("file or series", overflow="fold")
        table.add_column("reason", overflow="fold")
        for where, reason in survey.problems:
            table.add_row(where, reason.removeprefix(f"{where}: "))
        stdout.print(table)


def _one_line(reason: str, where: str) -> str:
    text = " ".join(reason.split())
    return text if text.startswith(where) else f"{where}: {text}"


def print_table(summaries: list, title: str) -> None:  # type: ignore[type-arg]
    """Print series summaries as a Rich table, then their warnings."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in ("series", "patient", "mod", "shape", "spacing mm", "orient", "slices", "range"):
        table.add_column(column, overflow="fold")
    for s in summaries:
        spacing = " × ".join(f"{v:.4g}" for v in s.spacing_mm)
        regular = {True: "regular", False: "IRREGULAR", None: "-"}[s.slice_spacing_regular]
        if s.gantry_tilt_deg:
            regular += f", tilt {s.gantry_tilt_deg:.1f}°"
        value_range = (
            f"{s.value_min:g} … {s.value_max:g}{' ' + s.units if s.units else ''}"
            if s.value_min is not None
            else "-"
        )
        key = s.key if len(s.key) <= 28 else "…" + s.key[-27:]
        table.add_row(
            key,
            s.patient,
            s.modality or "-",
            " × ".join(map(str, s.shape)),
            spacing,
            s.orientation,
            regular,
            value_range,
        )
    stdout.print(table)
    skipped = max((s.skipped_files for s in summaries), default=0)
    if skipped:
        stdout.print(f"[dim]{skipped} non-image file(s) skipped[/dim]")
    for s in summaries:
        for warning in s.warnings:
            stdout.print(f"[yellow]warning:[/yellow] {warning}")
