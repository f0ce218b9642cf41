"""Shared helpers of the side-by-side benchmarks: timing with repeats and one formatted result line."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """Best wall time in seconds over `repeats` runs (the least disturbed by other load on the machine)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def report(name: str, unit: str, count: float, ours: float, peer: float, peer_name: str) -> None:
    """Prints throughput of ours and the peer and the ratio, in one aligned block."""
    print(f"{name}")
    print(f"  apexctl     : {count / ours:14,.0f} {unit}/s  ({ours * 1e3:9.1f} ms)")
    print(f"  {peer_name:<12}: {count / peer:14,.0f} {unit}/s  ({peer * 1e3:9.1f} ms)")
    print(f"  ratio       : {peer / ours:14.1f}x faster")
