"""Where a PACS is: host, port and AE titles, from the command line, ``RADPIPE_PACS_*``
environment variables or a profile file, in that order of precedence."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from radpipe.errors import PacsError

#: radpipe's own AE title unless told otherwise.
DEFAULT_CALLING_AET = "RADPIPE"
#: The profile read when ``RADPIPE_PACS_PROFILE`` does not name another.
DEFAULT_PROFILE = Path("~/.config/radpipe/pacs.toml")


@dataclass(frozen=True)
class Peer:
    """A DICOM network peer.

    Attributes
    ----------
    host, port : where its DICOM service listens
    called_aet : its AE title
    calling_aet : radpipe's AE title as the peer knows it
    """

    host: str
    port: int
    called_aet: str = "ANY-SCP"
    calling_aet: str = DEFAULT_CALLING_AET

    def __str__(self) -> str:
        return f"{self.called_aet}@{self.host}:{self.port}"


def _profile(name: str | None) -> dict[str, object]:
    path = Path(os.environ.get("RADPIPE_PACS_PROFILE", str(DEFAULT_PROFILE))).expanduser()
    if not path.is_file():
        return {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PacsError(f"{path}: cannot read the PACS profile ({exc})") from None
    table = document.get(name or "default", {})
    if not isinstance(table, dict):
        raise PacsError(f"{path}: [{name or 'default'}] must be a table of host, port, …")
    return table


def check_port(number: int, what: str = "--port") -> int:
    """``number`` if it is a TCP port (1 … 65535).

    Raises
    ------
    PacsError
        Otherwise.
    """
    if not 0 < int(number) < 65536:
        raise PacsError(f"{what} {number}: a port is 1 … 65535")
    return int(number)


def check_aet(value: str, what: str) -> str:
    """``value`` if it is a valid AE title.

    Raises
    ------
    PacsError
        Otherwise (empty, over 16 characters, not ASCII, or holding a backslash).
    """
    if not 0 < len(value) <= 16 or not value.isascii() or "\\" in value:
        raise PacsError(f"{what} {value!r}: an AE title is 1–16 ASCII characters without '\\'")
    return value


def resolve_peer(
    host: str | None = None,
    port: int | None = None,
    called_aet: str | None = None,
    calling_aet: str | None = None,
    *,
    profile: str | None = None,
) -> Peer:
    """The peer given explicitly, else by ``RADPIPE_PACS_HOST`` / ``_PORT`` / ``_CALLED_AET`` /
    ``_CALLING_AET``, else by the profile file's ``[default]`` (or ``[profile]``) table.

    Raises
    ------
    PacsError
        If no host or port is known, the port is not a number in 1 … 65535, or an AE title is
        not valid.
    """
    table = _profile(profile)

    def pick(given: object, variable: str, key: str) -> object:
        if given not in (None, ""):
            return given
        if os.environ.get(variable):
            return os.environ[variable]
        return table.get(key)

    chosen_host = pick(host, "RADPIPE_PACS_HOST", "host")
    chosen_port = pick(port, "RADPIPE_PACS_PORT", "port")
    if not chosen_host or chosen_port in (None, ""):
        raise PacsError(
            "no PACS given: pass --host and --port, set RADPIPE_PACS_HOST / RADPIPE_PACS_PORT, "
            f"or write them in {DEFAULT_PROFILE}"
        )
    try:
        number = int(str(chosen_port))
    except ValueError:
        raise PacsError(f"port {chosen_port!r} is not a number") from None
    check_port(number)
    return Peer(
        host=str(chosen_host),
        port=number,
        called_aet=check_aet(
            str(pick(called_aet, "RADPIPE_PACS_CALLED_AET", "called_aet") or "ANY-SCP"),
            "--called-aet",
        ),
        calling_aet=check_aet(
            str(
                pick(calling_aet, "RADPIPE_PACS_CALLING_AET", "calling_aet") or DEFAULT_CALLING_AET
            ),
            "--calling-aet",
        ),
    )
