"""The features table an evolution reads, split into its training and held-out spans."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from apexctl.errors import InputError, UsageError
from apexctl.forge import io, ranges
from apexctl.forge.backtest import OHLCV
from apexctl.schemas.tables import FEATURE_KEYS, FEATURES


@dataclass
class Market:
    """The bars and feature columns of one symbol, split into a training and a held-out span."""

    symbol: str
    frame: pl.DataFrame
    names: list[str]
    columns: list[np.ndarray]
    train_end: int
    #: The `--rv-bars`, `--vmd-modes` and `--vmd-window` the features were made with (the simulator must compute
    #: `rv` and `vmd_k` the same way for --dsg), by option name.
    features: dict[str, int] = field(default_factory=lambda: dict(ranges.FEATURE_DEFAULTS))

    @property
    def rows(self) -> int:
        return self.frame.height


def load_market(path: str, symbol: str | None, train_fraction: float) -> Market:
    """Reads a bar-grain features table and keeps one symbol, time-ordered."""
    table = io.read_table(path, FEATURES)
    frame = table.frame
    missing = [c for c in OHLCV if c not in frame.columns]
    if missing:
        raise InputError(
            f"{io.describe(path)}: evolve needs bar-grain features (missing {', '.join(missing)}); "
            "make them with `apexctl features TRADES [BOOK] --grain 1m`"
        )
    symbols = sorted(frame["symbol"].unique().to_list())
    if symbol is None:
        if len(symbols) != 1:
            raise UsageError(f"{io.describe(path)} holds {', '.join(symbols)}: choose one with --symbol")
        symbol = symbols[0]
    elif symbol not in symbols:
        raise UsageError(f"--symbol {symbol}: not in {io.describe(path)} (it holds {', '.join(symbols)})")
    frame = frame.filter(pl.col("symbol") == symbol).sort("ts")
    if frame["close"].is_nan().any() or frame["close"].is_null().any():
        frame = frame.filter(pl.col("close").is_not_nan() & pl.col("close").is_not_null())
    names = [n for n, dtype in frame.schema.items() if dtype.is_numeric() and n not in FEATURE_KEYS]
    bad = [n for n in names if not n.isidentifier()]
    if bad:
        raise InputError(f"{io.describe(path)}: feature names must be identifiers to become GP terminals: {bad}")
    columns = [frame[n].cast(pl.Float64).fill_null(np.nan).to_numpy() for n in names]
    train_end = int(frame.height * train_fraction)
    if train_end < 30 or frame.height - train_end < 10:
        raise InputError(
            f"{io.describe(path)}: {frame.height} bars of {symbol} are too few to evolve on "
            f"(need >= 30 training and >= 10 held-out bars at --train-fraction {train_fraction})"
        )
    params = table.metadata.get(io.META_PARAMS)
    made = params if isinstance(params, dict) else {}
    return Market(
        symbol,
        frame,
        names,
        columns,
        train_end,
        features={name: int(made.get(name, default)) for name, default in ranges.FEATURE_DEFAULTS.items()},
    )


def columns_of(market: Market, names: Sequence[str]) -> list[np.ndarray]:
    index = {n: i for i, n in enumerate(market.names)}
    return [market.columns[index[n]] for n in names]


def close_prices(market: Market) -> np.ndarray:
    return market.frame["close"].cast(pl.Float64).to_numpy()
