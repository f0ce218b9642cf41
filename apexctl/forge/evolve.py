"""`apexctl evolve` logic: DEAP selection and variation in Python, every fitness evaluation in Rust.

Each generation the new individuals are converted to GP JSON, evaluated as signals by `apex-gp` (batch, parallel) and
backtested by `apex-backtest` on the training span; the fitness is the backtester's TTT-based fitness. With the
surrogate on (`apexctl.forge.surrogate`), only the trees the LightGBM model ranks highest, plus a random holdout that
measures the model, get that true evaluation; the rest carry the model's estimate and are flagged as estimated (they
may breed but never enter the hall of fame). The hall of fame holds distinct behaviours (trees whose training-span
signals are equal are one entry, the smaller tree kept) and is re-scored on the held-out span, and both scores are
written so overfitting is visible. Every generation is checkpointed under OUT/checkpoint/ so `--resume` continues a
stopped run exactly as if it had not stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import random
import shutil
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import pydantic
from deap import base, creator, tools
from deap import gp as deap_gp

from apexctl import _core
from apexctl.console import safe
from apexctl.errors import DataError, InputError, SchemaError, UsageError
from apexctl.forge import io, outputs, plots, ranges
from apexctl.forge import surrogate as sae
from apexctl.forge.backtest import BacktestParams
from apexctl.forge.cluster import Cluster
from apexctl.forge.gp import (
    MAX_HEIGHT,
    MAX_NODES,
    Window,
    from_json,
    gen_grow,
    gen_half_and_half,
    primitive_set,
    read_tree_text,
    to_json,
)
from apexctl.forge.gp import SCHEMA as GP_SCHEMA
from apexctl.schemas.tables import FEATURES, GENERATIONS, PARETO

RECYCLE_SCHEMA = "apex.recycle"

BAR_COLUMNS = ("open", "high", "low", "close", "volume")
#: Longest window (lag) a GP tree may use (apex-gp's MAX_WINDOW).
MAX_WINDOW = 1000
#: Columns that are not strategy inputs.
NOT_FEATURES = {"ts", "symbol", "interval"}
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


@dataclass
class Market:
    """The bars and feature columns of one symbol, split into a training and a held-out span."""

    symbol: str
    frame: pl.DataFrame
    names: list[str]
    columns: list[np.ndarray]
    train_end: int
    #: The `--rv-bars`, `--vmd-modes` and `--vmd-window` the features were made with (the simulator must compute
    #: `rv` and `vmd_k` the same way for --dsg).
    rv_bars: int = 30
    vmd_modes: int = 3
    vmd_window: int = 64

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
    params = table.metadata.get(io.META_PARAMS)
    made = params if isinstance(params, dict) else {}
    return Market(
        symbol,
        frame,
        names,
        columns,
        train_end,
        rv_bars=int(made.get("rv_bars", 30)),
        vmd_modes=int(made.get("vmd_modes", 3)),
        vmd_window=int(made.get("vmd_window", 64)),
    )


class Evaluator:
    """Scores GP JSON trees on a span of the market through the Rust batch calls, caching by tree text; each call
    evaluates the subtrees its trees share once (after crossover, most of a generation's).

    `score(trees, span)` (GP JSON texts and a row range -> one metric dict per tree, same order) is the whole
    interface the evolution loop uses, so another evaluator (e.g. one spreading batches over Ray) can replace it."""

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
        step = max(BATCH, SIGNAL_CELLS // max(self.market.rows, 1))
        for first in range(0, len(todo), step):
            chunk = todo[first : first + step]
            signals = _core.gp_evaluate(chunk, self.market.names, self.market.columns)
            metrics = _core.backtest_run(signals, **self.bars, start=span[0], end=span[1], **self.params)
            for i, tree in enumerate(chunk):
                self.cache[(tree, *span)] = {m: float(metrics[m][i]) for m in METRICS}
            self.evaluations += len(chunk)
        return [self.cache[(t, *span)] for t in trees]

    def close(self) -> None:
        """Leaves the Ray cluster this evaluator joined or started (nothing to do for a local one)."""
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None


def _score_chunk(shared: tuple, batch: Sequence[tuple[str, tuple[int, int]]]) -> list[dict[str, float]]:
    """Scores one batch of (tree, span) on a Ray worker, exactly as `Evaluator.score` does locally."""
    names, columns, bars, params = shared
    chunk = [tree for tree, _ in batch]
    start, end = batch[0][1]
    signals = _core.gp_evaluate(chunk, names, columns)
    metrics = _core.backtest_run(signals, **bars, start=start, end=end, **params)
    return [{m: float(metrics[m][i]) for m in METRICS} for i in range(len(chunk))]


# ----------------------------------------------------------------------------------------------------- seeding


def _tree_files(path: Path) -> list[Path]:
    """A tree file, or the trees of a hall_of_fame/ folder (or of an evolve output folder holding one)."""
    if path.is_dir():
        folder = path / "hall_of_fame" if (path / "hall_of_fame").is_dir() else path
        files = sorted(p for p in folder.glob("*.json") if p.name != "index.json")
        if not files:
            raise InputError(f"{path}: --seed-dna folder holds no GP JSON trees")
        return files
    if not path.exists():
        raise InputError(f"{path}: --seed-dna file does not exist")
    return [path]


def recycle_tree(doc: dict[str, Any], file: Path) -> tuple[str, dict[str, Any]]:
    """The GP tree of an apex.recycle request (the Watchtower's, for a slot that died) and what provenance keeps of
    it; a request that does not validate against apexctl/schemas/recycle.schema.json is a SchemaError naming the
    file and the field."""
    from apexctl.schemas.json_schema import validation_error

    problem = validation_error(doc, "recycle")
    if problem is not None:
        raise SchemaError(f"{safe(file)}: --seed-dna: not a valid {RECYCLE_SCHEMA} request ({safe(problem)})")
    dna = doc["dna"]
    provenance = {
        "file": str(file),
        "sha256": io.sha256_file(file),
        **{k: doc[k] for k in ("slot", "symbol", "reason", "time", "ledger", "run_id")},
        "model_id": dna["model_id"],
        "bundle": dna["bundle"],
        "record": dna["record"],
    }
    return json.dumps(dna["gp_tree"]), provenance


def load_seeds(path: str | Path, terminals: Sequence[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """The normalized GP JSON texts of a --seed-dna file or folder, checked against the allowed feature terminals
    (each file read with a size bound, strictly parsed, then validated by the Rust loader, whose errors name the
    node), and the apex.recycle requests among them (their tree is the DNA; what they were is kept as provenance)."""
    texts = []
    requests = []
    for file in _tree_files(Path(path)):
        text = read_tree_text(file, "--seed-dna")
        what = f"an '{GP_SCHEMA}' document or an '{RECYCLE_SCHEMA}' request for --seed-dna"
        doc = io.parse_json(text, str(file), what)
        if isinstance(doc, dict) and doc.get("schema") == RECYCLE_SCHEMA:
            text, provenance = recycle_tree(doc, file)
            requests.append(provenance)
            doc = doc["dna"]["gp_tree"]
        if not isinstance(doc, dict) or doc.get("schema") != GP_SCHEMA:
            found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
            raise SchemaError(
                f"{safe(file)}: --seed-dna: not an '{GP_SCHEMA}' document or an '{RECYCLE_SCHEMA}' request "
                f"(schema: {safe(found)!r})"
            )
        try:
            texts.append(_core.gp_validate(text, list(terminals)))
        except DataError as exc:
            raise InputError(f"{safe(file)}: --seed-dna: {' '.join(str(exc).split())}") from None
    return texts, requests


@dataclass(frozen=True)
class Terminals:
    """The feature terminals GP may use, extra window lengths, and trees the initial population starts from."""

    features: list[str]
    windows: list[int]
    seeds: list[str]
    #: The apex.recycle requests --seed-dna named (provenance: which death the run answers).
    requests: list[dict[str, Any]] = field(default_factory=list)


def terminals_for(config: EvolveConfig, market: Market) -> Terminals:
    """All features, or the causal parents' (--causal) with their lags as windows and lag(feature, k) seed trees."""
    features = list(market.names)
    windows: list[int] = []
    seeds: list[str] = []
    if config.dual:
        from apexctl.forge.dual import sim_feature_names

        computed = set(sim_feature_names(vmd_modes=market.vmd_modes))
        features = [n for n in features if n in computed]
        if not features:
            raise InputError(
                f"{io.describe(config.features)}: none of its columns is a feature the simulator computes "
                f"({', '.join(sorted(computed))}); --dsg needs bar features from `apexctl features --grain 1m`"
            )
    if config.causal is not None:
        from apexctl.forge.causal import load_causal

        doc = load_causal(config.causal)
        name = safe(io.describe(config.causal))
        if not doc.parents:
            raise InputError(f"{name}: lists no causal parents; evolve without --causal, or rerun `apexctl causal`")
        missing = sorted({p.feature for p in doc.parents if p.feature not in market.names})
        if missing:
            raise InputError(
                f"{name}: causal parent(s) {', '.join(map(safe, missing))} are not columns of "
                f"{safe(io.describe(config.features))}; run `apexctl causal` on this features table"
            )
        outside = sorted({p.feature for p in doc.parents if p.feature not in features})
        if outside:
            raise InputError(
                f"{name}: causal parent(s) {', '.join(map(safe, outside))} are not features the simulator computes "
                "(--dsg trades the trees there); give `apexctl causal` --features the simulator computes"
            )
        too_long = sorted({p.lag for p in doc.parents if p.lag > MAX_WINDOW})
        if too_long:
            raise InputError(
                f"{name}: causal lag(s) {', '.join(map(str, too_long))} exceed {MAX_WINDOW} rows, the longest window "
                "a GP tree may use; rerun `apexctl causal` with a smaller --tau-max"
            )
        parents = list(doc.parents)
        features = list(dict.fromkeys(p.feature for p in parents))
        windows = sorted({p.lag for p in parents if p.lag > 0})
        for parent in parents:
            leaf: dict[str, Any] = {"feature": parent.feature}
            root = {"op": "lag", "args": [leaf, {"window": parent.lag}]} if parent.lag > 0 else leaf
            doc_json = json.dumps({"schema": GP_SCHEMA, "version": 1, "features": [parent.feature], "root": root})
            seeds.append(_core.gp_validate(doc_json, features))
    requests: list[dict[str, Any]] = []
    if config.seed_dna is not None:
        dna, requests = load_seeds(config.seed_dna, features)
        seeds = dna + seeds
    return Terminals(features, windows, list(dict.fromkeys(seeds)), requests)


# ----------------------------------------------------------------------------------------------------- DEAP


def cx_one_point(ind1: Any, ind2: Any) -> tuple[Any, Any]:
    """DEAP's typed `cxOnePoint`, except that the common node type is drawn from a list sorted by name: DEAP draws
    from a set of types, whose order follows their addresses and so may differ between processes."""
    if len(ind1) < 2 or len(ind2) < 2:
        return ind1, ind2
    types1: dict[type, list[int]] = {}
    types2: dict[type, list[int]] = {}
    for idx, node in enumerate(ind1[1:], 1):
        types1.setdefault(node.ret, []).append(idx)
    for idx, node in enumerate(ind2[1:], 1):
        types2.setdefault(node.ret, []).append(idx)
    common = sorted(set(types1) & set(types2), key=lambda t: t.__name__)
    if common:
        type_ = random.choice(common)
        slice1 = ind1.searchSubtree(random.choice(types1[type_]))
        slice2 = ind2.searchSubtree(random.choice(types2[type_]))
        ind1[slice1], ind2[slice2] = ind2[slice2], ind1[slice1]
    return ind1, ind2


def _tree_class(dual: bool) -> Any:
    """DEAP individual class: one maximized objective, or two (backtest fitness, simulator PnL) with --dsg."""
    if not hasattr(creator, "ApexFitness"):
        creator.create("ApexFitness", base.Fitness, weights=(1.0,))
        creator.create("ApexTree", deap_gp.PrimitiveTree, fitness=creator.ApexFitness)
        creator.create("ApexDualFitness", base.Fitness, weights=(1.0, 1.0))
        creator.create("ApexDualTree", deap_gp.PrimitiveTree, fitness=creator.ApexDualFitness)
    return creator.ApexDualTree if dual else creator.ApexTree


def _toolbox(pset: deap_gp.PrimitiveSetTyped, config: EvolveConfig) -> base.Toolbox:
    tree_class = _tree_class(config.dual)
    toolbox = base.Toolbox()
    high = min(config.init_depth[1], config.max_depth)
    low = min(config.init_depth[0], high)
    toolbox.register("expr", gen_half_and_half, pset=pset, min_=low, max_=high)
    toolbox.register("individual", tools.initIterate, tree_class, toolbox.expr)
    toolbox.register("population", tools.initRepeat, list, toolbox.individual)
    toolbox.register("select", tools.selTournament, tournsize=config.tournament)
    toolbox.register("mate", cx_one_point)
    toolbox.register("expr_mut", gen_grow, min_=0, max_=2)
    toolbox.register("mutate", deap_gp.mutUniform, expr=toolbox.expr_mut, pset=pset)
    # DEAP's height is apex-gp's depth (a leaf is 0); a child over either limit is replaced by one of its parents, so
    # a tree variation returns always loads (the limits hold only if callers use the returned trees, see _vary).
    for limit in (
        deap_gp.staticLimit(key=lambda tree: tree.height, max_value=config.max_depth),
        deap_gp.staticLimit(key=len, max_value=MAX_NODES),
    ):
        toolbox.decorate("mate", limit)
        toolbox.decorate("mutate", limit)
    return toolbox


def _individual(text: str, pset: deap_gp.PrimitiveSetTyped, dual: bool) -> Any:
    ind = _tree_class(dual)(from_json(text, pset))
    ind.json = to_json(ind)
    ind.estimated = False
    return ind


def initial_population(toolbox: base.Toolbox, pset: Any, config: EvolveConfig, seeds: Sequence[str]) -> list[Any]:
    """Seed trees once each, mutated copies of them (round robin) up to `seed_share` of the population, the rest
    random. Without seeds: all random."""
    if not seeds:
        return toolbox.population(n=config.pop)
    share = min(config.pop, max(len(seeds), round(config.seed_share * config.pop)))
    population = [_individual(text, pset, config.dual) for text in seeds[:share]]
    while len(population) < share:
        (child,) = toolbox.mutate(toolbox.clone(population[len(population) % len(seeds)]))
        population.append(child)
    return population + toolbox.population(n=config.pop - share)


# ----------------------------------------------------------------------------------------------------- hall of fame


@dataclass
class Entry:
    """A truly evaluated tree: its backtest fitness and, with --dsg, its simulator PnL (mean over seeds)."""

    text: str
    fitness: float
    size: int
    height: int
    adversarial: float | None = None

    @property
    def objectives(self) -> tuple[float, ...]:
        return (self.fitness,) if self.adversarial is None else (self.fitness, self.adversarial)


def pareto_front(entries: Iterable[Entry]) -> list[Entry]:
    """The non-dominated entries on (fitness, adversarial), one per objective pair (the smallest tree), ordered by
    fitness: a sweep over entries sorted by fitness keeps each one whose adversarial value beats all before it."""
    ordered = sorted(entries, key=lambda e: (-e.fitness, -(e.adversarial or 0.0), e.size, e.text))
    front: list[Entry] = []
    best = float("-inf")
    for entry in ordered:
        value = entry.adversarial if entry.adversarial is not None else float("-inf")
        if value > best:
            front.append(entry)
            best = value
    return front


class Hall:
    """The best truly evaluated behaviours: trees whose training-span signals are bit-equal count once (the
    smallest kept), since they trade identically; ordered by fitness, then size, then text (deterministic). With
    two objectives, by Pareto rank first (the pool's fronts peeled), then the same keys."""

    def __init__(self, size: int, market: Market, terminals: Sequence[str]) -> None:
        self.size = size
        self.entries: list[Entry] = []
        self._names = list(terminals)
        index = {n: i for i, n in enumerate(market.names)}
        self._columns = [np.ascontiguousarray(market.columns[index[n]][: market.train_end]) for n in self._names]
        self._fingerprints: dict[str, bytes] = {}

    def _fingerprint(self, texts: Sequence[str]) -> None:
        todo = [t for t in dict.fromkeys(texts) if t not in self._fingerprints]
        if todo:
            signals = _core.gp_evaluate(todo, self._names, self._columns)
            for text, row in zip(todo, signals, strict=True):
                self._fingerprints[text] = hashlib.sha256(np.ascontiguousarray(row).tobytes()).digest()

    def update(self, candidates: Iterable[Entry]) -> None:
        pool = list({e.text: e for e in [*self.entries, *candidates]}.values())
        if any(e.adversarial is not None for e in pool):
            # Peel fronts (one sort each) until there are enough candidates; the rest cannot rank before them.
            ranks: dict[str, int] = {}
            left, rank = pool, 0
            while left and len(ranks) < 4 * self.size:
                for entry in pareto_front(left):
                    ranks[entry.text] = rank
                left = [e for e in left if e.text not in ranks]
                rank += 1
            pool = [e for e in pool if e.text in ranks]
        else:
            ranks = dict.fromkeys((e.text for e in pool), 0)
        ordered = sorted(pool, key=lambda e: (ranks[e.text], -e.fitness, -(e.adversarial or 0.0), e.size, e.text))
        kept: list[Entry] = []
        seen: set[bytes] = set()
        for first in range(0, len(ordered), FINGERPRINT_CHUNK):
            chunk = ordered[first : first + FINGERPRINT_CHUNK]
            self._fingerprint([e.text for e in chunk])
            for entry in chunk:
                mark = self._fingerprints[entry.text]
                if mark not in seen:
                    seen.add(mark)
                    kept.append(entry)
                    if len(kept) == self.size:
                        break
            if len(kept) == self.size:
                break
        self.entries = kept


# ----------------------------------------------------------------------------------------------------- the run


@dataclass
class Result:
    market: Market
    generations: pl.DataFrame
    hall_of_fame: list[dict[str, Any]]
    evaluations: int
    seconds: float
    pareto: list[dict[str, Any]] = field(default_factory=list)
    #: The apex.recycle requests the initial population was seeded from (recorded in hall_of_fame/index.json).
    seed_requests: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class State:
    """Everything a generation boundary needs to continue identically (what the checkpoint holds)."""

    generation: int
    population: list[Any]
    log: list[dict[str, Any]]
    hall: Hall
    fraction: float
    surrogate: sae.Surrogate | None
    archive: list[Entry] = field(default_factory=list)


def prepare_output(out: Path, resume: bool) -> bool:
    """OUT must be new or empty (or hold a checkpoint when resuming); it is created before the first generation so
    the checkpoint has a home. Returns whether OUT was new or empty (this run then owns all of it)."""
    if resume:
        if not (out / CHECKPOINT / "state.json").exists():
            raise UsageError(f"{out}: no {CHECKPOINT}/state.json to --resume from (start without --resume)")
        return False
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out}: exists and is not empty; remove it, choose another -o, or add --resume")
    out.mkdir(parents=True, exist_ok=True)
    return True


@contextlib.contextmanager
def _discard_on_failure(out: Path, resume: bool, owned: bool) -> Iterator[None]:
    """A fresh run that fails removes its checkpoint (and OUT, when it made it), so the same command can run again
    at once: what failed cannot be resumed into anything better. An interrupted run (Ctrl-C, SIGTERM) keeps its
    checkpoint for --resume; a resumed run leaves the checkpoint it continued from."""
    try:
        yield
    except Exception:
        if not resume and owned:
            shutil.rmtree(out / CHECKPOINT, ignore_errors=True)
            with contextlib.suppress(OSError):
                out.rmdir()  # only if nothing else is in it
        raise


def load_checkpoint_config(out: Path, gens: int | None = None) -> EvolveConfig:
    """The configuration a checkpointed run was started with (`gens` replaces its generation count when given);
    a checkpoint whose settings are damaged or out of range is a SchemaError naming it."""
    state = _read_checkpoint(out)
    path = out / CHECKPOINT / "state.json"
    try:
        config = EvolveConfig.from_params(state["config"] | {"output": str(out)})
        config.validate()
    except pydantic.ValidationError as exc:
        raise SchemaError(f"{path}: damaged checkpoint: config.{_first_problem(exc)}") from None
    except ValueError as exc:
        raise SchemaError(f"{path}: damaged checkpoint: config: {exc}") from None
    except UsageError as exc:
        raise SchemaError(f"{path}: damaged checkpoint: its settings are invalid ({exc})") from None
    if gens is not None:
        config = dataclasses.replace(config, gens=ranges.GENERATIONS.check(gens, "--gens"))
    return config


def _first_problem(exc: pydantic.ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    return f"{where}: {first['msg']}"


#: A float of a checkpoint: a number, or one of the names of _NON_FINITE.
_Number = float | Literal["nan", "inf", "-inf"]


class _EntryDoc(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    text: str
    fitness: _Number
    size: int
    height: int
    adversarial: _Number | None = None


class _CheckpointDoc(pydantic.BaseModel):
    """The shape of checkpoint/state.json, checked before anything is restored from it."""

    model_config = pydantic.ConfigDict(extra="forbid")
    schema_: str = pydantic.Field(alias="schema")
    version: int
    config: dict[str, Any]
    features_sha256: str
    generation: int = pydantic.Field(ge=-1)
    population: list[tuple[str, list[_Number], bool, _Number | None]] = pydantic.Field(min_length=2)
    random_state: tuple[int, list[int], float | None]
    numpy_state: tuple[str, list[int], int, int, float]
    log: list[dict[str, Any]]
    hall: list[_EntryDoc]
    archive: list[_EntryDoc]
    fraction: float = pydantic.Field(gt=0.0, le=1.0)
    surrogate_rows: str | None


def _read_checkpoint(out: Path) -> dict[str, Any]:
    """checkpoint/state.json, strictly read and shape-checked: every problem is one SchemaError naming the file."""
    path = out / CHECKPOINT / "state.json"
    if not path.exists():
        raise UsageError(f"{out}: no {CHECKPOINT}/state.json to --resume from (start without --resume)")
    # A population of trees is large; the bound only keeps a damaged file from being read without end.
    state = io.read_json(path, f"an '{CHECKPOINT_SCHEMA}' checkpoint", max_bytes=4 << 30)
    if not isinstance(state, dict) or state.get("schema") != CHECKPOINT_SCHEMA or state.get("version") != 1:
        found = (state.get("schema"), state.get("version")) if isinstance(state, dict) else type(state).__name__
        raise SchemaError(
            f"{path}: not an '{CHECKPOINT_SCHEMA}' version {CHECKPOINT_VERSION} checkpoint (found {safe(found)})"
        )
    try:
        _CheckpointDoc.model_validate(state)
    except pydantic.ValidationError as exc:
        raise SchemaError(f"{path}: damaged checkpoint: {_first_problem(exc)}") from None
    rows = state["surrogate_rows"]
    if rows is not None and (Path(rows).name != rows or not (out / CHECKPOINT / rows).is_file()):
        raise SchemaError(f"{path}: damaged checkpoint: surrogate_rows {safe(rows)!r} is not a file beside it")
    return state


#: How a checkpoint writes the floats JSON has no numbers for (NSGA-II's boundary crowding distance is infinite,
#: a generation without true evaluations has a NaN best): resuming must see exactly the values it stopped with.
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _encode(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _decode(value: Any) -> Any:
    return _NON_FINITE[value] if isinstance(value, str) and value in _NON_FINITE else value


def save_checkpoint(config: EvolveConfig, state: State, features_sha: str) -> None:
    """Writes OUT/checkpoint/: the surrogate's rows (a file per generation) first, then state.json naming it, each
    renamed into place, so the checkpoint on disk is always one complete generation."""
    folder = config.output / CHECKPOINT
    folder.mkdir(exist_ok=True)
    rows_file = None
    if state.surrogate is not None and state.surrogate.x is not None:
        rows_file = f"surrogate-{state.generation:05d}.npz"
        with io.atomic_output(folder / rows_file) as handle:
            handle.write(_npz_bytes(x=state.surrogate.x, y=state.surrogate.y))
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()
    doc = {
        "schema": CHECKPOINT_SCHEMA,
        "version": CHECKPOINT_VERSION,
        "config": config.to_params(),
        "features_sha256": features_sha,
        "generation": state.generation,
        "population": [
            [
                ind.json,
                [_encode(v) for v in ind.fitness.values],
                ind.estimated,
                _encode(getattr(ind.fitness, "crowding_dist", None)),
            ]
            for ind in state.population
        ],
        "random_state": [version, list(internal), gauss],
        "numpy_state": [np_state[0], np_state[1].tolist(), *[float(v) for v in np_state[2:]]],
        "log": [{k: _encode(v) for k, v in row.items()} for row in state.log],
        "hall": [{k: _encode(v) for k, v in asdict(e).items()} for e in state.hall.entries],
        "archive": [{k: _encode(v) for k, v in asdict(e).items()} for e in state.archive],
        "fraction": state.fraction,
        "surrogate_rows": rows_file,
    }
    with io.atomic_output(folder / "state.json") as handle:
        handle.write(io.dumps(doc).encode())
    for old in folder.glob("surrogate-*.npz"):
        if old.name != rows_file:
            old.unlink(missing_ok=True)


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    import io as stdio

    buffer = stdio.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _restore(doc: dict[str, Any], config: EvolveConfig, pset: Any, market: Market, terminals: Terminals) -> State:
    population = []
    where = config.output / CHECKPOINT / "state.json"
    for text, values, estimated, crowding in doc["population"]:
        try:
            ind = _individual(text, pset, config.dual)
        except DataError as exc:
            raise SchemaError(f"{where}: damaged checkpoint: a population tree: {' '.join(str(exc).split())}") from None
        if len(values) != (2 if config.dual else 1):
            raise SchemaError(f"{where}: damaged checkpoint: a fitness has {len(values)} values")
        ind.fitness.values = tuple(float(_decode(v)) for v in values)
        ind.estimated = bool(estimated)
        if crowding is not None:  # NSGA-II's tournament reads it; it depends on the pool it was computed in
            ind.fitness.crowding_dist = _decode(crowding)
        population.append(ind)
    try:
        version, internal, gauss = doc["random_state"]
        random.setstate((version, tuple(internal), gauss))
        kind, keys, pos, has_gauss, cached = doc["numpy_state"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), float(cached)))
    except (TypeError, ValueError, OverflowError) as exc:
        raise SchemaError(f"{where}: damaged checkpoint: random generator state ({exc})") from None
    hall = Hall(config.hall_size, market, terminals.features)
    hall.entries = [Entry(**{k: _decode(v) for k, v in e.items()}) for e in doc["hall"]]
    model = None
    if config.surrogate:
        model = sae.Surrogate(config.seed)
        if doc["surrogate_rows"]:
            with np.load(config.output / CHECKPOINT / doc["surrogate_rows"]) as rows:
                model.add(rows["x"], rows["y"])
        model.fit()
    archive = [Entry(**{k: _decode(v) for k, v in e.items()}) for e in doc["archive"]]
    log = [{k: _decode(v) for k, v in row.items()} for row in doc["log"]]
    return State(doc["generation"], population, log, hall, doc["fraction"], model, archive)


EvaluatorFactory = Callable[[Market, BacktestParams], Evaluator]


class Adversary:
    """Adversarial fitness (--dsg): each tree traded in the DSG-populated simulator, mean PnL over the seeds."""

    def __init__(self, config: EvolveConfig, market: Market) -> None:
        from apexctl.forge.dual import dsg_text
        from apexctl.forge.sim import INSTRUMENTS, check_symbol

        self.dsg = None if config.dsg in (None, "default") else dsg_text(config.dsg)
        self.seeds = list(config.sim_seeds)
        self.hours = config.sim_hours
        self.symbol = config.sim_symbol or (market.symbol if market.symbol in INSTRUMENTS else "BTCUSDT")
        check_symbol(self.symbol, "--sim-symbol")
        self.features = {"rv_bars": market.rv_bars, "vmd_modes": market.vmd_modes, "vmd_window": market.vmd_window}
        self.cache: dict[str, float] = {}

    def score(self, trees: Sequence[str]) -> list[float]:
        from apexctl.forge.dual import adversarial_fitness

        todo = list(dict.fromkeys(t for t in trees if t not in self.cache))
        for first in range(0, len(todo), BATCH):
            chunk = todo[first : first + BATCH]
            result = adversarial_fitness(chunk, self.dsg, self.seeds, self.hours, self.symbol, **self.features)
            self.cache.update(zip(chunk, (float(v) for v in result.mean_pnl), strict=True))
        return [self.cache[t] for t in trees]


def _vary(population: list[Any], toolbox: base.Toolbox, config: EvolveConfig) -> list[Any]:
    """Parents (tournament, or NSGA-II's dominance/crowding tournament with --dsg), crossover, mutation."""
    select = tools.selTournamentDCD if config.dual else toolbox.select
    offspring = [toolbox.clone(ind) for ind in select(population, len(population))]
    for i in range(1, len(offspring), 2):
        if random.random() < config.cx_prob:
            # The returned children, not the arguments: the size limits replace an oversized child by a parent in
            # what they return, while the crossover has already grown the arguments in place.
            offspring[i - 1], offspring[i] = toolbox.mate(offspring[i - 1], offspring[i])
            if offspring[i] is offspring[i - 1]:  # both children replaced by the same kept parent
                offspring[i] = toolbox.clone(offspring[i])
            del offspring[i - 1].fitness.values, offspring[i].fitness.values
    for i, ind in enumerate(offspring):
        if random.random() < config.mut_prob:
            (offspring[i],) = toolbox.mutate(ind)
            del offspring[i].fitness.values
    return offspring


def evolve(
    config: EvolveConfig,
    on_generation: Callable[[dict[str, Any]], None] | None = None,
    *,
    resume: bool = False,
    make_evaluator: EvaluatorFactory | None = None,
) -> Result:
    """Runs the evolution (or continues a checkpointed one with `resume`); deterministic for a given seed (Python's
    and NumPy's generators are seeded here, LightGBM is seeded, single-threaded and leaves them untouched).

    The expensive objective is screened by the surrogate when it is on: the backtest fitness alone, or with --dsg
    the simulator PnL (then every new tree is backtested, and its backtest metrics are surrogate features too)."""
    config.validate()
    if resume and config.features == io.STDIO:
        raise UsageError("--resume needs the features as a file; the run read them from stdin")
    market = load_market(config.features, config.symbol, config.train_fraction)
    terminals = terminals_for(config, market)
    adversary = Adversary(config, market) if config.dual else None
    checkpoint = _read_checkpoint(config.output) if resume else None
    features_sha = io.sha256_file(config.features) if config.features != io.STDIO else ""
    if checkpoint is not None and checkpoint["features_sha256"] != features_sha:
        raise InputError(f"{config.features}: changed since the checkpointed run started; --resume needs the same data")
    created = prepare_output(config.output, resume)
    with contextlib.ExitStack() as cleanup:
        cleanup.enter_context(_discard_on_failure(config.output, resume, created))
        pset = primitive_set(terminals.features)
        for k in terminals.windows:
            if all(t.value != k for t in pset.terminals[Window]):
                pset.addTerminal(k, Window)
        toolbox = _toolbox(pset, config)
        evaluator = (
            Evaluator(market, config.backtest, ray=config.ray)
            if make_evaluator is None
            else make_evaluator(market, config.backtest)
        )
        featurizer = (
            sae.Featurizer(
                terminals.features, _columns_of(market, terminals.features), _close(market), market.train_end
            )
            if config.surrogate
            else None
        )
        train = (0, market.train_end)
        started = time.perf_counter()
        evaluations = 0

        if checkpoint is not None:
            state = _restore(checkpoint, config, pset, market, terminals)
        else:
            random.seed(config.seed)
            np.random.seed(config.seed % 2**32)
            state = State(
                generation=-1,
                population=initial_population(toolbox, pset, config, terminals.seeds),
                log=[],
                hall=Hall(config.hall_size, market, terminals.features),
                fraction=config.eval_fraction,
                surrogate=sae.Surrogate(config.seed) if config.surrogate else None,
            )

        for generation in range(state.generation + 1, config.gens + 1):
            tick = time.perf_counter()
            parents = state.population
            population = _vary(parents, toolbox, config) if generation > 0 else parents
            invalid = [ind for ind in population if not ind.fitness.valid]
            for ind in invalid:
                ind.json = to_json(ind)
            # One representative per distinct text: the surrogate ranks texts, the evaluators score texts.
            unique: dict[str, Any] = {}
            for ind in invalid:
                unique.setdefault(ind.json, ind)
            texts = list(unique)
            position = {t: i for i, t in enumerate(texts)}
            causal: dict[str, float] = {}
            extra = None
            if adversary is not None:  # the backtest is the cheap objective: every new tree gets it
                metrics = evaluator.score(texts, train)
                causal = {t: m["fitness"] for t, m in zip(texts, metrics, strict=True)}
                extra = np.array([[m[k] for k in METRICS] for m in metrics], dtype=np.float64).reshape(len(texts), -1)

            def expensive(picked: list[str]) -> list[float]:
                if adversary is not None:
                    return adversary.score(picked)
                return [m["fitness"] for m in evaluator.score(picked, train)]

            used_fraction, corr = 1.0, None
            model = state.surrogate
            features = predicted = chosen = None
            truth: dict[str, float] = {}
            trained: list[int] = []  # rows the model has already been given this generation (the warm-up sample)
            picked = list(range(len(texts)))
            if model is not None and featurizer is not None:
                features = featurizer.rows([unique[t] for t in texts], texts)
                if extra is not None:
                    features = np.hstack([features, extra])
                if not model.ready and len(texts) > sae.WARMUP_ROWS:
                    # No model yet and many trees: fit one on a random sample first, so it screens the rest already.
                    trained = sorted(random.sample(range(len(texts)), sae.WARMUP_ROWS))
                    truth.update(zip((texts[i] for i in trained), expensive([texts[i] for i in trained]), strict=True))
                    model.add(features[trained], [truth[texts[i]] for i in trained])
                    model.fit()
                if model.ready and texts:
                    used_fraction = state.fraction
                    rest = [i for i in range(len(texts)) if texts[i] not in truth]
                    predicted = model.predict(features)
                    screened = sae.screen(predicted[rest].tolist(), used_fraction, random)
                    chosen = sae.Screen([rest[i] for i in screened.evaluate], [rest[i] for i in screened.holdout])
                    picked = sorted([*trained, *chosen.evaluate])
            todo = [i for i in picked if texts[i] not in truth]
            truth.update(zip((texts[i] for i in todo), expensive([texts[i] for i in todo]), strict=True))
            if predicted is not None and chosen is not None:
                corr = sae.spearman(predicted[chosen.holdout].tolist(), [truth[texts[i]] for i in chosen.holdout])
            for ind in invalid:
                value = truth.get(ind.json)
                ind.estimated = value is None
                if value is None:
                    assert predicted is not None
                    value = float(predicted[position[ind.json]])
                ind.fitness.values = (causal[ind.json], value) if adversary is not None else (value,)
            if model is not None and features is not None:
                warmed = set(trained)
                fresh_rows = [i for i in picked if i not in warmed]
                model.add(features[fresh_rows], [truth[texts[i]] for i in fresh_rows])
                model.fit()
                if predicted is not None:
                    state.fraction = sae.next_fraction(
                        state.fraction, corr, config.eval_fraction, config.surrogate_min_corr
                    )
            if adversary is not None:
                population = tools.selNSGA2(parents + population if generation > 0 else population, config.pop)
                fresh = [Entry(t, causal[t], len(unique[t]), unique[t].height, truth[t]) for t in truth]
                state.archive = pareto_front([*state.archive, *fresh])
            else:
                fresh = [Entry(t, truth[t], len(unique[t]), unique[t].height) for t in truth]
            state.hall.update(fresh)
            evaluations += len(picked)
            state.log.append(
                _log_row(generation, population, len(picked), len(texts) - len(picked), used_fraction, corr)
            )
            state.log[-1]["seconds"] = time.perf_counter() - tick
            state.population = population
            state.generation = generation
            save_checkpoint(config, state, features_sha)
            if on_generation is not None:
                on_generation(state.log[-1])

        fame = _rescore(state.hall.entries, evaluator, market)
        pareto = _rescore(state.archive, evaluator, market) if adversary is not None else []
        generations = pl.DataFrame(state.log, schema=GENERATIONS.polars_schema())
        return Result(market, generations, fame, evaluations, time.perf_counter() - started, pareto, terminals.requests)


def _log_row(
    generation: int, population: list[Any], evaluated: int, estimated: int, fraction: float, corr: float | None
) -> dict[str, Any]:
    """One generations.parquet row: fitness statistics over the truly evaluated members of the population."""
    causal = [ind.fitness.values[0] for ind in population if not ind.estimated or len(ind.fitness.values) > 1]
    adversarial = [ind.fitness.values[1] for ind in population if len(ind.fitness.values) > 1 and not ind.estimated]
    return {
        "generation": generation,
        "best": max(causal) if causal else float("nan"),
        "median": statistics.median(causal) if causal else float("nan"),
        "best_adversarial": max(adversarial) if adversarial else None,
        "median_adversarial": statistics.median(adversarial) if adversarial else None,
        "diversity": len({ind.json for ind in population}) / len(population),
        "evaluations": evaluated,
        "estimated": estimated,
        "eval_fraction": fraction,
        "surrogate_spearman": corr,
        "seconds": 0.0,
    }


def _rescore(entries: Sequence[Entry], evaluator: Evaluator, market: Market) -> list[dict[str, Any]]:
    """Entries with their training and held-out backtest metrics (and simulator PnL with --dsg), ranked."""
    texts = [e.text for e in entries]
    train_scores = evaluator.score(texts, (0, market.train_end))
    held_out = evaluator.score(texts, (market.train_end, market.rows))
    out = []
    for i, (e, tr, ho) in enumerate(zip(entries, train_scores, held_out, strict=True)):
        row = {"rank": i + 1, "tree": json.loads(e.text), "size": e.size, "height": e.height, "train": tr}
        row["held_out"] = ho
        if e.adversarial is not None:
            row["adversarial"] = {"mean_pnl": e.adversarial}
        out.append(row)
    return out


def _columns_of(market: Market, names: Sequence[str]) -> list[np.ndarray]:
    index = {n: i for i, n in enumerate(market.names)}
    return [market.columns[index[n]] for n in names]


def _close(market: Market) -> np.ndarray:
    return market.frame["close"].cast(pl.Float64).to_numpy()


def _pareto_frame(front: Sequence[dict[str, Any]]) -> pl.DataFrame:
    rows = [
        {
            "rank": e["rank"],
            "tree": json.dumps(e["tree"]),
            "size": e["size"],
            "height": e["height"],
            "train_fitness": e["train"]["fitness"],
            "adversarial_pnl": e["adversarial"]["mean_pnl"],
            "train_pnl": e["train"]["pnl"],
            "held_out_fitness": e["held_out"]["fitness"],
            "held_out_pnl": e["held_out"]["pnl"],
            "held_out_trades": e["held_out"]["trades"],
        }
        for e in front
    ]
    return pl.DataFrame(rows, schema=PARETO.polars_schema())


def write(result: Result, config: EvolveConfig, *, locked: bool = False) -> None:
    """Writes hall_of_fame/ (one GP JSON tree per rank + index.json with both scores), generations.parquet and its
    chart generations.png (and pareto.parquet with pareto.png) into a staging folder beside OUT and publishes it as
    OUT in one atomic exchange, carrying over OUT's checkpoint/, so readers see the previous results or the new ones,
    never a mix. `locked`: the caller holds OUT's lock (see `outputs.lock`)."""
    with outputs.staged_folder(config.output, replace=True, keep=True, locked=locked) as staging:
        fame_dir = staging / "hall_of_fame"
        fame_dir.mkdir()
        index = []
        for entry in result.hall_of_fame:
            name = f"{entry['rank']:03d}.json"
            io.write_json(entry["tree"], fame_dir / name)
            index.append({k: v for k, v in entry.items() if k != "tree"} | {"file": name})
        params = config.to_params()
        io.write_json(
            {
                "schema": "apex.hall_of_fame",
                "version": 1,
                "symbol": result.market.symbol,
                "train_rows": [0, result.market.train_end],
                "held_out_rows": [result.market.train_end, result.market.rows],
                "features": result.market.names,
                "params": params,
                "seed_requests": result.seed_requests,
                "entries": index,
            },
            fame_dir / "index.json",
        )
        inputs = {config.features: io.sha256_file(config.features)} if config.features != "-" else {}
        inputs |= {r["file"]: r["sha256"] for r in result.seed_requests}
        io.write_table(
            result.generations,
            staging / "generations.parquet",
            schema=GENERATIONS,
            producer="evolve",
            inputs=inputs,
            params=params,
        )
        plots.generations_png(result.generations, staging / "generations.png")
        if config.dual:
            front = _pareto_frame(result.pareto)
            io.write_table(
                front,
                staging / "pareto.parquet",
                schema=PARETO,
                producer="evolve",
                inputs=inputs,
                params=params,
            )
            plots.pareto_png(front, staging / "pareto.png")
