"""Shared console helpers: Rich consoles and a progress bar for long reads."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

from rich.console import Console

stdout = Console(width=None if Console().is_terminal else 140)
stderr = Console(stderr=True)


#: Seconds between progress lines when stderr is not a terminal (logs, CI, pipes).
LOG_INTERVAL_S = 5.0


@contextlib.contextmanager
def progress_bar(
    description: str, total: int | None = None
) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """Yield ``(advance, set_total)`` callbacks: a transient Rich progress bar on a terminal,
    otherwise a ``radpipe: DESCRIPTION: N/M`` line on stderr every few seconds of a long step."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    on_terminal = stderr.is_terminal
    state = {"done": 0, "total": total, "last": time.monotonic()}
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
        disable=not on_terminal,
    ) as progress:
        task = progress.add_task(description, total=total)

        def advance(count: int) -> None:
            progress.advance(task, count)
            state["done"] = int(state["done"] or 0) + count
            now = time.monotonic()
            if not on_terminal and now - float(state["last"] or 0) >= LOG_INTERVAL_S:
                state["last"] = now
                of = f"/{state['total']}" if state["total"] else ""
                print(f"radpipe: {description}: {state['done']}{of}", file=sys.stderr, flush=True)

        def set_total(count: int) -> None:
            progress.update(task, total=count)
            state["total"] = count

        yield advance, set_total
