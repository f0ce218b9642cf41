"""`apexctl evolve` logic: DEAP selection and variation in Python, every fitness evaluation in Rust.

Each generation the new individuals are converted to GP JSON, evaluated as signals by `apex-gp` (batch, parallel) and
backtested by `apex-backtest` on the training span; the fitness is the backtester's TTT-based fitness. With the
surrogate on (`apexctl.forge.surrogate`), only the trees the LightGBM model ranks highest, plus a random holdout that
measures the model, get that true evaluation; the rest carry the model's estimate and are flagged as estimated (they
may breed but never enter the hall of fame). The hall of fame holds distinct behaviours (trees whose training-span
signals are equal are one entry, the smaller tree kept) and is re-scored on the held-out span, and both scores are
written so overfitting is visible. Every generation is checkpointed under OUT/checkpoint/ so `--resume` continues a
stopped run exactly as if it had not stopped.

The parts: `config` (settings and limits), `market` (the features table and its spans), `evaluator` (true fitness
in Rust, optionally over Ray), `seeding` (seed DNA, recycle requests, causal parents), `variation` (DEAP toolbox),
`hall` (hall of fame and Pareto front), `adversary` (simulator fitness), `checkpoint`, `loop` (the generations) and
`writer` (the artifacts).
"""

from __future__ import annotations

from apexctl.forge.evolve.checkpoint import load_checkpoint_config
from apexctl.forge.evolve.config import HALL_SIZE, MAX_DEPTH, TOURNAMENT, TRAIN_FRACTION, EvolveConfig
from apexctl.forge.evolve.evaluator import Evaluator
from apexctl.forge.evolve.hall import Entry, Hall, pareto_front
from apexctl.forge.evolve.loop import Result, evolve
from apexctl.forge.evolve.market import Market, load_market
from apexctl.forge.evolve.seeding import load_seeds, recycle_tree, terminals_for
from apexctl.forge.evolve.variation import make_toolbox, vary
from apexctl.forge.evolve.writer import write

__all__ = [
    "HALL_SIZE",
    "MAX_DEPTH",
    "TOURNAMENT",
    "TRAIN_FRACTION",
    "Entry",
    "Evaluator",
    "EvolveConfig",
    "Hall",
    "Market",
    "Result",
    "evolve",
    "load_checkpoint_config",
    "load_market",
    "load_seeds",
    "make_toolbox",
    "pareto_front",
    "recycle_tree",
    "terminals_for",
    "vary",
    "write",
]
