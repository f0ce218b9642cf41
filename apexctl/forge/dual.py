"""Adversarial fitness for dual-fitness evolution: GP trees traded in the DSG-populated simulator over seeds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from apexctl import _core
from apexctl.errors import InputError, UsageError
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


def sim_feature_names(bar_seconds: int | None = None, **features: int) -> list[str]:
    """The features a GP tree may use in the simulator (restrict the primitive set to these for `--dsg`): every bar
    column of `features --grain 1m` over trades and book, with the feature table's options (`--vmd-modes` decides
    the VMD columns; `ranges.FEATURE_DEFAULTS` by default)."""
    return _core.sim_feature_names(bar_seconds, **features)


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
    text, _ = load_dsg(str(dsg), "--dsg default uses the built-in DSG")
    return text


def adversarial_fitness(
    trees_json: Sequence[str],
    dsg: str | Path | None,
    seeds: Sequence[int],
    hours: float | None = None,
    symbol: str = "BTCUSDT",
    **options: float,
) -> AdversarialFitness:
    """Trades every tree in the market of every seed (all pairs in parallel in Rust, GIL released).

    A tree using a feature outside `sim_feature_names()` raises `DataError` naming its index and the feature.
    `options` are the simulator's run options (`bar_seconds`, `capital`, ...: `_core.param_table("sim_run")`) and the
    feature options of the table the trees were evolved on (`rv_bars`, `vmd_modes`, `vmd_window`:
    `_core.param_table("features")`), so `rv` and `vmd_k` mean the same; a value out of range is a `ConfigError`.
    """
    check_symbol(symbol, "symbol")
    if not seeds or min(seeds) < 0:
        raise UsageError(f"seeds: give at least one non-negative seed, got {list(seeds)}")
    out = _core.sim_gp_fitness(list(trees_json), dsg_text(dsg), list(seeds), symbol, hours, **options)
    return AdversarialFitness(**out)


def sim_feature_warmup(bar_seconds: int | None = None, **features: int) -> dict[str, int]:
    """Bars from a simulation's start until each simulator feature is first defined (NaN before): a tree reading
    a feature whose warm-up exceeds the simulated span is flat there (e.g. `rv_1h` needs 31 hours)."""
    return dict(_core.sim_feature_warmup(bar_seconds, **features))
