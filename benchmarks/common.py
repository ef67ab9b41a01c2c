"""Shared helpers for radpipe's benchmarks: timing and printing ratios against peers."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[1] / "bench-output"


def best_time(function: Callable[[], object], *, repeats: int = 3) -> float:
    """Best wall-clock time in seconds over ``repeats`` runs (after one warm-up run)."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def report(title: str, ours: float, peers: dict[str, float]) -> None:
    """Print radpipe's time beside each peer's, with the ratio radpipe / peer."""
    print(f"\n{title}")
    print(f"  {'radpipe':<28} {ours:8.3f} s")
    for name, seconds in peers.items():
        print(f"  {name:<28} {seconds:8.3f} s   radpipe/peer = {ours / seconds:5.2f}x")


def median(values: list[float]) -> float:
    """Median of a list of timings."""
    return statistics.median(values)
