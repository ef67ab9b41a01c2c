"""Options that several commands share, declared once so they read and behave the same."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

#: What to do with images that share a slice position (``radpipe.load``'s ``on_duplicate``).
OnDuplicate = Annotated[
    str,
    typer.Option("--on-duplicate", help="Images sharing a slice position: error, first or last."),
]


#: Local worker processes of a per-patient / per-series / per-file command.
WorkersOption = Annotated[
    int | None,
    typer.Option("--workers", min=1, help="Local worker processes (default: all cores)."),
]

#: A Dask cluster to run a per-patient / per-series / per-file command on instead.
SchedulerOption = Annotated[
    str | None, typer.Option("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786.")
]


#: What to do with unevenly spaced or missing slices (``radpipe.load``'s ``irregular``).
Irregular = Annotated[
    str,
    typer.Option(
        "--irregular",
        help="Uneven or missing slices: resample (through the true positions), mean or error.",
    ),
]


def output_option(what: str) -> object:
    """The ``-o/--output`` option of a command whose output may also be given positionally."""
    return typer.Option("-o", "--output", help=f"{what} (or give it as the last argument).")


def chosen_output(positional: Path | None, option: Path | None, what: str) -> Path:
    """The output given either way (``radpipe convert IN OUT`` or ``-o OUT``).

    Raises
    ------
    typer.BadParameter
        If neither or two different outputs are given (a usage error: exit 2).
    """
    if positional is not None and option is not None and positional != option:
        raise typer.BadParameter(
            f"the {what} is given twice ({positional}, {option}); give it once",
            param_hint="-o/--output",
        )
    chosen = option if option is not None else positional
    if chosen is None:
        raise typer.BadParameter(f"give the {what}", param_hint="-o/--output")
    return chosen
