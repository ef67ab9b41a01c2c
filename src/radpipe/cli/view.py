"""``radpipe view``: the browser viewer on 127.0.0.1 with a random token."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from radpipe.cli.console import stdout


def listening_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A socket listening on ``host``:``port`` (a free port the OS picks when 0).

    Listening before the URL is printed means a browser opened on it at once waits in the
    backlog instead of being refused while the server starts.

    Raises
    ------
    RadpipeError
        When the port is taken or the host is not an address of this machine.
    """
    from radpipe.errors import RadpipeError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
    except OSError as exc:
        listener.close()
        reason = exc.strerror or str(exc)
        raise RadpipeError(
            f"cannot serve on {host}:{port or 'a free port'} ({reason}); choose another "
            "--port, or leave --port / --host out"
        ) from None
    return listener


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
    import importlib.util

    from radpipe._optional import import_optional
    from radpipe.viewer.sessions import build_session

    if importlib.util.find_spec("uvicorn") is None:
        import_optional("uvicorn", extra="viewer")  # says which extra to install
    listener = listening_socket(host, port or 0)  # checked before the scan is read
    chosen = listener.getsockname()[1]
    try:
        session = build_session(
            path, mask or [], heatmap, keep_phi=keep_phi, label_names=labels, background=True
        )
    except BaseException:
        listener.close()
        raise
    # the server's imports run while the scan loads
    uvicorn = import_optional("uvicorn", extra="viewer")
    from radpipe.viewer.app import create_app

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
        server = uvicorn.Server(uvicorn.Config(create_app(session), log_level="warning"))
        failed: list[BaseException] = []
        if session.pending is not None:

            def stop_on_error(done: Any) -> None:
                if done.exception() is not None:  # the scan could not be read: say so, stop
                    failed.append(done.exception())
                    server.should_exit = True

            session.pending.add_done_callback(stop_on_error)
        server.run(sockets=[listener])
        if failed:
            raise failed[0]
