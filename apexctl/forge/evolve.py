"""`apexctl evolve` logic: DEAP selection and variation in Python, every fitness evaluation in Rust.

Each generation the new individuals are converted to GP JSON, evaluated as signals by `apex-gp` (batch, parallel) and
backtested by `apex-backtest` on the training span; the fitness is the backtester's TTT-based fitness. The hall of
fame is re-scored on the held-out span, and both scores are written so overfitting is visible.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from deap import base, creator, tools
from deap import gp as deap_gp

from apexctl import _core
from apexctl.errors import InputError, UsageError
from apexctl.forge import io
from apexctl.forge.backtest import BacktestParams
from apexctl.forge.cluster import Cluster
from apexctl.forge.gp import gen_grow, gen_half_and_half, primitive_set, to_json
from apexctl.schemas.tables import FEATURES, GENERATIONS

BAR_COLUMNS = ("open", "high", "low", "close", "volume")
#: Columns that are not strategy inputs.
NOT_FEATURES = {"ts", "symbol", "interval"}
#: Trees evaluated per Rust call: bounds the signal matrix (trees x rows) kept in memory at once.
BATCH = 2_000
METRICS = ("fitness", "pnl", "sharpe", "max_drawdown", "trades", "win_rate", "reached", "ttt_seconds", "ruined")


@dataclass(frozen=True)
class EvolveConfig:
    """What `apexctl evolve` does."""

    features: str
    output: Path
    pop: int = 500
    gens: int = 10
    seed: int = 1
    symbol: str | None = None
    train_fraction: float = 0.7
    tournament: int = 3
    cx_prob: float = 0.6
    mut_prob: float = 0.3
    init_depth: tuple[int, int] = (1, 4)
    max_depth: int = 10
    hall_size: int = 20
    backtest: BacktestParams = field(default_factory=BacktestParams)
    #: Ray cluster address or "auto" to spread the tree batches over (None = this machine only).
    ray: str | None = None

    def validate(self) -> None:
        if self.pop < 2:
            raise UsageError(f"--pop must be at least 2, got {self.pop}")
        if self.gens < 1:
            raise UsageError(f"--gens must be at least 1, got {self.gens}")
        if not 0.1 <= self.train_fraction <= 0.95:
            raise UsageError(f"--train-fraction must be in [0.1, 0.95], got {self.train_fraction}")
        if self.hall_size < 1:
            raise UsageError(f"--hall-of-fame must be at least 1, got {self.hall_size}")
        if not 2 <= self.max_depth <= 17:
            raise UsageError(f"--max-depth must be in [2, 17] (the GP loader's limit), got {self.max_depth}")


@dataclass
class Market:
    """The bars and feature columns of one symbol, split into a training and a held-out span."""

    symbol: str
    frame: pl.DataFrame
    names: list[str]
    columns: list[np.ndarray]
    train_end: int

    @property
    def rows(self) -> int:
        return self.frame.height


def load_market(path: str, symbol: str | None, train_fraction: float) -> Market:
    """Reads a bar-grain features table and keeps one symbol, time-ordered."""
    table = io.read_table(path, FEATURES)
    frame = table.frame
    missing = [c for c in BAR_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(
            f"{io.describe(path)}: evolve needs bar-grain features (missing {', '.join(missing)}); "
            "make them with `apexctl features TRADES [BOOK] --grain 1m`"
        )
    symbols = sorted(frame["symbol"].unique().to_list())
    if symbol is None:
        if len(symbols) != 1:
            raise UsageError(f"{io.describe(path)} holds {', '.join(symbols)}: choose one with --symbol")
        symbol = symbols[0]
    elif symbol not in symbols:
        raise UsageError(f"--symbol {symbol}: not in {io.describe(path)} (it holds {', '.join(symbols)})")
    frame = frame.filter(pl.col("symbol") == symbol).sort("ts")
    if frame["close"].is_nan().any() or frame["close"].is_null().any():
        frame = frame.filter(pl.col("close").is_not_nan() & pl.col("close").is_not_null())
    names = [n for n, dtype in frame.schema.items() if dtype.is_numeric() and n not in NOT_FEATURES]
    bad = [n for n in names if not n.isidentifier()]
    if bad:
        raise InputError(f"{io.describe(path)}: feature names must be identifiers to become GP terminals: {bad}")
    columns = [frame[n].cast(pl.Float64).fill_null(np.nan).to_numpy() for n in names]
    train_end = int(frame.height * train_fraction)
    if train_end < 30 or frame.height - train_end < 10:
        raise InputError(
            f"{io.describe(path)}: {frame.height} bars of {symbol} are too few to evolve on "
            f"(need >= 30 training and >= 10 held-out bars at --train-fraction {train_fraction})"
        )
    return Market(symbol, frame, names, columns, train_end)


class Evaluator:
    """Scores GP JSON trees on a span of the market through the Rust batch calls, caching by tree text."""

    def __init__(self, market: Market, params: BacktestParams, ray: str | None = None) -> None:
        self.market = market
        self.params = asdict(params)
        frame = market.frame
        self.bars = {"ts": frame["ts"].to_numpy()} | {c: frame[c].cast(pl.Float64).to_numpy() for c in BAR_COLUMNS}
        self.cache: dict[tuple[str, int, int], dict[str, float]] = {}
        self.evaluations = 0
        self.ray = ray
        self.cluster: Cluster | None = None

    def score(self, trees: Sequence[str], span: tuple[int, int]) -> list[dict[str, float]]:
        todo = list(dict.fromkeys(t for t in trees if (t, *span) not in self.cache))
        if self.ray is not None and todo:
            # The market goes into the object store once; each task scores BATCH trees (same chunks as locally).
            if self.cluster is None:
                self.cluster = Cluster(self.ray)
                self.shared = self.cluster.put((self.market.names, self.market.columns, self.bars, self.params))
            rows = self.cluster.map(_score_chunk, self.shared, [(t, span) for t in todo], batch_size=BATCH)
            for tree, row in zip(todo, rows, strict=True):
                self.cache[(tree, *span)] = row
            self.evaluations += len(todo)
            todo = []
        for first in range(0, len(todo), BATCH):
            chunk = todo[first : first + BATCH]
            signals = _core.gp_evaluate(chunk, self.market.names, self.market.columns)
            metrics = _core.backtest_run(signals, **self.bars, start=span[0], end=span[1], **self.params)
            for i, tree in enumerate(chunk):
                self.cache[(tree, *span)] = {m: float(metrics[m][i]) for m in METRICS}
            self.evaluations += len(chunk)
        return [self.cache[(t, *span)] for t in trees]


def _score_chunk(shared: tuple, batch: Sequence[tuple[str, tuple[int, int]]]) -> list[dict[str, float]]:
    """Scores one batch of (tree, span) on a Ray worker, exactly as `Evaluator.score` does locally."""
    names, columns, bars, params = shared
    chunk = [tree for tree, _ in batch]
    start, end = batch[0][1]
    signals = _core.gp_evaluate(chunk, names, columns)
    metrics = _core.backtest_run(signals, **bars, start=start, end=end, **params)
    return [{m: float(metrics[m][i]) for m in METRICS} for i in range(len(chunk))]


def _toolbox(pset: deap_gp.PrimitiveSetTyped, config: EvolveConfig) -> base.Toolbox:
    if not hasattr(creator, "ApexFitness"):
        creator.create("ApexFitness", base.Fitness, weights=(1.0,))
        creator.create("ApexTree", deap_gp.PrimitiveTree, fitness=creator.ApexFitness)
    toolbox = base.Toolbox()
    low, high = config.init_depth
    toolbox.register("expr", gen_half_and_half, pset=pset, min_=low, max_=high)
    toolbox.register("individual", tools.initIterate, creator.ApexTree, toolbox.expr)
    toolbox.register("population", tools.initRepeat, list, toolbox.individual)
    toolbox.register("select", tools.selTournament, tournsize=config.tournament)
    toolbox.register("mate", deap_gp.cxOnePoint)
    toolbox.register("expr_mut", gen_grow, min_=0, max_=2)
    toolbox.register("mutate", deap_gp.mutUniform, expr=toolbox.expr_mut, pset=pset)
    limit = deap_gp.staticLimit(key=lambda tree: tree.height, max_value=config.max_depth)
    toolbox.decorate("mate", limit)
    toolbox.decorate("mutate", limit)
    return toolbox


@dataclass
class Result:
    market: Market
    generations: pl.DataFrame
    hall_of_fame: list[dict[str, Any]]
    evaluations: int
    seconds: float


def evolve(config: EvolveConfig, on_generation: Callable[[dict[str, Any]], None] | None = None) -> Result:
    """Runs the evolution; deterministic for a given seed (Python's and NumPy's generators are seeded here)."""
    config.validate()
    market = load_market(config.features, config.symbol, config.train_fraction)
    random.seed(config.seed)
    np.random.seed(config.seed % 2**32)
    pset = primitive_set(market.names)
    toolbox = _toolbox(pset, config)
    evaluator = Evaluator(market, config.backtest, ray=config.ray)
    train = (0, market.train_end)
    started = time.perf_counter()

    def assign(individuals: list[Any]) -> None:
        texts = [to_json(ind) for ind in individuals]
        for ind, text, scores in zip(individuals, texts, evaluator.score(texts, train), strict=True):
            ind.fitness.values = (scores["fitness"],)
            ind.json = text

    population = toolbox.population(n=config.pop)
    hall = tools.HallOfFame(config.hall_size, similar=lambda a, b: a.json == b.json)
    log: list[dict[str, Any]] = []
    for generation in range(config.gens + 1):
        tick = time.perf_counter()
        before = evaluator.evaluations
        if generation > 0:
            offspring = [toolbox.clone(ind) for ind in toolbox.select(population, len(population))]
            for a, b in zip(offspring[::2], offspring[1::2], strict=False):
                if random.random() < config.cx_prob:
                    toolbox.mate(a, b)
                    del a.fitness.values, b.fitness.values
            for i, ind in enumerate(offspring):
                if random.random() < config.mut_prob:
                    (offspring[i],) = toolbox.mutate(ind)
                    del offspring[i].fitness.values
            population = offspring
        invalid = [ind for ind in population if not ind.fitness.valid]
        assign(invalid)
        hall.update(population)
        fitness = [ind.fitness.values[0] for ind in population]
        row = {
            "generation": generation,
            "best": max(fitness),
            "median": statistics.median(fitness),
            "diversity": len({ind.json for ind in population}) / len(population),
            "evaluations": evaluator.evaluations - before,
            "seconds": time.perf_counter() - tick,
        }
        log.append(row)
        if on_generation is not None:
            on_generation(row)

    texts = [ind.json for ind in hall]
    train_scores = evaluator.score(texts, train)
    held_out = evaluator.score(texts, (market.train_end, market.rows))
    fame = [
        {"rank": i + 1, "tree": json.loads(text), "size": len(ind), "height": ind.height, "train": tr, "held_out": ho}
        for i, (ind, text, tr, ho) in enumerate(zip(hall, texts, train_scores, held_out, strict=True))
    ]
    return Result(market, pl.DataFrame(log), fame, evaluator.evaluations, time.perf_counter() - started)


def write(result: Result, config: EvolveConfig) -> None:
    """Writes hall_of_fame/ (one GP JSON tree per rank + index.json with both scores) and generations.parquet,
    into a temporary folder renamed into place at the end, so a killed run leaves nothing under OUT."""
    out = config.output
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out}: exists and is not empty; remove it or choose another -o")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        fame_dir = staging / "hall_of_fame"
        fame_dir.mkdir()
        index = []
        for entry in result.hall_of_fame:
            name = f"{entry['rank']:03d}.json"
            io.write_json(entry["tree"], fame_dir / name)
            index.append({k: v for k, v in entry.items() if k != "tree"} | {"file": name})
        params = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()}
        io.write_json(
            {
                "schema": "apex.hall_of_fame",
                "version": 1,
                "symbol": result.market.symbol,
                "train_rows": [0, result.market.train_end],
                "held_out_rows": [result.market.train_end, result.market.rows],
                "features": result.market.names,
                "params": params,
                "entries": index,
            },
            fame_dir / "index.json",
        )
        io.write_table(
            result.generations,
            staging / "generations.parquet",
            schema=GENERATIONS,
            producer="evolve",
            inputs={config.features: io.sha256_file(config.features)} if config.features != "-" else {},
            params=params,
        )
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
