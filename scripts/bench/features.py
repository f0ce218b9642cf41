"""Benchmark: per-update features (mid, spread, microprice, OFI x5, pressure) via _core vs a naive Python loop; then
`apexctl features` on a simulated market at grains `update` (the book), `trade` (the trades) and `1m` (both), read a
time window at a time (as it runs) against each table whole at once, each in a process of its own so its peak memory
is its own."""

from __future__ import annotations

import heapq
import math
import tempfile

import numpy as np
import polars as pl
from book import make_stream
from common import arguments, best_of, child_usage, dict_book_states, report, report_peaks

from apexctl import _core


def python_features(cols: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """The naive way: a dict per side, the top 10 levels by heapq after every message, the formulas in Python."""
    out: dict[str, list[float]] = {k: [] for k in ("mid", "spread", "microprice", "ofi_l1", "ofi_l5", "pressure_5")}
    before = None
    for bids, asks in dict_book_states(cols):
        b = [(p, bids[p]) for p in heapq.nlargest(10, bids)]
        a = [(p, asks[p]) for p in heapq.nsmallest(10, asks)]
        (pb, qb), (pa, qa) = b[0], a[0]
        out["mid"].append((pb + pa) / 2)
        out["spread"].append(pa - pb)
        out["microprice"].append((pb * qa + pa * qb) / (qa + qb))
        vb, va = sum(q for _, q in b[:5]), sum(q for _, q in a[:5])
        out["pressure_5"].append((vb - va) / (vb + va))
        if before is None:
            out["ofi_l1"].append(math.nan)
            out["ofi_l5"].append(math.nan)
        else:
            b0, a0 = before
            levels = []
            for m in range(5):
                (pb, qb), (pb0, qb0) = b[m], b0[m]
                (pa, qa), (pa0, qa0) = a[m], a0[m]
                e = (qb if pb >= pb0 else 0.0) - (qb0 if pb <= pb0 else 0.0)
                e += (qa0 if pa >= pa0 else 0.0) - (qa if pa <= pa0 else 0.0)
                levels.append(e)
            out["ofi_l1"].append(levels[0])
            out["ofi_l5"].append(sum(levels))
        before = (b, a)
    return out


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--messages", type=int, default=30_000, help="number of delta messages (default 30000)")
    parser.add_argument(
        "--book-hours",
        type=float,
        default=6.0,
        help="simulated hours of the windowed book and trades comparison (default 6)",
    )
    args = parser.parse_args()
    cols = make_stream(args.messages, args.seed)
    # The snapshot's prices come from arithmetic (10000.0 - i * 0.1) and are off the decimal grid by an ulp; a float
    # dict key would then split one level in two. Round once so both sides see the same grid prices.
    cols["price"] = np.round(cols["price"], 1)
    ours = _core.features_update(cols)
    theirs = python_features(cols)
    for name in theirs:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-9, atol=1e-9, err_msg=name)
    ours_s = best_of(lambda: _core.features_update(cols))
    peer_s = best_of(lambda: python_features(cols), repeats=1)
    msgs = args.messages + 1
    report(
        f"features: update features over {msgs:,} messages (ob200-like)", "msgs", msgs, ours_s, peer_s, "python loop"
    )
    time_windows(args.book_hours)


#: A child process computing the features of `table` at `grain` into `out`: in windows (as `features` runs), or in
#: one window holding the whole table.
FEATURES = """
import sys
from apexctl.forge import time_windows, features

how, grain, out, *tables = sys.argv[1:]
if how == "whole":
    time_windows.WINDOW_ROWS = 2**62
features.run(tables, out, features.FeatureConfig(grain=features.Grain(grain)))
"""


def time_windows(hours: float) -> None:
    """Wall time and peak resident memory of `features` at grains `update`, `trade` and `1m` on `hours` of the
    default symbols."""
    from apexctl.forge.fetch import fetch_sim
    from apexctl.forge.sim import MarketSim

    with tempfile.TemporaryDirectory() as folder:
        fetch_sim(MarketSim(seed=1, hours=hours), f"{folder}/market")
        for grain, tables in (("update", ["book"]), ("trade", ["trades"]), ("1m", ["book", "trades"])):
            paths = [f"{folder}/market/{table}.parquet" for table in tables]
            out = {how: f"{folder}/{grain}-{how}.parquet" for how in ("windows", "whole")}
            results = {how: child_usage(FEATURES, how, grain, out[how], *paths) for how in out}
            named = " and ".join(tables)
            if not pl.read_parquet(out["windows"]).equals(pl.read_parquet(out["whole"]), null_equal=True):
                raise SystemExit(f"--grain {grain}: the windowed and the whole {named} gave different features")
            report_peaks(
                f"features --grain {grain} on {hours:g} h of the default symbols' simulated {named}",
                ("a window at a time", results["windows"]),
                (f"whole {named}", results["whole"]),
            )


if __name__ == "__main__":
    main()
