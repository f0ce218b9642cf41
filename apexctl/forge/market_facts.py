"""How realistic a simulated market is: return predictability, how fast value reaches the price, the stylized facts.

One run of `_core.sim_run` (its tables and the latent fair value) gives one row of statistics; `TARGETS` says which
values a realistic market must show, averaged over seeds (issue 14: a market with no free lunch). The script
`scripts/bench/market_facts.py` prints them per preset symbol; the stylized-facts tests assert them on fewer seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from apexctl import _core
from apexctl.forge.moments import autocorrelation, excess_kurtosis, last_at_or_before

US_PER_S = 1_000_000
BPS = 1e4
#: Trade-sign autocorrelation lags (in trades) and |r| lags (in 1-minute returns).
SIGN_LAGS = (1, 10, 100, 1000)
ABS_LAGS = tuple(range(1, 11))
#: A shock is measured from this long before it (informed traders act on value they see ahead) to 5 s after.
SHOCK_LEAD_S = 60
SHOCK_AFTER_S = 5
#: Minutes this close (in minutes) to a fair-value jump are "across a jump" for the largest-move statistic.
JUMP_MARGIN_MIN = 1
#: A move this large (bps) in one minute is a book collapse unless it spans a fair-value jump.
COLLAPSE_BPS = 200.0


@dataclass(frozen=True)
class Target:
    """One acceptance criterion on the mean over seeds of one statistic."""

    name: str
    text: str
    ok: Callable[[float], bool]


TARGETS: tuple[Target, ...] = (
    Target("acf1_close_1m", "|.| < 0.05", lambda v: abs(v) < 0.05),
    Target("acf1_mid_1m", "|.| < 0.05", lambda v: abs(v) < 0.05),
    Target("acf1_mid_10s", "|.| < 0.1", lambda v: abs(v) < 0.1),
    Target("shock_5s", ">= 0.8", lambda v: v >= 0.8),
    Target("max_move_no_jump_bps", f"<= {COLLAPSE_BPS:g} (every seed)", lambda v: v <= COLLAPSE_BPS),
    Target("sign_acf_1000", "> 0", lambda v: v > 0),
    Target("kurt_1m", "> 1", lambda v: v > 1),
    Target("absret_acf_min", "> 0 (lags 1-10)", lambda v: v > 0),
    Target("impact_concavity", "< 1 (concave)", lambda v: v < 1),
    Target("crossed", "== 0", lambda v: v == 0),
)
#: Statistics aggregated over seeds by their worst seed (largest moves) or total (crossed books), not their mean.
WORST_OF: dict[str, Callable[[np.ndarray], float]] = {
    "max_move_bps": np.max,
    "max_move_no_jump_bps": np.max,
    "max_mid_fv_gap_move_bps": np.max,
    "max_fv_move_no_jump_bps": np.max,
    "crossed": np.sum,
}


def log_returns(values: np.ndarray) -> np.ndarray:
    """Log returns of consecutive values (NaN where either is not positive and finite)."""
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v) & (v > 0)
    logs = np.where(ok, np.log(np.where(ok, v, 1.0)), np.nan)
    return np.diff(logs)


def shock_response(log_mid: np.ndarray, log_fv: np.ndarray, lead: int, after: int) -> float:
    """Share of a fair-value shock found in the mid `after` steps later, counted from `lead` steps before it.

    Both series are on one grid (one step = one second). The shock at t is log_fv[t] - log_fv[t-1]; the response is
    log_mid[t+after] - log_mid[t-1-lead]. Fair-value increments are independent, so the pooled regression slope of
    response on shock is the share of an average shock in the price by then, unbiased by the other shocks.
    """
    n = len(log_fv)
    t = np.arange(lead + 1, n - after)
    if len(t) < 10:
        return float("nan")
    shock = log_fv[t] - log_fv[t - 1]
    response = log_mid[t + after] - log_mid[t - 1 - lead]
    ok = np.isfinite(shock) & np.isfinite(response)
    denominator = float(np.sum(shock[ok] ** 2))
    return float(np.sum(shock[ok] * response[ok]) / denominator) if denominator > 0 else float("nan")


def market_orders(ts: np.ndarray, side: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trades of one taker order share a timestamp and side: their (ts, side, total size), in order."""
    if len(ts) == 0:
        return ts, side, size
    start = np.r_[True, (ts[1:] != ts[:-1]) | (side[1:] != side[:-1])]
    groups = np.cumsum(start) - 1
    return ts[start], side[start], np.bincount(groups, weights=size)


