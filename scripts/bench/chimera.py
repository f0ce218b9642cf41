"""Benchmark: chimera evaluations (candidate x seed simulated markets, moments included) per second: the parallel
batch the chimera runs (`cmaes.simulate_items`, one Rust simulation per thread with the GIL released) against the
same simulations in a sequential `_core.sim_run` loop; plus raw `_core.sim_batch` (summaries only, rayon) for
reference, since it cannot return the market the moments need. Then the target's moments (`cmaes.load_target`) on a
simulated market of the default symbols, its book's statistics gathered a time window at a time against every table
read whole and then filtered, each in a process of its own so its peak memory is its own. Last, the trade statistics
of a long target (size quantiles on the lot lattice, impact moves): worked through a block of trades at a time
against the same code given every trade as one block (whole-length temporaries, as before), also a process each."""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np
from common import arguments, best_of, child_usage, report_peaks

from apexctl import _core
from apexctl.forge import moments as mom
from apexctl.forge.cmaes import SimTemplate, dsg_document, dsg_params, dsg_vector, simulate_items


def main() -> None:
    parser = arguments(__doc__, seed=None, repeats=2)
    parser.add_argument("--hours", type=float, default=0.1, help="simulated hours per market (default 0.1)")
    parser.add_argument("--candidates", type=int, default=4, help="candidate DSGs (default 4)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per candidate (default 2)")
    parser.add_argument("--symbol", default="BTCUSDT", help="instrument preset (default BTCUSDT)")
    parser.add_argument(
        "--target-hours", type=float, default=12.0, help="simulated hours of the target comparison (default 12)"
    )
    parser.add_argument(
        "--trades",
        type=int,
        default=10_000_000,
        help="trades of the trade-statistics comparison (default 10000000, about a week of BTCUSDT's)",
    )
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    base = dsg_vector(_core.dsg_normalize(None))
    # Candidates near the default, as a CMA-ES generation would send, kept inside each parameter's bounds (a default
    # may sit on one).
    params = dsg_params()
    lo, hi = np.array([p.lo for p in params]), np.array([p.hi for p in params])
    vectors = [np.clip(base * rng.uniform(0.8, 1.2, size=len(base)), lo, hi) for _ in range(args.candidates)]
    texts = [json.dumps(dsg_document(v)) for v in vectors]
    items = [(text, seed) for text in texts for seed in range(1, args.seeds + 1)]
    template = SimTemplate(args.symbol, args.hours)

    parallel_rows: list = []
    sequential_rows: list = []

    def batch() -> None:
        parallel_rows[:] = simulate_items(template, items)

    def loop() -> None:
        sequential_rows[:] = [
            mom.from_sim_output(
                _core.sim_run(args.symbol, dsg_json=text, seed=seed, hours=args.hours), template.moments
            )
            for text, seed in items
        ]

    parallel = best_of(batch, args.repeats)
    sequential = best_of(loop, args.repeats)
    same = all(
        np.allclose(list(a.values()), list(b.values()), equal_nan=True)
        for a, b in zip(parallel_rows, sequential_rows, strict=True)
    )
    n = len(items)
    load = os.getloadavg()[0]
    print(
        f"chimera evaluations: {args.candidates} candidates x {args.seeds} seeds = {n} markets of {args.hours:g} h "
        f"{args.symbol} with moments ({os.cpu_count()} cores, load average {load:.1f}); results equal: {same}"
    )
    print(f"  apexctl     : {n / parallel:14,.2f} evaluations/s  ({parallel:.2f} s, threads over Rust simulations)")
    print(f"  sim_run loop: {n / sequential:14,.2f} evaluations/s  ({sequential:.2f} s)")
    print(f"  ratio       : {sequential / parallel:14.2f}x faster")

    matrix = np.vstack([v for v in vectors for _ in range(args.seeds)])
    seeds = np.array([s for _ in vectors for s in range(1, args.seeds + 1)], dtype=np.uint64)
    summaries = best_of(lambda: _core.sim_batch(args.symbol, matrix, seeds, [""] * n, hours=args.hours), args.repeats)
    print(f"  sim_batch   : {n / summaries:14,.2f} markets/s   ({summaries:.2f} s; summaries only, no moments)")
    target_reads(args.target_hours)
    trade_statistics(args.trades)


