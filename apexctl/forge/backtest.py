"""Backtests of signal columns over bars through apex-backtest: the parameters, many strategies per call, metrics.

The model (costs, ruin, fitness) is documented once, in rs/apex-backtest/src/lib.rs; the trading rule it applies
(direction, half-Kelly sizing, 3:1 ATR bracket) in rs/apex-rule/src/lib.rs. Signals
outside [-1, 1] are clipped and NaN signals mean "flat" (GP trees yield NaN while their rolling windows warm up);
bad bars (NaN or non-positive prices, lengths that differ, a span outside the data) raise DataError.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl

from apexctl import _core
from apexctl.errors import SchemaError

#: The price and volume columns of a bar, after its `ts` key (the one list the Forge checks bars against).
OHLCV = ("open", "high", "low", "close", "volume")
BAR_COLUMNS = ("ts", *OHLCV)
#: Optional per-bar cost columns; without them the scalar `spread_bps` / `depth` parameters apply to every bar.
COST_COLUMNS = ("spread_bps", "depth")
#: Metric columns of `run`, in order (after `strategy`).
METRICS = (
    "fitness",
    "reached",
    "ttt_bars",
    "ttt_seconds",
    "ruined",
    "ruin_bar",
    "final_equity",
    "pnl",
    "max_equity",
    "sharpe",
    "max_drawdown",
    "trades",
    "wins",
    "win_rate",
    "fees",
)


BacktestParams = dataclasses.make_dataclass(
    "BacktestParams",
    [(name, type(value), dataclasses.field(default=value)) for name, value in _core.backtest_defaults().items()],
    frozen=True,
)
BacktestParams.__module__ = __name__
BacktestParams.__doc__ = """Every parameter of the Rust backtester with its default, read from apex-backtest.

Its `BacktestParams` is the one definition (defaults: a $200 Bybit VIP0 taker account, half-Kelly, 3:1): `capital`,
`target_multiple`, `fee`, `spread_bps`, `depth`, `impact`, then the shared trading rule's (rs/apex-rule, the one the
simulator and the live engine trade by): f = kelly_scale * (p * reward_risk - (1 - p)) / reward_risk with p the
strategy's own win rate over its last `kelly_window` trades and a prior of `prior_win_rate` weighing `prior_trades`.
"""


def bar_arrays(bars: pl.DataFrame, costs: bool = False) -> dict[str, np.ndarray]:
    """The bar columns as the backtester binding takes them (ts in UTC ns, prices and volume as floats); with `costs`,
    also the per-bar costs (`COST_COLUMNS`) the frame has."""
    missing = [name for name in BAR_COLUMNS if name not in bars.columns]
    if missing:
        raise SchemaError(f"bars: missing column(s) {', '.join(missing)} (need {', '.join(BAR_COLUMNS)})")
    ts = bars["ts"]
    if isinstance(ts.dtype, pl.Datetime):
        ts = ts.dt.cast_time_unit("ns")  # the bars schema stores UTC nanoseconds; a Datetime column may be in us or ms
    arrays: dict[str, np.ndarray] = {"ts": ts.cast(pl.Int64).to_numpy()}
    extra = [name for name in COST_COLUMNS if name in bars.columns] if costs else []
    for name in (*OHLCV, *extra):
        arrays[name] = bars[name].cast(pl.Float64).to_numpy()
    return arrays


def run(
    signals: np.ndarray,
    bars: pl.DataFrame,
    params: BacktestParams | None = None,
    span: tuple[int, int | None] = (0, None),
) -> pl.DataFrame:
    """Metrics of each strategy (row of `signals`, strategies x bars; 1-D = one strategy) over bar rows `span`."""
    matrix = np.ascontiguousarray(np.atleast_2d(np.asarray(signals, dtype=np.float64)))
    kwargs = dataclasses.asdict(params or BacktestParams())
    result = _core.backtest_run(matrix, bar_arrays(bars, costs=True), start=span[0], end=span[1], **kwargs)
    return pl.DataFrame({"strategy": np.arange(matrix.shape[0], dtype=np.int64), **{m: result[m] for m in METRICS}})


def equity(
    signal: np.ndarray,
    bars: pl.DataFrame,
    params: BacktestParams | None = None,
    span: tuple[int, int | None] = (0, None),
) -> np.ndarray:
    """Equity at each bar close of `span` for one strategy, for reports."""
    kwargs = dataclasses.asdict(params or BacktestParams())
    signal = np.asarray(signal, dtype=np.float64)
    return _core.backtest_equity(signal, bar_arrays(bars, costs=True), start=span[0], end=span[1], **kwargs)