def impact_concavity(
    order_ts: np.ndarray,
    order_side: np.ndarray,
    order_size: np.ndarray,
    mid_ts: np.ndarray,
    mid: np.ndarray,
    horizon_us: int = US_PER_S,
    buckets: int = 5,
) -> tuple[float, float, float]:
    """Signed mid move (bps) over `horizon_us` after each taker order, in size quintiles.

    Returns (impact of the smallest quintile, of the largest, concavity): concavity is the ratio of the impacts
    divided by the ratio of the mean sizes, below 1 when impact grows less than proportionally with size.
    """
    before = last_at_or_before(mid_ts, mid, order_ts - 1)
    after = last_at_or_before(mid_ts, mid, order_ts + horizon_us)
    ok = np.isfinite(before) & np.isfinite(after) & (order_ts + horizon_us <= mid_ts[-1])
    if ok.sum() < buckets * 10:
        return float("nan"), float("nan"), float("nan")
    move = order_side[ok] * (after[ok] / before[ok] - 1.0) * BPS
    size = order_size[ok]
    order = np.argsort(size, kind="stable")
    per = len(order) // buckets
    small, large = order[:per], order[(buckets - 1) * per : buckets * per]
    small_impact, large_impact = float(move[small].mean()), float(move[large].mean())
    size_ratio = float(size[large].mean() / size[small].mean())
    if small_impact <= 0 or large_impact <= 0:
        return small_impact, large_impact, float("nan")
    return small_impact, large_impact, large_impact / small_impact / size_ratio


