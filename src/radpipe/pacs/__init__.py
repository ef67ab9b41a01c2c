"""DICOM networking (``pip install 'radpipe[pacs]'``): query, retrieve and send studies with a
PACS over DIMSE (pynetdicom), and the storage SCP that files incoming studies."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from radpipe.pacs.dimse import Retrieval, Sending, echo, find, get, move, send
    from radpipe.pacs.peer import Peer, resolve_peer

__all__ = ["Peer", "Retrieval", "Sending", "echo", "find", "get", "move", "resolve_peer", "send"]


def __getattr__(name: str) -> Any:
    import importlib

    if name in ("Peer", "resolve_peer"):
        return getattr(importlib.import_module("radpipe.pacs.peer"), name)
    if name in __all__:
        return getattr(importlib.import_module("radpipe.pacs.dimse"), name)
    raise AttributeError(name)
