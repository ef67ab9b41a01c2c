"""radpipe.parallel.run_map: sequences and iterators, in this process and in a pool."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from radpipe.errors import RadpipeError
from radpipe.parallel import run_map


def _mark(item: tuple[str, int]) -> tuple[int, int]:
    """Write a file per item (the test's witness that a worker reached it)."""
    folder, number = item
    Path(folder, f"{number}.done").write_text(str(os.getpid()))
    return number, os.getpid()


def _die(number: int) -> int:
    if number == 40:
        os._exit(3)
    return number


@pytest.mark.parametrize("workers", [1, 2])
def test_an_iterator_gives_the_results_of_the_list_in_order(tmp_path, workers):
    items = [(str(tmp_path), n) for n in range(1000)]
    from_list = [n for n, _ in run_map(_mark, items, workers=workers)]
    from_iterator = [n for n, _ in run_map(_mark, iter(items), workers=workers)]
    assert from_list == from_iterator == list(range(1000))


def test_workers_start_on_an_iterator_before_it_ends(tmp_path):
    """The scan's walk feeds the pool as it goes: the first items are described while the
    iterator still produces (it waits here until a worker has written item 0)."""
    witnessed = []

    def items():
        for number in range(200):
            if number == 100:
                deadline = time.monotonic() + 30
                while not (tmp_path / "0.done").exists():
                    assert time.monotonic() < deadline, "no worker started before the end"
                    time.sleep(0.01)
                witnessed.append(number)
            yield str(tmp_path), number

    results = list(run_map(_mark, items(), workers=2))
    assert witnessed == [100]
    assert [n for n, _ in results] == list(range(200))
    assert all(pid != os.getpid() for _, pid in results)


def test_a_dead_worker_on_an_iterator_is_one_clear_error():
    with pytest.raises(RadpipeError, match="worker process died"):
        list(run_map(_die, iter(range(100)), workers=2))
