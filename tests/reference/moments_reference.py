"""The trade statistics of forge.moments written the direct way (whole arrays, a trade at a time): the test-only
reference."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

import numpy as np

from apexctl.forge.moments import BPS, NS_PER_S


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
    trades: Sequence[tuple[int, float, float]], mids: Sequence[tuple[int, float]], horizon_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """The signed mid move (bps) over `horizon_s` and the size of every trade (ts ns, side, size) with a mid (ts ns,
    log mid; in time order) before and after it."""
    mid_ts = [ts for ts, _ in mids]
    horizon = int(horizon_s * NS_PER_S)
    moves, sizes = [], []
    for ts, sign, trade_size in trades:
        before = bisect.bisect_right(mid_ts, ts - 1) - 1
        after = bisect.bisect_right(mid_ts, ts + horizon) - 1
        if before < 0 or ts + horizon > mid_ts[-1] or not math.isfinite(trade_size):
            continue
        mid_before, mid_after = mids[before][1], mids[after][1]
        if math.isfinite(mid_before) and math.isfinite(mid_after):
            moves.append(sign * (mid_after - mid_before) * BPS)
            sizes.append(trade_size)
    return np.array(moves), np.array(sizes)
