"""Benchmark: strategy-bars per second of apex-backtest through apexctl._core vs the plain-Python reference loop."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from common import arguments, best_of, report

from apexctl import _core

# The peer is the test suite's reference implementation, so the two sides are known to agree (checked below too).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "reference"))
from backtest_reference import backtest as python_backtest


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--strategies", type=int, default=1_000, help="strategies in the Rust batch (default 1000)")
    parser.add_argument("--bars", type=int, default=10_000, help="bars per strategy (default 10000)")
    parser.add_argument("--subset", type=int, default=5, help="strategies the Python loop runs (default 5)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    n = args.bars
    close = 30_000.0 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.concatenate([[30_000.0], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.002, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.002, n))
    bars = {
        "ts": np.arange(n, dtype=np.int64) * 60_000_000_000,
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "volume": rng.uniform(0, 10, n),
    }
    # Signals shaped like GP outputs: smooth oscillations of different speeds plus noise, squashed into [-1, 1].
    speeds = rng.uniform(0.001, 0.2, (args.strategies, 1))
    signals = np.tanh(3 * np.sin(np.arange(n) * speeds) + rng.normal(0, 0.5, (args.strategies, n)))

    ours_result = _core.backtest_run(signals, bars)
    for s in range(min(args.subset, 2)):
        peer = python_backtest(signals[s], bars["ts"], bars["open"], bars["high"], bars["low"], bars["close"])
        assert np.isclose(ours_result["final_equity"][s], peer["final_equity"], rtol=1e-9), s
    ours = best_of(lambda: _core.backtest_run(signals, bars))
    subset = signals[: args.subset]
    peer = best_of(
        lambda: [
            python_backtest(s, bars["ts"], bars["open"], bars["high"], bars["low"], bars["close"]) for s in subset
        ],
        repeats=1,
    )
    # Compare per strategy-bar: the Python loop ran only the subset, so scale its time to the whole batch.
    peer_full = peer * args.strategies / args.subset
    title = (
        f"backtest: {args.strategies:,} strategies x {n:,} bars "
        f"(python loop timed on {args.subset} and scaled); median trades {int(np.median(ours_result['trades']))}"
    )
    report(title, "strategy-bars", args.strategies * n, ours, peer_full, "python loop")


if __name__ == "__main__":
    main()
