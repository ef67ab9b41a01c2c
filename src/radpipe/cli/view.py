"""``radpipe view``: the browser viewer on 127.0.0.1 with a random token."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Annotated

import typer

from radpipe.cli.console import stdout


def free_port(host: str = "127.0.0.1", port: int = 0) -> int:
    """``port`` if it is free on ``host`` (a free one the OS picks when 0).

    Raises
    ------
    RadpipeError
        When the port is taken or the host is not an address of this machine.
    """
    from radpipe.errors import RadpipeError

    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, port))
            return int(probe.getsockname()[1])
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise RadpipeError(
            f"cannot serve on {host}:{port or 'a free port'} ({reason}); choose another "
            "--port, or leave --port / --host out"
        ) from None


def view(
    path: Annotated[
        Path, typer.Argument(help="Scan (series folder, file, NIfTI) or a dataset root.")
    ],
    mask: Annotated[
        list[str] | None, typer.Option("--mask", help="NAME=FILE (repeatable).")
    ] = None,
    heatmap: Annotated[
        Path | None, typer.Option("--heatmap", help="3-D heatmap on the scan's grid.")
    ] = None,
    labels: Annotated[
        str | None, typer.Option("--labels", help="Names of label values, e.g. 1=liver,2=tumor.")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65535, help="Port (default: a free one).")
    ] = None,
    host: Annotated[
        str, typer.Option("--host", help="Interface; anything but 127.0.0.1 exposes the data.")
    ] = "127.0.0.1",
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Do not open a browser.")
    ] = False,
    keep_phi: Annotated[
        bool, typer.Option("--keep-phi", help="Show real patient identifiers.")
    ] = False,
) -> None:
    """Open the interactive three-pane viewer in the browser.

    Example:

    $ radpipe view study/CT --mask labels.nii.gz --labels 1=liver,2=tumor

    $ radpipe view /data/3Dircadb1
    """
    from radpipe._optional import import_optional
    from radpipe.viewer.app import create_app
    from radpipe.viewer.sessions import build_session

    uvicorn = import_optional("uvicorn", extra="viewer")
    chosen = free_port(host, port or 0)  # checked before the scan is read
    session = build_session(path, mask or [], heatmap, keep_phi=keep_phi, label_names=labels)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"radpipe: warning: serving on {host} exposes the images to the network",
            file=sys.stderr,
        )
    url = f"http://{host}:{chosen}/?token={session.token}"
    stdout.print(f"radpipe viewer at {url}  (Ctrl-C to stop)")
    if not no_browser:
        import webbrowser

        webbrowser.open(url)
    with session:  # its temporary catalog goes when the server stops, Ctrl-C included
        uvicorn.run(create_app(session), host=host, port=chosen, log_level="warning")
