"""Planted VARs for causal discovery: autocorrelated drivers and a target y with three known lagged parents."""

from __future__ import annotations

import numpy as np
import polars as pl

MINUTE = 60_000_000_000
#: The driver indices and lags var_frame plants into y: y(t) = 0.3 f0(t-1) + 0.3 f3(t-2) - 0.3 f7(t-1) + e.
PARENTS = ((0, 1), (3, 2), (7, 1))


def var_frame(rows: int, drivers: int, seed: int, *, ar: float, link_every: int, width: int = 1) -> pl.DataFrame:
    """AR(`ar`) drivers named f{k} (k zero-padded to `width`), every `link_every`-th driven by the one before it at lag
    1 (so a full run_pcmci has real structure to find too), and y with the PARENTS; columns ts, symbol, f.., y."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((rows, drivers + 1))
    data = np.zeros((rows, drivers + 1))
    for t in range(2, rows):
        data[t, :drivers] = ar * data[t - 1, :drivers] + noise[t, :drivers]
        data[t, 1:drivers:link_every] += 0.3 * data[t - 1, 0 : drivers - 1 : link_every]
        data[t, drivers] = 0.3 * data[t - 1, 0] + 0.3 * data[t - 2, 3] - 0.3 * data[t - 1, 7] + noise[t, drivers]
    columns = {f"f{k:0{width}d}": data[:, k] for k in range(drivers)}
    return pl.DataFrame(
        {"ts": np.arange(rows, dtype=np.int64) * MINUTE, "symbol": ["SIM"] * rows, **columns, "y": data[:, drivers]}
    )


def planted_parents(width: int = 1) -> set[tuple[str, int]]:
    """The (name, lag) parents of y under var_frame's naming."""
    return {(f"f{k:0{width}d}", lag) for k, lag in PARENTS}
