"""Adversarial fitness for dual-fitness evolution: GP trees traded in the DSG-populated simulator over seeds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from apexctl import _core
from apexctl.errors import InputError, UsageError
from apexctl.forge.sim import INSTRUMENTS, load_dsg


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


def sim_feature_names(bar_seconds: int = 60) -> list[str]:
    """The features a GP tree may use in the simulator (restrict the primitive set to these for `--dsg`)."""
    return _core.sim_feature_names(bar_seconds)


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
    capital: float = 200.0,
) -> AdversarialFitness:
    """Trades every tree in the market of every seed (all pairs in parallel in Rust, GIL released).

    A tree using a feature outside `sim_feature_names()` raises `DataError` naming its index and the feature.
    """
    if symbol not in INSTRUMENTS:
        raise UsageError(f"symbol: no simulator preset for {symbol}; known: {', '.join(INSTRUMENTS)}")
    if not (0 < hours <= 24 * 7):
        raise UsageError(f"hours must be in (0, 168], got {hours}")
    if not seeds or min(seeds) < 0:
        raise UsageError(f"seeds: give at least one non-negative seed, got {list(seeds)}")
    out = _core.sim_gp_fitness(
        list(trees_json), dsg_text(dsg), list(seeds), symbol, hours, bar_seconds=bar_seconds, capital=capital
    )
    return AdversarialFitness(**out)