#: A child process printing the target moments of the folder `target` as JSON: as `chimera` reads it, or the naive
#: way (every table read whole, then the symbol's rows picked).
TARGET = """
import json, sys
from apexctl.forge import cmaes, io, moments as mom
from apexctl.schemas.tables import BARS, BOOK, TRADES

how, target, out = sys.argv[1:]
config = mom.MomentConfig()
if how == "windows":
    moments = cmaes.load_target(target, None, config).moments
else:
    book = io.read_table(f"{target}/book.parquet", BOOK)
    trades = io.read_table(f"{target}/trades.parquet", TRADES).frame
    bars = io.read_table(f"{target}/bars.parquet", BARS).frame
    depth = mom.recorded_depth(book.frame.filter(book.frame["symbol"] == "BTCUSDT"), book.metadata, config)
    moments = mom.for_symbol(trades, book.frame, bars, None, config, depth)[1]
open(out, "w").write(json.dumps(moments, sort_keys=True))
"""


def target_reads(hours: float) -> None:
    """Wall time and peak resident memory of the target moments of `hours` of the default symbols."""
    from apexctl.forge.fetch import fetch_sim
    from apexctl.forge.sim import MarketSim

    with tempfile.TemporaryDirectory() as folder:
        fetch_sim(MarketSim(seed=1, hours=hours), f"{folder}/market")
        results = {
            how: child_usage(TARGET, how, f"{folder}/market", f"{folder}/{how}.json") for how in ("windows", "whole")
        }
        with open(f"{folder}/windows.json") as windows, open(f"{folder}/whole.json") as whole:
            if windows.read() != whole.read():
                raise SystemExit("the target read a window at a time and read whole gave different moments")
    report_peaks(
        f"chimera target moments of {hours:g} h of the default symbols' simulated market",
        ("a time window at a time", results["windows"]),
        ("whole tables", results["whole"]),
    )


#: A child process saving the size quantiles and impact moves of `trades` synthetic trades (sizes on a lot lattice,
#: a random-walk mid quoted twice a trade) as `chimera` computes them, or with all trades in one block.
TRADE_STATISTICS = """
import sys
import numpy as np
from apexctl.forge import moments as mom

how, trades, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
trade_ts = np.cumsum(rng.integers(1, 40_000_000, trades))
side = rng.choice([-1.0, 1.0], trades)
size = np.round(rng.lognormal(0.0, 1.5, trades) * 100) / 1000
touch_ts = np.sort(rng.integers(trade_ts[0] - 10**9, trade_ts[-1] + 10**9, 2 * trades))
log_mid = np.log(60_000) + np.cumsum(rng.normal(0, 1e-5, 2 * trades))
if how == "whole":
    mom._BLOCK = trades
quantiles = mom.lattice_quantiles(size, [0.5, 0.9])
move, sizes = mom.impact_moves(trade_ts, side, size, touch_ts, log_mid, 10.0)
np.save(out, np.concatenate([quantiles, move[::997], [move.sum(), sizes.sum(), len(move)]]))
"""


def trade_statistics(trades: int) -> None:
    """Wall time and peak resident memory of the trade statistics of `trades` synthetic trades, both ways."""
    with tempfile.TemporaryDirectory() as folder:
        results = {
            how: child_usage(TRADE_STATISTICS, how, str(trades), f"{folder}/{how}.npy") for how in ("blocks", "whole")
        }
        if not np.array_equal(np.load(f"{folder}/blocks.npy"), np.load(f"{folder}/whole.npy")):
            raise SystemExit("the trade statistics a block at a time and whole differ")
    report_peaks(
        f"chimera trade statistics of {trades:,} trades (size quantiles, impact moves; results equal; the inputs "
        f"alone take {56 * trades / 2**30:.2f} GB of each peak)",
        (f"{mom._BLOCK:,} trades at a time", results["blocks"]),
        ("all trades in one block", results["whole"]),
    )


if __name__ == "__main__":
    main()
