"""Shared console helpers: Rich consoles and a progress bar for long reads."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console

stdout = Console(width=None if Console().is_terminal else 140)
stderr = Console(stderr=True)


@contextlib.contextmanager
def progress_bar(
    description: str, total: int | None = None
) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """Yield ``(advance, set_total)`` callbacks driving a transient progress bar on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
    ) as progress:
        task = progress.add_task(description, total=total)

        def advance(count: int) -> None:
            progress.advance(task, count)

        def set_total(count: int) -> None:
            progress.update(task, total=count)

        yield advance, set_total
