"""Adversarial fitness for dual-fitness evolution: GP trees traded in the DSG-populated simulator over seeds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from apexctl import _core
from apexctl.errors import InputError, UsageError
from apexctl.forge import ranges
from apexctl.forge.sim import check_symbol, load_dsg


@dataclass(frozen=True)
class AdversarialFitness:
    """Per-tree mean PnL and per (tree, seed) results; 2-D arrays have shape (trees, seeds)."""

    mean_pnl: npt.NDArray[np.float64]
    pnl: npt.NDArray[np.float64]
    fees: npt.NDArray[np.float64]
    max_drawdown: npt.NDArray[np.float64]
    trades: npt.NDArray[np.uint64]
    ruined: npt.NDArray[np.bool_]
    truncated: npt.NDArray[np.bool_]
    #: False where the tree was flat on every bar of the seed's market, so it was not simulated (PnL exactly 0).
    simulated: npt.NDArray[np.bool_]


def sim_feature_names(bar_seconds: int = 60, vmd_modes: int = 3) -> list[str]:
    """The features a GP tree may use in the simulator (restrict the primitive set to these for `--dsg`): every bar
    column of `features --grain 1m` over trades and book, with `vmd_modes` VMD columns (the table's --vmd-modes)."""
    return _core.sim_feature_names(bar_seconds, vmd_modes)


def dsg_text(dsg: str | Path | None) -> str | None:
    """The DSG document text from a path or the JSON text itself (None: the built-in DSG); validated here."""
    if dsg is None:
        return None
    if isinstance(dsg, str) and dsg.lstrip().startswith("{"):
        try:
            _core.dsg_normalize(dsg)
        except _core.DataError as exc:
            raise InputError(f"DSG document: {exc}") from exc
        return dsg
    text, _ = load_dsg(str(dsg))
    return text


def adversarial_fitness(
    trees_json: Sequence[str],
    dsg: str | Path | None,
    seeds: Sequence[int],
    hours: float = 1.0,
    symbol: str = "BTCUSDT",
    *,
    bar_seconds: int = 60,
    rv_bars: int = 30,
    vmd_modes: int = 3,
    vmd_window: int = 64,
    capital: float = 200.0,
) -> AdversarialFitness:
    """Trades every tree in the market of every seed (all pairs in parallel in Rust, GIL released).

    A tree using a feature outside `sim_feature_names()` raises `DataError` naming its index and the feature.
    `rv_bars`, `vmd_modes` and `vmd_window` must be the `--rv-bars`, `--vmd-modes` and `--vmd-window` of the feature
    table the trees were evolved on, so `rv` and `vmd_k` mean the same.
    """
    check_symbol(symbol, "symbol")
    ranges.HOURS.check(hours, "hours")
    if rv_bars < 1:
        raise UsageError(f"rv_bars must be at least 1, got {rv_bars}")
    if not seeds or min(seeds) < 0:
        raise UsageError(f"seeds: give at least one non-negative seed, got {list(seeds)}")
    out = _core.sim_gp_fitness(
        list(trees_json),
        dsg_text(dsg),
        list(seeds),
        symbol,
        hours,
        bar_seconds=bar_seconds,
        rv_bars=rv_bars,
        vmd_modes=vmd_modes,
        vmd_window=vmd_window,
        capital=capital,
    )
    return AdversarialFitness(**out)


def sim_feature_warmup(
    bar_seconds: int = 60, rv_bars: int = 30, vmd_modes: int = 3, vmd_window: int = 64
) -> dict[str, int]:
    """Bars from a simulation's start until each simulator feature is first defined (NaN before): a tree reading
    a feature whose warm-up exceeds the simulated span is flat there (e.g. `rv_1h` needs 31 hours)."""
    return dict(_core.sim_feature_warmup(bar_seconds, rv_bars, vmd_modes, vmd_window))
