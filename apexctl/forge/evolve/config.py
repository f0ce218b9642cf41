"""`apexctl evolve`'s settings: the run's configuration and the limits its options are checked against."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pydantic

from apexctl.console import safe
from apexctl.errors import UsageError
from apexctl.forge import ranges
from apexctl.forge.backtest import BacktestParams
from apexctl.forge.gp import (
    MAX_HEIGHT,
)

RECYCLE_SCHEMA = "apex.recycle"


#: Longest window (lag) a GP tree may use (apex-gp's MAX_WINDOW).
MAX_WINDOW = 1000


#: Trees per Ray task, and the fewest trees per local Rust call.
BATCH = 2_000


#: Signal cells (trees x rows) per local Rust call: bounds the signal matrix kept in memory at once (256 MB). On short
#: spans a call takes many more than BATCH trees, so the subtrees a whole generation shares are evaluated once.
SIGNAL_CELLS = 32_000_000


METRICS = ("fitness", "pnl", "sharpe", "max_drawdown", "trades", "win_rate", "reached", "ttt_seconds", "ruined")


CHECKPOINT = "checkpoint"


CHECKPOINT_SCHEMA = "apex.evolve_checkpoint"


CHECKPOINT_VERSION = 1


#: Trees whose training-span signal fingerprints are computed per Rust call while filling the hall of fame.
FINGERPRINT_CHUNK = 64


TRAIN_FRACTION = ranges.FloatRange(0.1, 0.95)


TOURNAMENT = ranges.IntRange(1, 1_000)


HALL_SIZE = ranges.IntRange(1, 10_000)


#: --max-depth: the Rust loader accepts trees up to height MAX_HEIGHT.
MAX_DEPTH = ranges.IntRange(2, MAX_HEIGHT)


@dataclass(frozen=True)
class EvolveConfig:
    """What `apexctl evolve` does."""

    features: str
    output: Path
    pop: int = 500
    gens: int = 10
    seed: int = 0
    symbol: str | None = None
    train_fraction: float = 0.7
    tournament: int = 3
    cx_prob: float = 0.6
    mut_prob: float = 0.3
    init_depth: tuple[int, int] = (1, 4)
    max_depth: int = 10
    hall_size: int = 20
    backtest: BacktestParams = field(default_factory=BacktestParams)
    surrogate: bool = False
    eval_fraction: float = 0.02
    surrogate_min_corr: float = 0.3
    seed_dna: str | None = None
    seed_share: float = 0.25
    causal: str | None = None
    dsg: str | None = None
    sim_seeds: tuple[int, ...] = (1, 2)
    sim_hours: float = 1.0
    sim_symbol: str | None = None
    #: Ray cluster address or "auto" to spread the tree batches over (None = this machine only).
    ray: str | None = None

    @property
    def dual(self) -> bool:
        """Dual fitness (--dsg): backtest TTT fitness and simulator PnL, NSGA-II selection."""
        return self.dsg is not None

    def validate(self) -> None:
        ranges.POPULATION.check(self.pop, "--pop")
        ranges.GENERATIONS.check(self.gens, "--gens")
        ranges.SEED.check(self.seed, "--seed")
        TRAIN_FRACTION.check(self.train_fraction, "--train-fraction")
        TOURNAMENT.check(self.tournament, "--tournament")
        ranges.PROBABILITY.check(self.cx_prob, "--cx-prob")
        ranges.PROBABILITY.check(self.mut_prob, "--mut-prob")
        HALL_SIZE.check(self.hall_size, "--hall-of-fame")
        MAX_DEPTH.check(self.max_depth, "--max-depth")
        ranges.SHARE.check(self.eval_fraction, "--eval-fraction")
        ranges.CORRELATION.check(self.surrogate_min_corr, "--surrogate-min-corr")
        ranges.SHARE.check(self.seed_share, "--seed-share")
        if not 0 <= self.init_depth[0] <= self.init_depth[1] <= MAX_HEIGHT:
            raise UsageError(f"init_depth must be 0 <= low <= high <= {MAX_HEIGHT}, got {self.init_depth}")
        if self.dual:
            if self.pop % 4:
                raise UsageError(f"--pop must be a multiple of 4 with --dsg (NSGA-II's tournament), got {self.pop}")
            if not self.sim_seeds:
                raise UsageError("--sim-seeds: give at least one seed")
            for sim_seed in self.sim_seeds:
                ranges.SEED.check(sim_seed, "--sim-seeds")
            ranges.HOURS.check(self.sim_hours, "--sim-hours")

    def to_params(self) -> dict[str, Any]:
        """JSON-ready parameters (recorded in the outputs and the checkpoint)."""
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> EvolveConfig:
        """The config `to_params` described, type-checked (ValueError, a pydantic.ValidationError for a value of the
        wrong type, when the parameters do not fit)."""
        unknown = sorted(set(params) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(map(safe, unknown))}")
        return pydantic.TypeAdapter(cls).validate_python(params)
