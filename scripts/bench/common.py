"""Shared helpers of the side-by-side benchmarks: the options they share, timing, one formatted result line."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import numpy as np

Result = TypeVar("Result")


def arguments(description: str | None, *, seed: int | None = 7, repeats: int | None = None) -> argparse.ArgumentParser:
    """A benchmark's command line with the options they share: the script's docstring as the description, `--seed`
    (unless `seed` is None) and `--repeats` (when given a default). The script adds its own options."""
    parser = argparse.ArgumentParser(description=description)
    if seed is not None:
        parser.add_argument("--seed", type=int, default=seed, help=f"seed of the generated inputs (default {seed})")
    if repeats is not None:
        parser.add_argument(
            "--repeats", type=int, default=repeats, help=f"runs of each measurement, the best kept (default {repeats})"
        )
    return parser


#: Run before a child's code: writes the process's peak resident memory (VmHWM, kB) to the file named by its first
#: argument at exit. Not ru_maxrss: Linux folds the parent's peak into the child's at exec (subprocess uses vfork), so
#: a child started by a benchmark that had held a lot would report the benchmark's peak.
_PEAK_AT_EXIT = """
import atexit, sys

def _write_peak(path=sys.argv.pop(1)):
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(path, "w") as out:
        out.write(peak)

atexit.register(_write_peak)
"""


def child_usage(code: str, *args: str) -> tuple[float, float]:
    """Wall seconds and peak resident memory in GB of `python -c code *args`, run in a process of its own so the
    peak is its own; SystemExit naming the arguments if it fails."""
    with tempfile.NamedTemporaryFile("r") as peak:
        start = time.perf_counter()
        status = subprocess.run([sys.executable, "-c", _PEAK_AT_EXIT + code, peak.name, *args], check=False)
        seconds = time.perf_counter() - start
        if status.returncode != 0:
            raise SystemExit(f"child run {list(args)} failed with exit code {status.returncode}")
        return seconds, int(peak.read()) / 2**20


def report_peaks(title: str, ours: tuple[str, tuple[float, float]], peer: tuple[str, tuple[float, float]]) -> None:
    """The result lines of a memory comparison: each way's (label, (seconds, peak GB)) from `child_usage`, and how
    many times less memory ours took."""
    print(title)
    width = max(len(ours[0]), len(peer[0]), len("ratio"))
    for label, (seconds, peak_gb) in (ours, peer):
        print(f"  {label:<{width}}: {seconds:8.2f} s, peak {peak_gb:6.2f} GB")
    print(f"  {'ratio':<{width}}: {peer[1][1] / ours[1][1]:8.1f}x less memory")


def timed(fn: Callable[[], Result]) -> tuple[float, Result]:
    """Wall time in seconds of one call of `fn`, and what it returned."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


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


def dict_book_states(cols: dict[str, np.ndarray]) -> Iterator[tuple[dict[float, float], dict[float, float]]]:
    """The naive L2 book the benchmarks race: a dict per side, applied message by message (rows sharing an
    `update_id`; a snapshot, kind 0, starts both sides afresh). Yields (bids, asks) after each message."""
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    update_id = cols["update_id"].tolist()
    kind = cols["kind"].tolist()
    side = cols["side"].tolist()
    price = cols["price"].tolist()
    size = cols["size"].tolist()
    i, n = 0, len(update_id)
    while i < n:
        u = update_id[i]
        if kind[i] == 0:
            bids, asks = {}, {}
        while i < n and update_id[i] == u:
            book = bids if side[i] > 0 else asks
            if size[i] == 0.0:
                book.pop(price[i], None)
            else:
                book[price[i]] = size[i]
            i += 1
        yield bids, asks
