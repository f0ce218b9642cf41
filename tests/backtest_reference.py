"""A plain-Python reference of the apex-backtest model (one strategy, one loop), for tests and the benchmark baseline.

It follows the model as documented in rs/apex-backtest/src/lib.rs, written the obvious way, and returns the same
metrics as `_core.backtest_run` for one strategy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

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
    "kelly_min_trades": 5,
    "prior_fraction": 0.02,
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

    for i in range(start, end):
        if ruin_bar is not None:
            curve.append(0.0)
            continue
        half = (p["spread_bps"] if spread is None else spread[i]) / 2.0 / 1e4
        dep = p["depth"] if depth is None else depth[i]

        def fill(price, side, qty, half=half, dep=dep):
            return price * (1.0 + side * (half + p["impact"] * qty * price / dep))

        def close_trade(pos, price, fill=fill):
            nonlocal cash, fees
            exit_ = fill(price, -pos["dir"], pos["qty"])
            fee = p["fee"] * pos["qty"] * exit_
            gross = pos["qty"] * (exit_ - pos["entry"]) * pos["dir"]
            cash += gross - fee
            fees += fee
            returns.append((gross - pos["entry_fee"] - fee) / (pos["qty"] * pos["entry"]))

        want, strength = 0.0, 0.0
        if i > start:
            s = signal[i - 1]
            s = 0.0 if math.isnan(s) else min(1.0, max(-1.0, s))
            if s != 0.0 and abs(s) >= p["entry_threshold"]:
                want, strength = math.copysign(1.0, s), abs(s)
        if pos is not None:
            long = pos["dir"] > 0
            gap = (o[i] <= pos["stop"] or o[i] >= pos["take"]) if long else (o[i] >= pos["stop"] or o[i] <= pos["take"])
            if gap or want != pos["dir"]:
                close_trade(pos, o[i])
                pos = None
        ruined = _value(cash, pos, o[i]) <= 0.0
        if not ruined and pos is None and want != 0.0:
            first = max(start, i - p["atr_window"])
            total = 0.0
            for j in range(first, i):
                tr = h[j] - lo[j]
                if j > start:
                    tr = max(tr, abs(h[j] - c[j - 1]), abs(lo[j] - c[j - 1]))
                total += tr
            atr = total / (i - first) if i > first else 0.0
            stop = max(p["stop_atr_mult"] * atr, p["stop_min_bps"] * o[i] / 1e4)
            if len(returns) < p["kelly_min_trades"]:
                f = p["prior_fraction"]
            else:
                recent = returns[-p["kelly_window"] :]
                wins = [r for r in recent if r > 0.0]
                losses = [-r for r in recent if r <= 0.0]
                w = len(wins) / len(recent)
                if not wins:
                    kelly = -math.inf
                elif not losses or sum(losses) <= 0.0:
                    kelly = w
                else:
                    kelly = w - (1.0 - w) / ((sum(wins) / len(wins)) / (sum(losses) / len(losses)))
                f = min(p["max_fraction"], max(p["min_fraction"], p["kelly_scale"] * kelly))
            notional = min(strength * f * cash * o[i] / stop, p["max_leverage"] * cash)
            if notional > 0.0:
                qty = notional / o[i]
                entry = fill(o[i], want, qty)
                fee = p["fee"] * qty * entry
                cash -= fee
                fees += fee
                pos = {
                    "dir": want,
                    "qty": qty,
                    "entry": entry,
                    "entry_fee": fee,
                    "stop": entry - want * stop,
                    "take": entry + want * p["reward_risk"] * stop,
                }
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
        if ruined or e <= 0.0:
            ruin_bar, pos, e = i - start, None, 0.0
        curve.append(e)

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
