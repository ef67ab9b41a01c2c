"""One way to run per-item work: in-process, a local process pool (default) or a Dask cluster."""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from radpipe._optional import import_optional
from radpipe.errors import RadpipeError

Item = TypeVar("Item")
Result = TypeVar("Result")


def default_workers() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


#: Set in every radpipe worker (pool process or Dask task): its own work runs in-process.
WORKER_MARK = "RADPIPE_IN_WORKER"


def in_worker() -> bool:
    """Whether this process is already one of radpipe's workers (a process-pool worker, or a
    Dask worker running a radpipe job): it must not start pools of its own (Dask's workers
    are daemons, which may not have children, and nested pools oversubscribe the cores)."""
    return os.environ.get(WORKER_MARK) == "1" or multiprocessing.current_process().daemon


def _die_with_parent() -> None:
    """In a worker: mark it as one, and ask Linux to kill it when its parent dies, so a
    killed command leaves no worker running on (elsewhere only the mark is set)."""
    import ctypes
    import signal
    import sys

    os.environ[WORKER_MARK] = "1"

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the request took effect
        os._exit(1)


@contextlib.contextmanager
def process_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """The one way radpipe makes a local process pool: fork where available (workers inherit
    what the parent already loaded), and workers that die with the command.

    Examples
    --------
    >>> with process_pool(2) as pool:
    ...     list(pool.map(abs, [-1, -2]))
    [1, 2]
    """
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_die_with_parent) as pool:
        yield pool


@contextlib.contextmanager
def work_folder(output: str | os.PathLike[str], scheduler: str | None) -> Iterator[str]:
    """A temporary folder for what workers read back (a catalog).

    Parameters
    ----------
    output : path
        The command's output; on a cluster the folder is made beside it, where the workers
        can reach it because they write ``output``.
    scheduler : str, optional
        A Dask scheduler address; None for local runs (the system's temporary folder).

    Yields
    ------
    str
        The folder, removed at the end either way.
    """
    import shutil
    import tempfile
    from pathlib import Path

    if scheduler is None:
        with tempfile.TemporaryDirectory(prefix="radpipe-") as work:
            yield work
        return
    from radpipe.io.atomic import remove_stale_temporaries, temporary_prefix

    target = Path(output).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)  # a killed earlier run's, as for every output temporary
    work = tempfile.mkdtemp(prefix=temporary_prefix(target) + "work-", dir=target.parent)
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_map(
    function: Callable[[Item], Result],
    items: Iterable[Item],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    chunksize: int | None = None,
) -> Iterator[Result]:
    """Apply ``function`` to every item and yield the results in item order.

    Parameters
    ----------
    function : callable
        A module-level function (it is pickled for worker processes).
    items : sequence or iterable
        A sequence, or an iterator that is consumed as it goes: local workers start on its
        first chunks while it still produces the rest (a folder walk feeding the pool).
    workers : int, optional
        Local processes; all cores by default, 1 runs in this process.
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://host:8786``) to run on a cluster instead; needs
        ``pip install 'radpipe[dask]'``.
    chunksize : int, optional
        Items sent to a worker at a time; chosen from the item count by default (for an
        iterator, whose count is not known, lists growing from 16 to this many, 512 by
        default).
    """
    if scheduler is not None:
        yield from _run_on_dask(function, list(items), scheduler, chunksize)
        return
    count = workers if workers is not None else default_workers()
    if in_worker():
        count = 1  # a worker itself: its pool or cluster is what spreads the work
    if not isinstance(items, Sequence):
        if count > 1:
            with process_pool(count) as pool:
                batches = pool.map(
                    _apply_all, itertools.repeat(function), _growing_batches(items, chunksize)
                )
                try:
                    for results in batches:
                        yield from results
                except BrokenProcessPool:
                    raise RadpipeError(_DIED) from None
            return
        items = list(items)  # in this process: the whole iterator first, as a pool takes it
    if count <= 1 or len(items) < 2:
        for item in items:  # not ``map``: a StopIteration raised by ``function`` must not end
            yield function(item)  # the run silently (here it becomes a RuntimeError)
        return
    count = min(count, len(items))
    size = chunksize or max(1, min(256, len(items) // (count * 4)))
    yield from _run_on_pool(function, items, count, size)


_DIED = (
    "a worker process died (killed, or out of memory); nothing was published — run again, "
    "with fewer --workers if memory is short"
)


def _run_on_pool(
    function: Callable[[Item], Result], items: Sequence[Item], count: int, chunksize: int
) -> Iterator[Result]:
    with process_pool(count) as pool:
        try:
            yield from pool.map(function, items, chunksize=chunksize)
        except BrokenProcessPool:
            raise RadpipeError(_DIED) from None


def _growing_batches(items: Iterable[Item], largest: int | None) -> Iterator[list[Item]]:
    """An iterator's items in lists of 16, 32, 64 … up to ``largest`` (512 by default): the
    pool's map submits each list as it is formed, so the workers start on the first items
    at once while the iterator produces the rest, and the later lists are long enough to
    keep the cost per item of the transfers low."""
    size, limit = 16, largest or 512
    batch: list[Item] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch, size = [], min(size * 2, limit)
    if batch:
        yield batch


def _apply_all(function: Callable[[Item], Result], batch: list[Item]) -> list[Result]:
    return [function(item) for item in batch]


def _chunk_apply(function: Callable[[Item], Result], chunk: Sequence[Item]) -> list[Result]:
    os.environ[WORKER_MARK] = "1"  # on a Dask worker: no pools of its own
    return [function(item) for item in chunk]


def _run_on_dask(
    function: Callable[[Item], Result], items: Sequence[Item], scheduler: str, chunksize: int | None
) -> Iterator[Result]:
    distributed = import_optional("dask.distributed", extra="dask")
    size = chunksize or max(1, len(items) // 64 or 1)
    chunks = [items[start : start + size] for start in range(0, len(items), size)]
    try:
        client = distributed.Client(scheduler, timeout=20)
    except (OSError, TimeoutError, ValueError) as exc:
        raise RadpipeError(
            f"cannot reach the Dask scheduler at {scheduler} ({exc}); start one (`dask "
            "scheduler`, or a dask-jobqueue cluster) and give its tcp://HOST:PORT address"
        ) from None
    with client:
        futures = client.map(_chunk_apply, [function] * len(chunks), chunks, pure=False)
        for future in futures:
            yield from future.result()