def book_touch(book: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Per published message: ts, best bid, best ask (the Rust L2 book replays the stream), and the crossed count."""
    columns = {**book, "ts": book["ts_us"], "symbol": np.zeros(len(book["ts_us"]), dtype=np.uint32)}
    touch = _core.features_update(columns)
    replay = _core.book_replay(columns)
    crossed = int(replay["books"][0]["crossed"]) if replay["books"] else 0
    return touch["ts"], touch["best_bid"], touch["best_ask"], crossed


def run_facts(out: Mapping, *, jump_margin_min: int = JUMP_MARGIN_MIN) -> dict[str, float]:
    """The statistics of one simulated run (a `_core.sim_run` result with its market tables and fair value)."""
    facts: dict[str, float] = {}
    touch_ts, bid, ask, crossed = book_touch(out["book"])
    facts["crossed"] = float(crossed + int(np.sum((ask <= bid) & np.isfinite(ask) & np.isfinite(bid))))
    mid = np.where((ask > bid) & np.isfinite(ask) & np.isfinite(bid), (bid + ask) / 2, np.nan)
    fv = out["fair_value"]
    horizon_us = int(fv["ts_us"][-1])
    seconds = np.arange(0, horizon_us + 1, US_PER_S, dtype=np.int64)
    mid_1s = last_at_or_before(touch_ts, mid, seconds)
    fv_1s = last_at_or_before(fv["ts_us"], fv["value"], seconds)

    r_close = log_returns(out["bars"]["close"])
    r_mid = log_returns(mid_1s[::60])
    facts["acf1_close_1m"] = autocorrelation(r_close, 1)
    facts["acf1_mid_1m"] = autocorrelation(r_mid, 1)
    facts["acf1_mid_10s"] = autocorrelation(log_returns(mid_1s[::10]), 1)
    facts["acf5_mid_1m"] = autocorrelation(r_mid, 5)

    log_mid, log_fv = np.log(mid_1s), np.log(fv_1s)
    facts["shock_0s"] = shock_response(log_mid, log_fv, SHOCK_LEAD_S, 0)
    facts["shock_5s"] = shock_response(log_mid, log_fv, SHOCK_LEAD_S, SHOCK_AFTER_S)
    facts["shock_30s"] = shock_response(log_mid, log_fv, SHOCK_LEAD_S, 30)
    facts["shock_5s_no_lead"] = shock_response(log_mid, log_fv, 0, SHOCK_AFTER_S)

    # The largest 1-minute move, and the largest away from fair-value jumps (a jump may legitimately move 200 bps).
    moves = np.abs(r_mid) * BPS
    jump_minutes = np.unique(fv["ts_us"][fv["jump"]] // (60 * US_PER_S)).astype(np.int64)
    near_jump = np.zeros(len(moves), dtype=bool)
    for offset in range(-jump_margin_min, jump_margin_min + 1):
        index = jump_minutes + offset
        near_jump[index[(index >= 0) & (index < len(moves))]] = True
    finite = np.isfinite(moves)
    facts["max_move_bps"] = float(moves[finite].max()) if finite.any() else float("nan")
    calm = finite & ~near_jump
    facts["max_move_no_jump_bps"] = float(moves[calm].max()) if calm.any() else float("nan")
    fv_moves = np.abs(log_returns(fv_1s[::60])) * BPS
    facts["max_fv_move_no_jump_bps"] = float(fv_moves[~near_jump[: len(fv_moves)]].max())
    deviation = np.abs(log_returns(mid_1s[::60]) - log_returns(fv_1s[::60])) * BPS
    facts["max_mid_fv_gap_move_bps"] = float(np.nanmax(deviation)) if np.isfinite(deviation).any() else float("nan")

    trades = out["trades"]
    signs = trades["side"].astype(np.float64)
    for lag in SIGN_LAGS:
        facts[f"sign_acf_{lag}"] = autocorrelation(signs, lag)
    facts["kurt_1m"] = excess_kurtosis(r_mid)
    facts["kurt_close_1m"] = excess_kurtosis(r_close)
    for lag in ABS_LAGS:
        facts[f"absret_acf_{lag}"] = autocorrelation(np.abs(r_mid), lag)
    facts["absret_acf_min"] = min(facts[f"absret_acf_{lag}"] for lag in ABS_LAGS)
    order_ts, order_side, order_size = market_orders(
        trades["ts_us"], trades["side"].astype(np.float64), trades["size"].astype(np.float64)
    )
    small, large, concavity = impact_concavity(order_ts, order_side, order_size, touch_ts, mid)
    facts |= {"impact_small_bps": small, "impact_large_bps": large, "impact_concavity": concavity}
    spread = (ask - bid) / mid * BPS
    facts["spread_bps"] = float(np.nanmean(last_at_or_before(touch_ts, spread, seconds)))
    facts["trades_per_min"] = len(signs) / (horizon_us / 60 / US_PER_S)
    facts["vol_1m_bps"] = float(np.nanstd(r_mid) * BPS)
    r_fv = log_returns(fv_1s[::60])
    facts["vol_fv_1m_bps"] = float(np.nanstd(r_fv) * BPS)
    gap = (log_mid - log_fv) * BPS
    facts["gap_sd_bps"] = float(np.nanstd(gap))
    facts["gap_acf_10s"] = autocorrelation(gap, 10)
    facts["gap_acf_60s"] = autocorrelation(gap, 60)
    # The mid's 1-minute return regressed on the fair value's in the same and the previous minute.
    both = np.isfinite(r_mid[1:]) & np.isfinite(r_fv[1:]) & np.isfinite(r_fv[:-1])
    design = np.column_stack([r_fv[1:][both], r_fv[:-1][both], np.ones(both.sum())])
    beta = np.linalg.lstsq(design, r_mid[1:][both], rcond=None)[0] if both.sum() > 3 else [np.nan, np.nan]
    facts["beta_fv_same_min"], facts["beta_fv_prev_min"] = float(beta[0]), float(beta[1])
    return facts


def aggregate(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Mean over seeds of every statistic (`WORST_OF` ones by their worst seed or total); `absret_acf_min` is the
    smallest over lags of the seed-averaged ACF of |r|."""
    out: dict[str, float] = {}
    for name in rows[0]:
        values = np.array([row[name] for row in rows], dtype=np.float64)
        if name in WORST_OF:
            out[name] = float(WORST_OF[name](values))
        else:
            out[name] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    out["absret_acf_min"] = min(out[f"absret_acf_{lag}"] for lag in ABS_LAGS)
    return out


def failures(summary: Mapping[str, float]) -> list[str]:
    """The targets a summary misses, as 'name = value (wanted text)'."""
    return [
        f"{t.name} = {summary[t.name]:.4g} (wanted {t.text})"
        for t in TARGETS
        if not (np.isfinite(summary[t.name]) and t.ok(summary[t.name]))
    ]


def measure(
    symbol: str, seeds: Sequence[int], hours: float, dsg_json: str | None = None
) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Runs the market once per seed and returns the aggregate and the per-seed statistics."""
    rows = [run_facts(_core.sim_run(symbol, dsg_json=dsg_json, seed=seed, hours=hours)) for seed in seeds]
    return aggregate(rows), rows
