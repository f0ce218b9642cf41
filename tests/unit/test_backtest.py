"""apex-backtest through _core and forge.backtest against the plain-Python reference, plus bad inputs."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from apexctl import _core
from apexctl.errors import DataError
from apexctl.forge import backtest
from tests.reference.backtest_reference import backtest as reference

METRICS = backtest.METRICS


def random_bars(seed: int, n: int, gaps: float = 0.01) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    opens, highs, lows, closes = [], [], [], []
    close = 100.0
    for _ in range(n):
        open_ = close * (1 + rng.uniform(-gaps, gaps))
        close = open_ * (1 + rng.uniform(-0.02, 0.02))
        opens.append(open_)
        highs.append(max(open_, close) * (1 + rng.uniform(0, 0.015)))
        lows.append(min(open_, close) * (1 - rng.uniform(0, 0.015)))
        closes.append(close)
    return pl.DataFrame(
        {
            "ts": np.arange(n, dtype=np.int64) * 60_000_000_000,
            "open": opens,
            "high": highs,
            "low": lows,
            "close": closes,
            "volume": rng.uniform(0, 10, n),
        }
    )


def assert_matches(ours: dict, ref: dict) -> None:
    for name in METRICS:
        a, b = ours[name], ref[name]
        if isinstance(b, float) and math.isnan(b):
            assert math.isnan(a), name
        else:
            assert a == pytest.approx(b, rel=1e-9, abs=1e-9), name


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 80),
    strategies=st.integers(1, 4),
    span=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    fee=st.floats(0, 0.002),
    stop_atr_mult=st.one_of(st.just(0.0), st.floats(0, 3)),
    stop_min_bps=st.floats(5, 300),
    prior_win_rate=st.floats(0.0, 1.0),
    max_leverage=st.floats(1, 60),
    prior_trades=st.floats(0.5, 20.0),
    per_bar_costs=st.booleans(),
)
# An order many times the bar's depth: uncapped, its linear impact priced the fill below zero and turned the
# loss into a "win"; apex-backtest's MAX_SLIPPAGE keeps every fill price positive.
@example(
    seed=1,
    n=44,
    strategies=1,
    span=(0.0, 1.0),
    fee=0.0,
    stop_atr_mult=0.0,
    stop_min_bps=5.0,
    prior_win_rate=1.0,
    max_leverage=16.0,
    prior_trades=1.0,
    per_bar_costs=True,
)
def test_rust_equals_python_reference(
    seed,
    n,
    strategies,
    span,
    fee,
    stop_atr_mult,
    stop_min_bps,
    prior_win_rate,
    max_leverage,
    prior_trades,
    per_bar_costs,
):
    bars = random_bars(seed, n, gaps=0.03)
    rng = np.random.default_rng(seed + 1)
    signals = rng.uniform(-1.5, 1.5, (strategies, n))
    signals[rng.uniform(size=signals.shape) < 0.1] = np.nan
    if per_bar_costs:
        bars = bars.with_columns(spread_bps=rng.uniform(0, 5, n), depth=rng.uniform(1e3, 5e4, n))
    start = int((n - 1) * span[0])
    end = start + 1 + round((n - start - 1) * span[1])
    params = backtest.BacktestParams(
        fee=fee,
        stop_atr_mult=stop_atr_mult,
        stop_min_bps=stop_min_bps,
        prior_win_rate=prior_win_rate,
        max_fraction=0.5,
        max_leverage=max_leverage,
        kelly_window=6,
        prior_trades=prior_trades,
        target_multiple=1.3,
    )
    table = backtest.run(signals, bars, params, span=(start, end))
    assert table.height == strategies
    cols = {name: bars[name].to_numpy() for name in bars.columns}
    costs = {"spread": cols.get("spread_bps"), "depth": cols.get("depth")}
    overrides = {k: v for k, v in vars(params).items() if k not in ("spread_bps", "depth")}
    for s, row in enumerate(table.iter_rows(named=True)):
        ref = reference(
            signals[s],
            cols["ts"],
            cols["open"],
            cols["high"],
            cols["low"],
            cols["close"],
            start,
            end,
            **costs,
            **overrides,
        )
        assert_matches(row, ref)
        curve = backtest.equity(signals[s], bars, params, span=(start, end))
        np.testing.assert_allclose(curve, ref["equity"], rtol=1e-9, atol=1e-9)


def test_defaults_trade_and_match_reference_on_a_longer_series():
    bars = random_bars(7, 600)
    signals = np.sin(np.arange(3 * 600).reshape(3, 600) * np.array([[0.05], [0.2], [0.9]]))
    table = backtest.run(signals, bars)
    cols = {name: bars[name].to_numpy() for name in bars.columns}
    for s, row in enumerate(table.iter_rows(named=True)):
        ref = reference(signals[s], cols["ts"], cols["open"], cols["high"], cols["low"], cols["close"])
        assert_matches(row, ref)
    assert table["trades"].min() > 5


def test_signals_outside_the_range_are_clipped_and_nan_means_flat():
    bars = random_bars(3, 200)
    rng = np.random.default_rng(0)
    raw = rng.uniform(-4, 4, (2, 200))
    clipped = backtest.run(np.clip(raw, -1, 1), bars)
    assert backtest.run(raw, bars).equals(clipped)
    nan = backtest.run(np.full((1, 200), np.nan), bars)
    assert nan["trades"][0] == 0
    assert nan["final_equity"][0] == 200.0


def test_walk_forward_spans_score_independently():
    bars = random_bars(5, 300)
    signals = np.sin(np.arange(300) * 0.3)[None, :]
    train = backtest.run(signals, bars, span=(0, 200))
    held_out = backtest.run(signals, bars, span=(200, 300))
    alone = backtest.run(signals[:, 200:], bars[200:])
    assert held_out.equals(alone)
    assert not train.equals(held_out)


def test_datetime_ts_in_any_unit_gives_the_same_seconds():
    bars = random_bars(5, 300)
    signals = np.sin(np.arange(300) * 0.05)[None, :]
    params = backtest.BacktestParams(target_multiple=1.05, min_fraction=0.25, max_fraction=0.5)
    by_int = backtest.run(signals, bars, params)
    as_us = bars.with_columns(pl.from_epoch(pl.col("ts"), time_unit="ns").dt.cast_time_unit("us"))
    assert backtest.run(signals, as_us, params).equals(by_int)
    assert by_int["reached"][0]
    assert by_int["ttt_seconds"][0] == pytest.approx(60.0 * by_int["ttt_bars"][0])


def bar_arrays(bars: pl.DataFrame) -> dict[str, np.ndarray]:
    return {name: bars[name].to_numpy() for name in ("ts", "open", "high", "low", "close", "volume")}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda a: a["close"].__setitem__(4, np.nan), "`close` row 4"),
        (lambda a: a["open"].__setitem__(2, -1.0), "`open` row 2"),
        (lambda a: a.__setitem__("high", a["high"][:-1]), "`high` has 9 values, expected 10"),
        (lambda a: a["ts"].__setitem__(5, 0), "timestamps must strictly increase"),
    ],
)
def test_bad_bars_raise_data_error(mutate, message):
    arrays = {k: v.copy() for k, v in bar_arrays(random_bars(1, 10)).items()}
    mutate(arrays)
    with pytest.raises(DataError, match=message):
        _core.backtest_run(np.zeros((2, 10)), arrays)


def test_bad_shapes_spans_and_params_raise_data_error():
    arrays = bar_arrays(random_bars(1, 10))
    with pytest.raises(DataError, match="signals have 9 columns but there are 10 bars"):
        _core.backtest_run(np.zeros((2, 9)), arrays)
    with pytest.raises(DataError, match=r"span \[5, 3\)"):
        _core.backtest_run(np.zeros((2, 10)), arrays, start=5, end=3)
    with pytest.raises(DataError, match="`fee`"):
        _core.backtest_run(np.zeros((2, 10)), arrays, fee=-0.1)
    with pytest.raises(DataError, match="`signal` has 3 values"):
        _core.backtest_equity(np.zeros(3), arrays)
    with pytest.raises(TypeError, match="unknown backtest parameter `capitol`"):
        _core.backtest_run(np.zeros((2, 10)), arrays, capitol=100.0)


def test_missing_bar_column_names_it():
    with pytest.raises(Exception, match="missing column"):
        backtest.run(np.zeros((1, 10)), random_bars(1, 10).drop("volume"))
