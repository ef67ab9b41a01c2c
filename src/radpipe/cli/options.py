"""Options that several commands share, declared once so they read and behave the same."""

from __future__ import annotations

from typing import Annotated

import typer

#: What to do with images that share a slice position (``radpipe.load``'s ``on_duplicate``).
OnDuplicate = Annotated[
    str,
    typer.Option("--on-duplicate", help="Images sharing a slice position: error, first or last."),
]
