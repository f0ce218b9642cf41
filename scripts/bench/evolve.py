"""Benchmark: wall time of `apexctl evolve` generations at a large population (default 50,000) on simulated bars."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl


def apexctl(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "apexctl", *args], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pop", type=int, default=50_000, help="population size (default 50,000)")
    parser.add_argument("--gens", type=int, default=1, help="generations after the initial one (default 1)")
    parser.add_argument("--hours", type=float, default=4.0, help="simulated hours of BTCUSDT bars (default 4)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        apexctl("fetch", "--source", "sim", "--symbols", "BTCUSDT", "--hours", str(args.hours), "-o", str(root / "d"))
        apexctl("features", str(root / "d/trades.parquet"), str(root / "d/book.parquet"), "-o", str(root / "f.parquet"),
                "--grain", "1m")  # fmt: skip
        start = time.perf_counter()
        apexctl("evolve", "--features", str(root / "f.parquet"), "--pop", str(args.pop), "--gens", str(args.gens),
                "-o", str(root / "evolve"))  # fmt: skip
        total = time.perf_counter() - start
        log = pl.read_parquet(root / "evolve/generations.parquet")
    bars = int(args.hours * 60)
    print(f"evolve --pop {args.pop:,} on {bars} one-minute bars ({total:.1f} s in all, process start included)")
    for row in log.iter_rows(named=True):
        print(f"  generation {row['generation']}: {row['seconds']:6.2f} s, {row['evaluations']:,} trees evaluated")


if __name__ == "__main__":
    main()
