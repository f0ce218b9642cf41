"""Measurement: the market-efficiency check's verdicts and its power, over replications.

For each market, REPS times: choose the best of 1,000 random GP trees on one span of 1-minute bars, trade it on a
held-out span and the other way round (`apexctl.forge.efficiency.two_fold_edge`), after fees and before them. Prints
how often the combined held-out edge is significant (one-sided 1%) and its median t. Markets: the simulator at the
default DSG and at the book-priced makers' DSG (the pre-issue-14 market), a random walk, and AR(1) bars with planted
lag-1 autocorrelation (the check's power; 1-minute volatility 9 bps as in the simulator, and 30 bps).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from common import arguments

from apexctl.forge.efficiency import SIGNIFICANT_T, Bars, ar1_bars, sim_bars, two_fold_edge

ROOT = Path(__file__).resolve().parents[2]
BOOK_PRICED = ROOT / "examples" / "dsg" / "book-priced-makers.json"


def main() -> None:
    parser = arguments(__doc__, seed=None)
    parser.add_argument("--reps", type=int, default=5, help="replications per market (default 5)")
    parser.add_argument("--hours", type=float, default=12.0, help="hours per span (default 12)")
    parser.add_argument("--trees", type=int, default=1000, help="random trees per check (default 1000)")
    args = parser.parse_args()
    bars = int(args.hours * 60)
    book_priced = BOOK_PRICED.read_text()

    def simulated(dsg: str | None) -> Callable[[int], Bars]:
        return lambda seed: sim_bars("BTCUSDT", seed, args.hours, dsg)

    def planted(phi: float, sigma: float) -> Callable[[int], Bars]:
        return lambda seed: ar1_bars(bars, phi, sigma, seed)

    markets: list[tuple[str, Callable[[int], Bars]]] = [
        ("simulator, default DSG", simulated(None)),
        ("simulator, book-priced makers", simulated(book_priced)),
        ("random walk, 9 bps/min", planted(0.0, 9.0)),
    ]
    for phi in (0.1, 0.3, 0.5):
        markets += [(f"AR(1) phi {phi:g}, {sigma:g} bps/min", planted(phi, sigma)) for sigma in (9.0, 30.0)]
    started = time.perf_counter()
    print(f"efficiency check: best of {args.trees} random trees, two spans of {args.hours:g} h, each held out once")
    print(f"  {'market':<34}{'significant, after fees':>26}{'significant, before fees':>28}")
    for name, make in markets:
        t_stats: dict[bool, list[float]] = {True: [], False: []}
        for rep in range(args.reps):
            train, test = make(1000 + 2 * rep), make(1001 + 2 * rep)
            for fees, found in t_stats.items():
                found.append(two_fold_edge(train, test, trees=args.trees, seed=rep, fees=fees).combined_t)
        cells = [
            f"{sum(t > SIGNIFICANT_T for t in t_stats[fees])}/{args.reps} (median t {np.median(t_stats[fees]):+.2f})"
            for fees in (True, False)
        ]
        print(f"  {name:<34}{cells[0]:>26}{cells[1]:>28}")
    print(f"  ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
