"""Market-efficiency check: does a market hand a GP search an edge that survives out of sample?

The best of many random GP trees (the trees `evolve` starts from, over the features the simulator computes) is
chosen by its Sharpe ratio on one span of 1-minute bars and traded on another span of the same market. A free lunch
shows as a significant held-out edge: a t-statistic of its per-bar equity returns. The check runs both ways (choose
on A, test on B; choose on B, test on A) and combines the two held-out t-statistics (Stouffer: their sum over
sqrt(2), standard normal when neither span has an edge), so one lucky held-out span does not decide. Trees are
scored by the Rust backtester with fixed-fraction sizing and no stop or target, so the check measures prediction
rather than money management; `fees=False` scores before fees and spread, a stricter test that also sees edges
costs would eat.

Synthetic bars (`ar1_bars`) are the controls: a random walk must pass, and bars with planted lag-1 autocorrelation
must fail, which shows the check has the power to see what it looks for.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from deap import gp as deap_gp

from apexctl import _core
from apexctl.forge import gp
from apexctl.forge.backtest import OHLCV, BacktestParams

MINUTE_NS = 60_000_000_000
#: Higher intervals of the multi-timeframe features (the simulator's strategy slot computes the same).
HIGHER_NS = (5 * MINUTE_NS, 15 * MINUTE_NS, 60 * MINUTE_NS)
#: One-sided 1% level of the combined held-out t-statistic.
SIGNIFICANT_T = 2.33
#: A tree must trade this often on the training span to be chosen (one lucky position is not a strategy).
MIN_TRADES = 5
#: Fixed-fraction sizing: half the equity at risk against a 50% stop is a 1x position (scaled by |signal|, as the
#: shared rule scales risk), the target is never reached; any non-zero signal trades (random trees' values can be
#: tiny, and the rule's default entry threshold would leave them flat).
FIXED_SIZE = BacktestParams(
    entry_threshold=0.0,
    stop_atr_mult=0.0,
    stop_min_bps=5_000.0,
    reward_risk=10.0,
    min_fraction=0.5,
    max_fraction=0.5,
)

Bars = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class EdgeCheck:
    """The best training tree and what it earned on the held-out span."""

    trees: int
    train_bars: int
    test_bars: int
    fees: bool
    tree: str
    train_sharpe: float
    #: t-statistic of the held-out per-bar log equity returns, and the held-out return in percent of capital.
    held_out_t: float
    held_out_return_pct: float
    held_out_trades: int


@dataclass(frozen=True)
class TwoFold:
    """The check run both ways over two spans, and the combined held-out t-statistic."""

    first: EdgeCheck
    second: EdgeCheck

    @property
    def combined_t(self) -> float:
        return (self.first.held_out_t + self.second.held_out_t) / np.sqrt(2.0)

    @property
    def significant(self) -> bool:
        """Whether the combined held-out edge is significant at the one-sided 1% level."""
        return self.combined_t > SIGNIFICANT_T


def bar_features(bars: Bars) -> dict[str, np.ndarray]:
    """The simulator's feature columns (`_core.sim_feature_names`) that 1-minute bars alone give (ts in ns, OHLCV):
    the book and trade-flow features need the simulator's L2 and trade streams, which a bar table does not have."""
    klines = _bar_arrays(bars)
    columns = _core.features_bars(
        klines
        | {"symbol": np.zeros(len(klines["ts"]), dtype=np.uint32), "turnover": klines["close"] * klines["volume"]},
        kline_interval_ns=MINUTE_NS,
        interval_ns=MINUTE_NS,
        higher_ns=list(HIGHER_NS),
    )
    return {name: columns[name] for name in _core.sim_feature_names() if name in columns}


def random_trees(names: Sequence[str], count: int, seed: int, depth: tuple[int, int] = (1, 4)) -> list[str]:
    """`count` random trees (DEAP half-and-half over the GP primitive set) as GP JSON, duplicates dropped.

    DEAP draws from the module-level `random`; its state is restored afterwards so callers' streams are untouched.
    """
    pset = gp.primitive_set(list(names))
    state = random.getstate()
    random.seed(seed)
    try:
        texts = [gp.to_json(deap_gp.PrimitiveTree(gp.gen_half_and_half(pset, *depth))) for _ in range(count)]
    finally:
        random.setstate(state)
    return list(dict.fromkeys(texts))


