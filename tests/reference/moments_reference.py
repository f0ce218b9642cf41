"""The trade statistics of forge.moments written the direct way, whole arrays at once: the test-only reference."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from apexctl.forge.moments import BPS, NS_PER_S, last_at_or_before


def lattice_quantiles(values: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Each value's lattice count k spread evenly over [k - 1/2, k + 1/2] among its ties, then np.quantile."""
    values = values[np.isfinite(values) & (values > 0)]
    if len(values) == 0:
        return np.full(len(qs), np.nan)
    step = values.min()
    k = np.sort(np.round(values / step))
    starts = np.searchsorted(k, k, side="left")
    ends = np.searchsorted(k, k, side="right")
    spread_out = k + (np.arange(len(k)) - starts + 0.5) / (ends - starts) - 0.5
    return np.quantile(spread_out, qs) * step


def impact_moves(
    trade_ts: np.ndarray,
    side: np.ndarray,
    size: np.ndarray,
    touch_ts: np.ndarray,
    log_mid: np.ndarray,
    horizon_s: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The signed mid move (bps) over `horizon_s` and the size of every trade with a mid before and after it."""
    before = last_at_or_before(touch_ts, log_mid, trade_ts - 1)
    after_ts = trade_ts + int(horizon_s * NS_PER_S)
    after = last_at_or_before(touch_ts, log_mid, after_ts)
    ok = np.isfinite(before) & np.isfinite(after) & (after_ts <= touch_ts[-1]) & np.isfinite(size)
    return side[ok] * (after[ok] - before[ok]) * BPS, size[ok]
