"""Entry point of the ``radpipe`` command: builds the Typer app and turns errors into one line."""

from __future__ import annotations

import os
import sys
import warnings
from typing import TextIO

import typer

from radpipe.cli.analyze import analyze, masks_app
from radpipe.cli.convert import convert
from radpipe.cli.dataset import dataset_app, preprocess_command
from radpipe.cli.demo import demo
from radpipe.cli.export import export_app
from radpipe.cli.info import info
from radpipe.cli.models import evaluate_command, segment_command, train_command
from radpipe.cli.overlay import overlay, render
from radpipe.cli.pacs import pacs_app
from radpipe.cli.scan import catalog_app, deidentify, metadata, scan_command
from radpipe.cli.view import view

app = typer.Typer(
    name="radpipe",
    help="Medical images from scanner formats to deep-learning-ready data and back.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        from radpipe import __version__

        typer.echo(f"radpipe {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print the version."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Show the full traceback of an unexpected error."
    ),
) -> None:
    """Medical images from scanner formats to deep-learning-ready data and back."""
    if debug:
        os.environ["RADPIPE_DEBUG"] = "1"


app.command()(info)
app.command()(convert)
app.command()(demo)
app.command("scan")(scan_command)
app.command()(metadata)
app.command()(deidentify)
app.command()(overlay)
app.command()(render)
app.add_typer(catalog_app, name="catalog")
app.command()(analyze)
app.add_typer(masks_app, name="masks")
app.add_typer(export_app, name="export")
app.command("preprocess")(preprocess_command)
app.add_typer(dataset_app, name="dataset")
app.command()(view)
app.command("train")(train_command)
app.command("segment")(segment_command)
app.command("evaluate")(evaluate_command)
app.add_typer(pacs_app, name="pacs")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code.

    A radpipe error prints one line on stderr and gives 1; a usage error one line and 2;
    Ctrl-C gives 130.
    """
    from radpipe.errors import RadpipeError

    # Typer's own click: its usage error is the base class of the public BadParameter
    usage_error: type[Exception] = next(
        c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"
    )
    try:
        with warnings.catch_warnings():
            _route_warnings()
            result = app(args=argv, prog_name="radpipe", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except usage_error as exc:
        context = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and context is not None:
            print(context.get_help())  # `radpipe` or a command group alone: its help
            return 0
        command = context.command_path if context is not None else "radpipe"
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        print(f"radpipe: error: {_one_line(message)} (see `{command} -h`)", file=sys.stderr)
        return 2
    except typer.Abort:
        print("radpipe: interrupted", file=sys.stderr)
        return 130
    except typer.Exit as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except RadpipeError as exc:
        print(f"radpipe: error: {_one_line(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("radpipe: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an error radpipe did not foresee: one line unless --debug
        if os.environ.get("RADPIPE_DEBUG"):
            raise
        print(
            f"radpipe: internal error: {type(exc).__name__}: {_one_line(str(exc))[:300]} "
            "(run with --debug for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 1
    return 0


def _one_line(text: str) -> str:
    """A message on one line (a matrix or a library's multi-line text folded)."""
    return " ".join(text.split())


def _route_warnings() -> None:
    """Print each radpipe warning as one line on stderr; keep libraries' warnings quiet.

    Libraries' warnings (pydicom's VR checks, highdicom's name checks) can quote header values
    such as a patient's name, so they are shown only with ``RADPIPE_DEBUG=1``.
    """
    from radpipe.errors import RadpipeWarning

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        kind = "warning" if issubclass(category, RadpipeWarning) else category.__name__
        text = " ".join(str(message).split())
        print(f"radpipe: {kind}: {text}", file=sys.stderr)

    warnings.showwarning = show
    if not os.environ.get("RADPIPE_DEBUG"):
        warnings.simplefilter("ignore")
    warnings.simplefilter("always", RadpipeWarning)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
