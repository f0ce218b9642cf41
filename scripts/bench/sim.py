"""Benchmark: simulated market events per second with the default DSG; one run on one core, and a batch of runs
through `_core.sim_batch` (rayon, all cores) against the same runs one after another; then recording a run of the
default symbols to Parquet as `fetch --source sim` does (an hour at a time) against holding the whole run in memory,
each in a process of its own so its peak memory is its own."""

from __future__ import annotations

import os
import tempfile

import numpy as np
from common import arguments, child_usage, report_peaks, timed

from apexctl import _core


def main() -> None:
    parser = arguments(__doc__, seed=None)
    parser.add_argument("--hours", type=float, default=1.0, help="simulated hours per run (default 1)")
    parser.add_argument("--jobs", type=int, default=8, help="runs in the batch (default 8)")
    parser.add_argument("--symbol", default="BTCUSDT", help="instrument preset (default BTCUSDT)")
    parser.add_argument(
        "--record-hours", type=float, default=6.0, help="simulated hours of the recording comparison (default 6)"
    )
    args = parser.parse_args()

    elapsed, single = timed(lambda: _core.sim_run(args.symbol, seed=1, hours=args.hours, strategy="ma_crossover"))
    events = single["events"]
    print(f"one run, {args.hours:g} h of {args.symbol}, default DSG, tables recorded")
    print(
        f"  apexctl     : {events / elapsed:14,.0f} events/s  ({events:,} events, {single['trade_count']:,} trades, "
        f"{elapsed:.2f} s; {args.hours * 3600 / elapsed:,.0f}x real time)"
    )

    defaults = np.array([p[3] for p in _core.dsg_params()])
    vectors = np.tile(defaults, (args.jobs, 1))
    seeds = np.arange(1, args.jobs + 1, dtype=np.uint64)
    strategies = ["ma_crossover"] * args.jobs
    parallel, batch = timed(lambda: _core.sim_batch(args.symbol, vectors, seeds, strategies, hours=args.hours))

    def one_by_one() -> None:
        for seed in seeds:
            one = np.array([seed], dtype=np.uint64)
            _core.sim_batch(args.symbol, vectors[:1], one, strategies[:1], hours=args.hours)

    sequential, _ = timed(one_by_one)
    total = int(batch["events"].sum())
    print(f"batch of {args.jobs} runs ({os.cpu_count()} cores), summaries only")
    print(f"  sim_batch   : {total / parallel:14,.0f} events/s  ({parallel:.2f} s)")
    print(f"  one by one  : {total / sequential:14,.0f} events/s  ({sequential:.2f} s)")
    print(f"  ratio       : {sequential / parallel:14.1f}x faster")

    record(args.record_hours)


#: A child process recording `hours` of the default symbols into the folder `out`: `fetch_sim` (pieces), or the whole
#: run held in memory (one piece as long as the run), then written.
RECORD = """
import sys
from pathlib import Path
from apexctl.forge import io
from apexctl.forge.fetch import fetch_sim
from apexctl.forge.sim import MarketSim, market_tables
from apexctl.schemas import BARS, BOOK, TRADES

how, hours, out = sys.argv[1], float(sys.argv[2]), Path(sys.argv[3])
config = MarketSim(seed=1, hours=hours)
if how == "pieces":
    fetch_sim(config, str(out))
else:
    frames, _ = market_tables(config, piece_hours=hours)
    out.mkdir()
    for name, schema in (("book", BOOK), ("trades", TRADES), ("bars", BARS)):
        io.write_table(frames[name], out / f"{name}.parquet", schema=schema, producer="bench")
"""


def record(hours: float) -> None:
    """Wall time and peak resident memory of each way of recording, from the child's own resource usage."""
    with tempfile.TemporaryDirectory() as folder:
        results = {how: child_usage(RECORD, how, str(hours), f"{folder}/{how}") for how in ("pieces", "whole")}
    report_peaks(
        f"recording {hours:g} h of the default symbols to Parquet (fetch --source sim)",
        ("an hour at a time", results["pieces"]),
        ("whole run", results["whole"]),
    )


if __name__ == "__main__":
    main()
