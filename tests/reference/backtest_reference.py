"""A plain-Python reference of the apex-backtest model (one strategy, one loop), for tests and the benchmark baseline.

It follows the model as documented in rs/apex-backtest/src/lib.rs (and the trading rule of rs/apex-rule/src/lib.rs),
written the obvious way, and returns the same metrics as `_core.backtest_run` for one strategy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# apex-backtest's MAX_SLIPPAGE: the largest slippage a fill pays, as a fraction of the price.
MAX_SLIPPAGE = 0.5

DEFAULTS: dict[str, Any] = {
    "capital": 200.0,
    "target_multiple": 2.0,
    "fee": 0.00055,
    "spread_bps": 1.0,
    "depth": 1_000_000.0,
    "impact": 1.0,
    "entry_threshold": 0.05,
    "stop_atr_mult": 2.0,
    "atr_window": 14,
    "stop_min_bps": 10.0,
    "reward_risk": 3.0,
    "kelly_scale": 0.5,
    "kelly_window": 20,
    "prior_win_rate": 0.3,
    "prior_trades": 10.0,
    "min_fraction": 0.005,
    "max_fraction": 0.25,
    "max_leverage": 10.0,
}


def _value(cash: float, pos: dict[str, float] | None, price: float) -> float:
    return cash if pos is None else cash + pos["qty"] * (price - pos["entry"]) * pos["dir"]


def backtest(signal, ts, o, h, lo, c, start=0, end=None, spread=None, depth=None, **overrides) -> dict[str, Any]:
    p = {**DEFAULTS, **overrides}
    end = len(ts) if end is None else end
    n = end - start
    cash = p["capital"]
    pos: dict[str, float] | None = None
    returns: list[float] = []
    curve: list[float] = []
    fees = 0.0
    ruin_bar = None
    pending: dict[str, Any] = {"close": False, "enter": None}

    for i in range(start, end):
        if ruin_bar is not None:
            curve.append(0.0)
            continue
        half = (p["spread_bps"] if spread is None else spread[i]) / 2.0 / 1e4
        dep = p["depth"] if depth is None else depth[i]

        def fill(price, side, qty, half=half, dep=dep):
            return price * (1.0 + side * min(half + p["impact"] * qty * price / dep, MAX_SLIPPAGE))

        def close_trade(pos, price, fill=fill):
            nonlocal cash, fees
            exit_ = fill(price, -pos["dir"], pos["qty"])
            fee = p["fee"] * pos["qty"] * exit_
            gross = pos["qty"] * (exit_ - pos["entry"]) * pos["dir"]
            cash += gross - fee
            fees += fee
            returns.append((gross - pos["entry_fee"] - fee) / (pos["qty"] * pos["entry"]))

        # At the open: the previous close's decision, then an open beyond a bracket level exits there.
        if pending["close"] and pos is not None:
            close_trade(pos, o[i])
            pos = None
        if pending["enter"] is not None:
            want, qty, stop, take = pending["enter"]
            entry = fill(o[i], want, qty)
            fee = p["fee"] * qty * entry
            cash -= fee
            fees += fee
            pos = {"dir": want, "qty": qty, "entry": entry, "entry_fee": fee, "stop": stop, "take": take}
        if pos is not None:
            long = pos["dir"] > 0
            gap = (o[i] <= pos["stop"] or o[i] >= pos["take"]) if long else (o[i] >= pos["stop"] or o[i] <= pos["take"])
            if gap:
                close_trade(pos, o[i])
                pos = None
        ruined = _value(cash, pos, o[i]) <= 0.0
        if not ruined and pos is not None:
            long = pos["dir"] > 0
            adverse = lo[i] if long else h[i]
            if (lo[i] <= pos["stop"]) if long else (h[i] >= pos["stop"]):
                close_trade(pos, pos["stop"])
                pos = None
            elif (h[i] >= pos["take"]) if long else (lo[i] <= pos["take"]):
                close_trade(pos, pos["take"])
                pos = None
            ruined = _value(cash, pos, adverse) <= 0.0
        e = _value(cash, pos, c[i])
        pending = {"close": False, "enter": None}
        if ruined or e <= 0.0:
            ruin_bar, pos, e = i - start, None, 0.0
            curve.append(e)
            continue
        curve.append(e)

        # The rule at this close: direction, then half-Kelly size and the 3:1 bracket from the close.
        s = signal[i]
        s = 0.0 if math.isnan(s) else min(1.0, max(-1.0, s))
        want = math.copysign(1.0, s) if s != 0.0 and abs(s) >= p["entry_threshold"] else 0.0
        held = 0.0 if pos is None else pos["dir"]
        if want == held:
            continue
        pending["close"] = held != 0.0
        if want == 0.0:
            continue
        first = max(start, i + 1 - p["atr_window"])
        total = 0.0
        for j in range(first, i + 1):
            tr = h[j] - lo[j]
            if j > start:
                tr = max(tr, abs(h[j] - c[j - 1]), abs(lo[j] - c[j - 1]))
            total += tr
        atr = total / (i + 1 - first)
        stop = max(p["stop_atr_mult"] * atr, p["stop_min_bps"] * c[i] / 1e4)
        recent = returns[-p["kelly_window"] :]
        wins = sum(1 for r in recent if r > 0.0)
        win_p = (wins + p["prior_win_rate"] * p["prior_trades"]) / (len(recent) + p["prior_trades"])
        b = p["reward_risk"]
        f = min(p["max_fraction"], max(p["min_fraction"], p["kelly_scale"] * (win_p * b - (1.0 - win_p)) / b))
        qty = min(abs(s) * f * e / stop, p["max_leverage"] * e / c[i])
        if qty > 0.0 and c[i] - want * stop > 0.0:
            pending["enter"] = (want, qty, c[i] - want * stop, c[i] + want * b * stop)

    target = p["target_multiple"] * p["capital"]
    ttt = next((k + 1 for k, e in enumerate(curve) if e >= target), None)
    max_equity = max([p["capital"], *curve])
    peak, max_dd = p["capital"], 0.0
    for e in curve:
        peak = max(peak, e)
        max_dd = max(max_dd, (peak - e) / peak)
    previous, bar_returns = p["capital"], []
    for e in curve:
        bar_returns.append(e / previous - 1.0 if previous > 0 else 0.0)
        previous = e
    bar_seconds = (ts[end - 1] - ts[start]) / 1e9 / (n - 1) if n >= 2 else 0.0
    sharpe = 0.0
    if n >= 2:
        sd = float(np.std(bar_returns, ddof=1))
        if sd > 0:
            per_year = 365.25 * 86400 / bar_seconds if bar_seconds > 0 else 1.0
            sharpe = float(np.mean(bar_returns)) / sd * math.sqrt(per_year)
    if ruin_bar is not None:
        fitness = -1.0 + ruin_bar / n
    elif ttt is not None:
        fitness = 2.0 + (n - ttt) / n
    else:
        fitness = max_equity / target
    wins = sum(1 for r in returns if r > 0)
    return {
        "fitness": fitness,
        "reached": ttt is not None,
        "ttt_bars": -1 if ttt is None else ttt,
        "ttt_seconds": math.nan if ttt is None else (ts[start + ttt - 1] - ts[start]) / 1e9 + bar_seconds,
        "ruined": ruin_bar is not None,
        "ruin_bar": -1 if ruin_bar is None else ruin_bar,
        "final_equity": curve[-1],
        "pnl": curve[-1] - p["capital"],
        "max_equity": max_equity,
        "sharpe": sharpe,
        "max_drawdown": max_dd,
        "trades": len(returns),
        "wins": wins,
        "win_rate": wins / len(returns) if returns else 0.0,
        "fees": fees,
        "equity": curve,
    }
