"""Writes the shared fixture of the trading-rule parity test: 1-minute BTCUSDT bars from the simulator and a signal.

The bars are 6 simulated hours (seed 3, default DSG); the signal is a momentum z-score squashed into [-1, 1] with a
slow sine added, so the rule enters, holds, reverses, exits and gets stopped. The output is committed; rerun this
script only to change the fixture on purpose.

    .venv/bin/python scripts/make_rule_fixture.py -o rs/apex-rule/tests/data/fixture.csv
"""

from __future__ import annotations

import argparse

import numpy as np
import polars as pl

from apexctl import _core


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()
    run = _core.sim_run("BTCUSDT", seed=3, hours=6.0)
    bars = run["bars"]
    close = np.asarray(bars["close"], dtype=np.float64)
    ret = np.diff(np.log(close), prepend=np.log(close[0]))
    window = 10
    momentum = np.convolve(ret, np.ones(window), mode="full")[: len(ret)]
    scale = np.sqrt(np.convolve(ret**2, np.ones(60), mode="full")[: len(ret)] / 60 * window) + 1e-12
    signal = np.tanh(momentum / scale) * 0.8 + 0.3 * np.sin(np.arange(len(close)) / 17.0)
    signal = np.clip(signal, -1.0, 1.0).round(6)
    table = pl.DataFrame(
        {
            "ts": np.asarray(bars["ts_us"], dtype=np.int64) * 1000,
            "open": bars["open"],
            "high": bars["high"],
            "low": bars["low"],
            "close": bars["close"],
            "volume": bars["volume"],
            "signal": signal,
        }
    )
    table.write_csv(args.output, float_precision=None)
    print(f"wrote {table.height} bars to {args.output}")


if __name__ == "__main__":
    main()