def _bar_arrays(bars: Bars) -> dict[str, np.ndarray]:
    return {"ts": np.asarray(bars["ts"], dtype=np.int64)} | {c: np.asarray(bars[c], dtype=np.float64) for c in OHLCV}


def held_out_edge(
    train: Bars, test: Bars, *, trees: int = 1000, seed: int = 0, fees: bool = True, params: BacktestParams = FIXED_SIZE
) -> EdgeCheck:
    """Chooses the best of `trees` random trees on `train` (Sharpe, at least `MIN_TRADES` trades) and tests it on
    `test`. `fees=False` sets the fee and the spread to zero."""
    if not fees:
        params = dataclasses.replace(params, fee=0.0, spread_bps=0.0)
    train_features, test_features = bar_features(train), bar_features(test)
    names = list(train_features)
    texts = random_trees(names, trees, seed)
    signals = _core.gp_evaluate(texts, names, [train_features[n] for n in names])
    kwargs = dataclasses.asdict(params)
    metrics = _core.backtest_run(signals, _bar_arrays(train), start=0, end=None, **kwargs)
    score = np.where(metrics["trades"] >= MIN_TRADES, metrics["sharpe"], -np.inf)
    best = int(np.argmax(score))
    signal = _core.gp_evaluate([texts[best]], names, [test_features[n] for n in names])[0]
    test_bars = _bar_arrays(test)
    equity = _core.backtest_equity(signal, test_bars, start=0, end=None, **kwargs)
    held = _core.backtest_run(signal[None, :], test_bars, start=0, end=None, **kwargs)
    returns = np.diff(np.log(np.r_[params.capital, equity]))
    spread = returns.std(ddof=1)
    t = float(returns.mean() / spread * np.sqrt(len(returns))) if spread > 0 else 0.0
    return EdgeCheck(
        trees=len(texts),
        train_bars=len(train["ts"]),
        test_bars=len(test["ts"]),
        fees=fees,
        tree=texts[best],
        train_sharpe=float(metrics["sharpe"][best]),
        held_out_t=t,
        held_out_return_pct=float((equity[-1] / params.capital - 1.0) * 100),
        held_out_trades=int(held["trades"][0]),
    )


def two_fold_edge(a: Bars, b: Bars, *, trees: int = 1000, seed: int = 0, fees: bool = True) -> TwoFold:
    """`held_out_edge` choosing on `a` and testing on `b`, then the other way round (the same random trees)."""
    return TwoFold(
        held_out_edge(a, b, trees=trees, seed=seed, fees=fees), held_out_edge(b, a, trees=trees, seed=seed, fees=fees)
    )


def sim_bars(symbol: str, seed: int, hours: float, dsg_json: str | None = None) -> dict[str, np.ndarray]:
    """The 1-minute bars of one simulated market (the book stream is kept minimal: only bars are used)."""
    out = _core.sim_run(symbol, dsg_json=dsg_json, seed=seed, hours=hours, book_depth=1, book_cadence_ms=60_000)
    bars = out["bars"]
    return {"ts": bars["ts"]} | {c: bars[c] for c in OHLCV}


def ar1_bars(n: int, phi: float, sigma_bps: float, seed: int) -> dict[str, np.ndarray]:
    """`n` 1-minute bars whose close-to-close log returns are AR(1) with coefficient `phi` and Student-t(4)
    innovations (fat tails) scaled to a return standard deviation of `sigma_bps`; phi = 0 is a random walk."""
    rng = np.random.default_rng(seed)
    innovation_sd = sigma_bps / 1e4 * np.sqrt(1.0 - phi * phi)
    # A t(4) variable has variance 2.
    shocks = rng.standard_t(4, n) / np.sqrt(2.0) * innovation_sd
    returns = np.empty(n)
    previous = 0.0
    for i in range(n):
        previous = phi * previous + shocks[i]
        returns[i] = previous
    close = 100.0 * np.exp(np.cumsum(returns))
    open_ = np.r_[100.0, close[:-1]]
    wicks = np.abs(rng.normal(0.0, sigma_bps / 2e4, (2, n)))
    return {
        "ts": np.arange(n, dtype=np.int64) * MINUTE_NS,
        "open": open_,
        "high": np.maximum(open_, close) * (1.0 + wicks[0]),
        "low": np.minimum(open_, close) * (1.0 - wicks[1]),
        "close": close,
        "volume": np.ones(n),
    }
