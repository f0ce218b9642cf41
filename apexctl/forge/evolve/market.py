"""The features table an evolution reads, split into its training and held-out spans."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from apexctl.console import safe
from apexctl.errors import InputError, UsageError
from apexctl.forge import io, ranges
from apexctl.forge.backtest import OHLCV
from apexctl.forge.features import bars_made, table_options
from apexctl.forge.table_checks import utc_text
from apexctl.schemas.tables import FEATURE_KEYS, FEATURES

#: A column added while loading: the file's row of each bar, for messages (dropped before the bars are used).
_FILE_ROW = "_file_row"


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
    #: The bars the trees learn from, as a bundle records them (`features.bars_made`): the simulator trades --dsg
    #: trees on bars of that length, and the live engine must compute the same.
    bars: dict[str, Any] = field(default_factory=lambda: {"bar_seconds": 60, "options": dict(ranges.FEATURE_DEFAULTS)})
    #: The sha256 of the table's bytes as read (a file's or stdin's): what a checkpoint checks a resumed run against.
    sha256: str = ""

    @property
    def rows(self) -> int:
        return self.frame.height

    def sim_options(self) -> dict[str, int]:
        """The simulator's bar length and feature options for trees evolved on this table (--dsg)."""
        return {"bar_seconds": self.bars["bar_seconds"], **self.features}


def load_market(path: str, symbol: str | None, train_fraction: float) -> Market:
    """Reads a bar-grain features table and keeps one symbol, time-ordered."""
    table = io.read_table(path, FEATURES)
    feature_options = table_options(table)
    # The file's own row numbers, for messages: the rows are filtered to one symbol and sorted below.
    frame = table.frame.with_row_index(_FILE_ROW)
    missing = [c for c in OHLCV if c not in frame.columns]
    if missing:
        raise InputError(
            f"{io.describe(path)}: evolve needs bar-grain features (missing {', '.join(missing)}); "
            "make them with `apexctl features TRADES [BOOK] --grain 1m`"
        )
    if frame.is_empty():
        raise InputError(f"{io.describe(path)}: the features table has no rows; evolve needs bars of one symbol")
    symbols = sorted(frame["symbol"].unique().to_list())
    if symbol is None:
        if len(symbols) != 1:
            raise UsageError(f"{io.describe(path)} holds {', '.join(symbols)}: choose one with --symbol")
        symbol = symbols[0]
    elif symbol not in symbols:
        raise UsageError(f"--symbol {symbol}: not in {io.describe(path)} (it holds {', '.join(symbols)})")
    frame = frame.filter(pl.col("symbol") == symbol).sort("ts", maintain_order=True)
    if frame["close"].is_nan().any() or frame["close"].is_null().any():
        frame = frame.filter(pl.col("close").is_not_nan() & pl.col("close").is_not_null())
    _check_bars(frame, io.describe(path), symbol)
    frame = frame.drop(_FILE_ROW)
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
    return Market(
        symbol,
        frame,
        names,
        columns,
        train_end,
        features=feature_options,
        bars=bars_made(table, frame, feature_options),
        sha256=table.sha256,
    )


def _check_bars(frame: pl.DataFrame, name: str, symbol: str) -> None:
    """InputError naming the file and its row unless the bars of `symbol` (sorted by time) are usable by the
    backtester: one bar per time, prices finite and positive, volume finite and >= 0, high and low around the
    open and close. The backtester refuses such bars too, but by a row of the filtered frame and without the file."""
    where = f"{name}: row {{}} (symbol {safe(symbol)})"
    rows = frame[_FILE_ROW]
    ts = frame["ts"]
    if (at := _first(ts == ts.shift(1))) is not None:
        raise InputError(
            f"{where.format(rows[at])}: column 'ts': repeated timestamp {ts[at]} ({utc_text(ts[at])}), also at row "
            f"{rows[at - 1]}; a features table holds one row per bar and symbol"
        )
    prices = {column: frame[column].cast(pl.Float64) for column in OHLCV}
    for column, values in prices.items():
        ok = values >= 0.0 if column == "volume" else values > 0.0
        if (at := _first(values.is_null() | ~(values.is_finite() & ok))) is not None:
            expected = "a finite number >= 0" if column == "volume" else "a finite positive price"
            raise InputError(f"{where.format(rows[at])}: column '{column}' holds {values[at]}, expected {expected}")
    high, low = prices["high"], prices["low"]
    outside = high < low
    for body in (prices["open"], prices["close"]):
        outside = outside | (body > high) | (body < low)
    if (at := _first(outside)) is not None:
        raise InputError(
            f"{where.format(rows[at])}: high {high[at]} and low {low[at]} do not contain the open "
            f"{prices['open'][at]} and close {prices['close'][at]}"
        )


def _first(bad: pl.Series) -> int | None:
    """The index of the first true value of `bad` (a null is not true), or None."""
    bad = bad.fill_null(False)
    return int(bad.arg_true()[0]) if bad.any() else None


def columns_of(market: Market, names: Sequence[str]) -> list[np.ndarray]:
    index = {n: i for i, n in enumerate(market.names)}
    return [market.columns[index[n]] for n in names]


def close_prices(market: Market) -> np.ndarray:
    return market.frame["close"].cast(pl.Float64).to_numpy()
