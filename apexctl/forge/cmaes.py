"""The chimera: CMA-ES (pycma) fits the simulator's DSG to a target market by the method of simulated moments.

Each CMA-ES candidate is a point of [0, 1]^n mapped onto the bounds of the searched DSG parameters (log scale for
parameters spanning two decades or more, so a latency of 2 ms and one of 200 ms are equally reachable); it is
simulated on the same K seeds as every other candidate (common random numbers: differences between candidates
are the parameters', not the dice's), the moments are averaged over the seeds, and the objective is

    mean over moments m of ((simulated_m - target_m) / scale_m)^2

with scale_m the standard deviation of moment m across seeds at the initial DSG (inverse-variance weights), floored
so that a moment the simulator happens to reproduce exactly cannot take over the objective.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from apexctl import _core
from apexctl.console import safe
from apexctl.errors import InputError, UsageError
from apexctl.forge import io, outputs, ranges, time_windows
from apexctl.forge import moments as mom
from apexctl.forge.cluster import Cluster
from apexctl.forge.feedback import steps
from apexctl.forge.io import read_table, sha256_file
from apexctl.forge.sim import DEFAULT_CADENCE_MS, DEFAULT_DEPTH, INSTRUMENTS
from apexctl.forge.table_checks import check_market_values
from apexctl.schemas.chimera import REPORT_SCHEMA, REPORT_VERSION, ChimeraReport
from apexctl.schemas.tables import BARS, BOOK, CHIMERA_GENERATIONS, TRADES

#: A candidate whose market lacks a moment the target has (no trades, an empty book) pays this per missing moment.
MISSING_PENALTY = 100.0
#: Seeds used to measure the moments' spread at the initial DSG (at least this many, whatever --seeds is).
MIN_CALIBRATION_SEEDS = 6
#: Relative floor of a moment's scale: 2% of its target (plus an absolute epsilon).
SCALE_FLOOR = 0.02
#: Step in normalized coordinates of the sensitivity check.
SENSITIVITY_STEP = 0.15
#: A parameter is identified when moving it by the step moves the moments by this many times the seed noise.
IDENTIFIED_RATIO = 3.0
#: Cap of one standardized moment's change in the sensitivity check.
SENSITIVITY_CAP = 10.0
#: Extra seed sets the optimum is re-simulated on to measure the seed noise of the sensitivity check.
NOISE_SEED_SETS = 2
SEEDS = ranges.IntRange(1, 1_000)
POPSIZE = ranges.IntRange(2, 10_000)
SIGMA = ranges.FloatRange(0.0, 0.5, low_open=True)
#: The tables of a target folder (`fetch -o DIR`); bars are optional.
TARGET_TABLES = ("trades", "book", "bars")


@dataclass(frozen=True)
class Param:
    """One DSG parameter as `_core.dsg_params` describes it."""

    name: str
    lo: float
    hi: float
    default: float
    integer: bool
    doc: str

    @property
    def log_scale(self) -> bool:
        return self.lo > 0 and self.hi / self.lo >= 100

    def from_unit(self, u: float) -> float:
        u = min(max(u, 0.0), 1.0)
        if self.log_scale:
            value = math.exp(math.log(self.lo) + u * (math.log(self.hi) - math.log(self.lo)))
        else:
            value = self.lo + u * (self.hi - self.lo)
        value = min(max(value, self.lo), self.hi)
        return float(round(value)) if self.integer else value

    def to_unit(self, value: float) -> float:
        if self.log_scale:
            return (math.log(value) - math.log(self.lo)) / (math.log(self.hi) - math.log(self.lo))
        return (value - self.lo) / (self.hi - self.lo) if self.hi > self.lo else 0.0


def dsg_params() -> list[Param]:
    """Every DSG parameter, in flat-vector order."""
    return [Param(*p) for p in _core.dsg_params()]


def dsg_document(values: Sequence[float]) -> dict[str, Any]:
    """The `apex.dsg` document of a flat vector, validated and normalized by the Rust crate."""
    params = dsg_params()
    doc = {
        "schema": "apex.dsg",
        "version": 1,
        "params": {p.name: float(v) for p, v in zip(params, values, strict=True)},
    }
    return json.loads(_core.dsg_normalize(json.dumps(doc)))


def dsg_vector(normalized_json: str) -> np.ndarray:
    """The flat vector of a normalized DSG document."""
    given = json.loads(normalized_json)["params"]
    return np.array([given[p.name] for p in dsg_params()], dtype=np.float64)


# ---------------------------------------------------------------- simulation of candidates


@dataclass(frozen=True)
class SimTemplate:
    """What every simulated market shares: instrument, span, book stream, moment settings."""

    symbol: str
    hours: float
    book_depth: int = DEFAULT_DEPTH
    cadence_ms: int = DEFAULT_CADENCE_MS
    moments: mom.MomentConfig = field(default_factory=mom.MomentConfig)
    #: Levels per side the target's book was recorded at: the candidates' depth moments count no more levels than
    #: the target's can (None = the simulated book's own depth).
    target_depth: int | None = None
    #: Threads per batch (None = all cores); each runs one Rust simulation with the GIL released.
    threads: int | None = None


def simulate_items(template: SimTemplate, items: Sequence[tuple[str, int]]) -> list[dict[str, float]]:
    """Moments of each (DSG JSON, seed) market; the simulations run in parallel (the Rust call releases the GIL).

    Module-level so a Ray worker can run it on its batch (see `Cluster.map`).
    """

    def one(item: tuple[str, int]) -> dict[str, float]:
        dsg_json, seed = item
        out = _core.sim_run(
            template.symbol,
            dsg_json=dsg_json,
            seed=seed,
            hours=template.hours,
            book_depth=template.book_depth,
            book_cadence_ms=template.cadence_ms,
        )
        depth = (
            template.book_depth if template.target_depth is None else min(template.book_depth, template.target_depth)
        )
        return mom.from_sim_output(out, template.moments, depth)

    workers = template.threads or os.cpu_count() or 1
    if workers == 1 or len(items) == 1:
        return [one(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(one, items))


# ---------------------------------------------------------------- the fit


@dataclass(frozen=True)
class ChimeraConfig:
    """What `apexctl chimera` does."""

    target: str
    output: Path
    init: str | None = None
    budget: int = 200
    seeds: int = 4
    hours: float = 0.25
    seed: int = 0
    popsize: int | None = None
    sigma0: float = 0.3
    params: tuple[str, ...] | None = None
    symbol: str | None = None
    ray: str | None = None
    sensitivity: bool = True
    moments: mom.MomentConfig = field(default_factory=mom.MomentConfig)

    def validate(self) -> None:
        ranges.BUDGET.check(self.budget, "--budget")
        SEEDS.check(self.seeds, "--seeds")
        ranges.HOURS.check(self.hours, "--hours")
        ranges.SEED.check(self.seed, "--seed")
        SIGMA.check(self.sigma0, "--sigma")
        if self.popsize is not None:
            POPSIZE.check(self.popsize, "--popsize")


@dataclass(frozen=True)
class TargetData:
    symbol: str
    moments: dict[str, float]
    inputs: dict[str, str]
    span_hours: float
    #: Levels per side the target's book shows (`moments.recorded_depth`); deeper depth moments are NaN.
    book_depth: int


def report_paths(output: Path) -> tuple[Path, Path]:
    """The fit report and generation log sit next to the DSG: dsg.json -> dsg.report.json, dsg.generations.parquet
    (so the DSG is a file, not stdout)."""
    outputs.refuse_stdout(output)
    stem = output.name[: -len(".json")] if output.name.endswith(".json") else output.name
    return output.with_name(f"{stem}.report.json"), output.with_name(f"{stem}.generations.parquet")


def target_files(directory: str | Path) -> list[Path]:
    """The tables a target folder may hold (what chimera reads from it)."""
    return [Path(directory) / f"{name}.parquet" for name in TARGET_TABLES]


def _trade_symbols(trades: io.TableFile) -> list[str]:
    """The symbols of a target's trades, read a row group at a time with their prices and sizes (checked as the
    statistics need them): a month of several symbols' trades would not fit in memory whole."""
    symbols: set[str] = set()
    for _, first_row, part in trades.groups(["symbol", "price", "size"]):
        check_market_values(part, trades.source, {"price": False, "size": False}, first_row=first_row)
        symbols.update(part["symbol"].unique().to_list())
    return sorted(symbols)


def _symbol_trades(trades: io.TableFile, symbol: str) -> pl.DataFrame:
    """The target trades of `symbol`, of the columns the statistics read (time, side, size), read a row group at a
    time."""
    columns = ["ts", "symbol", "side", "size"]
    kept = [part.filter(pl.col("symbol") == symbol).drop("symbol") for _, _, part in trades.groups(columns)]
    return io.contiguous(kept)


def _survey_book(book: io.TableFile) -> time_windows.Books:
    """The target book surveyed for its symbols, spans and decimals, its prices and sizes checked as the
    statistics need them."""

    def check(group: time_windows.RowGroup, part: pl.DataFrame) -> None:
        check_market_values(part, book.source, {"price": False, "size": True}, first_row=group.first_row)

    return time_windows.survey([(0, book)], check)


def _book_view(books: time_windows.Books, symbol: str, config: mom.MomentConfig) -> mom.BookView:
    """The moments' view of the target book's rows of `symbol`, read a time window at a time."""
    span = books.spans.filter(pl.col("symbol") == symbol).row(0, named=True)
    view = mom.BookPass((span["first"], span["last"]), books.decimals, config)
    kept = ("ts", "kind", "side", "price", "size", "update_id", "seq")
    with steps(f"reading the {safe(symbol)} book (rows)", books.rows) as bar:
        for window in books.windows():
            piece = window.frame.filter(pl.col("symbol") == symbol).select(kept)
            if piece.height:
                view.push(mom.by_time(piece))
            bar.advance(window.frame.height)
    return view.finish()


def load_target(directory: str, symbol: str | None, config: mom.MomentConfig) -> TargetData:
    """Reads DATA_DIR/{trades,book,bars}.parquet (bars optional) and computes the target moments of one symbol."""
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"--target {directory}: not a folder (give the folder `apexctl fetch -o` wrote)")
    paths = dict(zip(TARGET_TABLES, target_files(root), strict=True))
    for name in ("trades", "book"):
        if not paths[name].exists():
            raise InputError(f"--target {directory}: no {name}.parquet (run apexctl fetch ... -o {directory} first)")
    # The statistics are computed here, in Python: a NaN or negative price would pass into them unnoticed.
    trades_file = io.open_table(paths["trades"], TRADES)
    book_file = io.open_table(paths["book"], BOOK)
    bars = read_table(paths["bars"], BARS).frame if paths["bars"].exists() else None
    trade_symbols = _trade_symbols(trades_file)
    books = _survey_book(book_file)
    if bars is not None:
        ohlcv = {"open": False, "high": False, "low": False, "close": False, "volume": True}
        check_market_values(bars, str(paths["bars"]), ohlcv)
    held = [pl.DataFrame({"symbol": found}, schema={"symbol": pl.String}) for found in (trade_symbols, books.symbols)]
    where, files = f"--target {directory}", (str(paths["trades"]), str(paths["book"]))
    chosen = mom.pick_symbol(*held, symbol, where, files)
    if chosen not in INSTRUMENTS:
        raise InputError(
            f"--target {directory}: symbol {chosen} has no simulator preset (known: {', '.join(INSTRUMENTS)}); "
            "pick one with --symbol"
        )
    trades = _symbol_trades(trades_file, chosen)
    book = _book_view(books, chosen, config)
    bars = bars.filter(pl.col("symbol") == chosen) if bars is not None else None
    # A book recorded at depth 1 cannot show the depth over 5 levels: those moments are NaN, left out of the fit.
    depth = mom.recorded_depth(book, book_file.metadata, config)
    target = mom.compute(trades, book, bars, config, depth)

    def hours(ts: np.ndarray) -> float:
        return (int(ts.max()) - int(ts.min())) / 3.6e12 if len(ts) else 0.0

    span_hours, trade_hours = hours(book.touch_ts), hours(trades["ts"].to_numpy())
    count = trades.height
    if count < 50 or trade_hours < 1 / 12:
        raise InputError(
            f"--target {directory}: too little data for {chosen} ({count} trades over {trade_hours * 60:.1f} "
            "minutes); give at least 5 minutes and 50 trades"
        )
    if span_hours < 1 / 12:
        raise InputError(
            f"--target {directory}: too little data for {chosen} (book.parquet covers {span_hours * 60:.1f} "
            "minutes); give at least 5 minutes of order book"
        )
    usable = {k: v for k, v in target.items() if np.isfinite(v)}
    if len(usable) < 5:
        raise InputError(f"--target {directory}: only {len(usable)} market statistics are computable for {chosen}")
    inputs = {str(p): sha256_file(p) for p in paths.values() if p.exists()}
    return TargetData(chosen, target, inputs, span_hours, depth)


@dataclass
class Objective:
    """Target moments, their scales, and the distance of simulated moments to them."""

    names: list[str]
    target: np.ndarray
    scale: np.ndarray

    @property
    def weight(self) -> np.ndarray:
        return np.where(np.isfinite(self.scale), 1.0 / self.scale**2, 0.0)

    def used(self) -> np.ndarray:
        return np.isfinite(self.target) & np.isfinite(self.scale)

    def z(self, simulated: np.ndarray) -> np.ndarray:
        return (simulated - self.target) / self.scale

    def __call__(self, simulated: np.ndarray) -> float:
        used = self.used()
        z = self.z(simulated)[used]
        missing = ~np.isfinite(z)
        return float((np.sum(z[~missing] ** 2) + MISSING_PENALTY * missing.sum()) / max(used.sum(), 1))


def _mean_moments(rows: Sequence[dict[str, float]], names: list[str]) -> np.ndarray:
    table = np.array([[row[n] for n in names] for row in rows], dtype=np.float64)
    with np.errstate(all="ignore"):
        counts = np.isfinite(table).sum(axis=0)
        sums = np.where(np.isfinite(table), table, 0.0).sum(axis=0)
        # A moment missing in most seeds is missing.
        return np.where(counts * 2 > len(rows), sums / np.maximum(counts, 1), np.nan)


def make_objective(names: list[str], target: dict[str, float], calibration: Sequence[dict[str, float]]) -> Objective:
    """Scales = standard deviation of each moment across the calibration seeds, floored (see SCALE_FLOOR)."""
    t = np.array([target[n] for n in names], dtype=np.float64)
    table = np.array([[row[n] for n in names] for row in calibration], dtype=np.float64)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        std = np.nanstd(table, axis=0, ddof=1) if len(calibration) > 1 else np.full(len(names), np.nan)
    floor = SCALE_FLOOR * np.abs(t) + 1e-6
    enough = np.isfinite(table).sum(axis=0) >= 2
    scale = np.where(enough & np.isfinite(std), np.maximum(std, floor), np.nan)
    return Objective(names, t, scale)


@dataclass
class FitResult:
    symbol: str
    dsg: dict[str, Any]
    report: dict[str, Any]
    generations: pl.DataFrame
    evaluations: int
    seconds: float


def _seed_list(seed: int, count: int, salt: int) -> list[int]:
    rng = np.random.default_rng([seed, salt])
    return [int(s) for s in rng.integers(0, 2**62, size=count)]


@dataclass(frozen=True)
class SearchSpace:
    """The DSG parameters CMA-ES moves (indices into `params`), the rest held at the initial DSG."""

    params: list[Param]
    searched: list[int]
    popsize: int
    initial: np.ndarray

    def to_vector(self, unit: np.ndarray) -> np.ndarray:
        """The DSG vector of a point of [0, 1]^n (the searched parameters mapped onto their bounds)."""
        vector = self.initial.copy()
        for index, u in zip(self.searched, unit, strict=True):
            vector[index] = self.params[index].from_unit(float(u))
        return vector

    def to_unit(self) -> np.ndarray:
        """The initial DSG as a point of [0, 1]^n: CMA-ES's starting mean."""
        return np.array([self.params[i].to_unit(self.initial[i]) for i in self.searched])


def search_space(config: ChimeraConfig, initial: np.ndarray) -> SearchSpace:
    """The searched parameters (--params, or every one with a range) and the population size; UsageError when the
    names are unknown, repeated, fewer than 2, or the budget is less than one generation."""
    all_params = dsg_params()
    by_name = {p.name: p for p in all_params}
    searched_names = list(config.params) if config.params else [p.name for p in all_params if p.hi > p.lo]
    unknown = [n for n in searched_names if n not in by_name]
    if unknown:
        raise UsageError(f"--params: unknown DSG parameter(s) {', '.join(unknown)}; see `apexctl chimera --help`")
    repeated = [n for n in dict.fromkeys(searched_names) if searched_names.count(n) > 1]
    if repeated:
        raise UsageError(f"--params: {', '.join(repeated)} given more than once; name each parameter once")
    searched = [all_params.index(by_name[n]) for n in dict.fromkeys(searched_names)]
    popsize = config.popsize or 4 + int(3 * math.log(len(searched)))
    if len(searched) < 2:
        raise UsageError("--params: search at least 2 parameters (CMA-ES needs a dimension of 2 or more)")
    if config.budget < popsize:
        raise UsageError(f"--budget {config.budget} is less than one generation ({popsize} candidates); raise it")
    return SearchSpace(all_params, searched, popsize, initial)


class Simulations:
    """Mean moments of DSG vectors over seeds, run locally or on a Ray cluster (one template shared by the tasks)."""

    def __init__(self, cluster: Cluster, template: SimTemplate, names: list[str]) -> None:
        self.cluster = cluster
        self.shared = cluster.put(template)
        self.names = names

    def _batch_size(self, items: int, on_cluster: int) -> int:
        # Here: one batch, so every core has a simulation. On a cluster a simulation is long enough (~0.1-1 s)
        # to be worth a task of its own: one candidate's seeds per task spreads a generation over the nodes.
        return on_cluster if self.cluster.distributed else max(items, 1)

    def per_seed(self, vector: np.ndarray, seeds: Sequence[int]) -> list[dict[str, float]]:
        """The moments of one DSG on each seed."""
        text = json.dumps(dsg_document(vector))
        return self.cluster.map(
            simulate_items, self.shared, [(text, s) for s in seeds], batch_size=self._batch_size(len(seeds), 1)
        )

    def __call__(self, vectors: Sequence[np.ndarray], seeds: Sequence[int]) -> list[np.ndarray]:
        """The moments of each DSG, averaged over the seeds (the same seeds for every DSG)."""
        texts = [json.dumps(dsg_document(v)) for v in vectors]
        items = [(text, s) for text in texts for s in seeds]
        rows = self.cluster.map(simulate_items, self.shared, items, batch_size=self._batch_size(len(items), len(seeds)))
        k = len(seeds)
        return [_mean_moments(rows[i * k : (i + 1) * k], self.names) for i in range(len(vectors))]


@dataclass
class Search:
    """What the CMA-ES loop found: the best (objective, vector, moments), its log and the candidates it paid for."""

    best: tuple[float, np.ndarray, np.ndarray]
    log: list[dict[str, Any]]
    evaluations: int
    generations: int


def cma_search(
    config: ChimeraConfig,
    space: SearchSpace,
    simulate: Simulations,
    objective: Objective,
    start: tuple[float, np.ndarray, np.ndarray],
    seeds: list[int],
    on_generation: Callable[[dict[str, Any]], None] | None,
) -> Search:
    """CMA-ES over the searched parameters until the budget or its own stop, then the distribution's mean."""
    with warnings.catch_warnings():
        # pycma warns at import that it cannot plot without matplotlib; it never needs to here.
        warnings.simplefilter("ignore", UserWarning)
        import cma

    options = {
        "bounds": [0.0, 1.0],
        "popsize": space.popsize,
        # pycma treats seed 0 as "from the clock" and seeds NumPy with it (below 2^32): shift into 1..2^32-1, so
        # every --seed is reproducible (only 2^32-1 shares its CMA-ES seed with 0; its simulation seeds differ).
        "seed": config.seed % (ranges.SEED_MAX) + 1,
        "verbose": -9,
        "maxfevals": config.budget,
        "tolfun": 1e-12,
        "tolx": 1e-6,
    }
    es = cma.CMAEvolutionStrategy(space.to_unit(), config.sigma0, options)
    search = Search(start, [], 0, 0)
    while search.evaluations + space.popsize <= config.budget and not es.stop():
        tick = time.perf_counter()
        units = es.ask()
        vectors = [space.to_vector(np.asarray(u)) for u in units]
        simulated = simulate(vectors, seeds)
        values = [objective(m) for m in simulated]
        es.tell(units, values)
        search.evaluations += len(units)
        for value, vector, moments in zip(values, vectors, simulated, strict=True):
            if value < search.best[0]:
                search.best = (value, vector, moments)
        search.generations += 1
        row = {
            "generation": search.generations,
            "best": float(min(values)),
            "median": float(np.median(values)),
            "best_so_far": float(search.best[0]),
            "sigma": float(es.sigma),
            "evaluations": len(units),
            "simulations": len(units) * len(seeds),
            "seconds": time.perf_counter() - tick,
        }
        search.log.append(row)
        if on_generation is not None:
            on_generation(row)
    if search.generations > 0:
        # The distribution's mean is the search's own estimate and often better than any single sample.
        mean_vector = space.to_vector(np.clip(np.asarray(es.mean), 0.0, 1.0))
        mean_moments = simulate([mean_vector], seeds)[0]
        mean_objective = objective(mean_moments)
        search.evaluations += 1
        if mean_objective < search.best[0]:
            search.best = (mean_objective, mean_vector, mean_moments)
    return search


def fit(
    config: ChimeraConfig,
    on_generation: Callable[[dict[str, Any]], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> FitResult:
    """Runs the fit; deterministic for a given config (seeds, CMA-ES's generator and the simulations are seeded)."""
    config.validate()
    phase = on_phase or (lambda _text: None)
    started = time.perf_counter()
    init_text = None
    if config.init is not None:
        from apexctl.forge.sim import load_dsg

        init_text = load_dsg(config.init, "omit --init to start from the built-in DSG")[1]
    space = search_space(config, dsg_vector(init_text or _core.dsg_normalize(None)))

    phase("reading the target market")
    target = load_target(config.target, config.symbol, config.moments)
    names = config.moments.names()
    template = SimTemplate(target.symbol, config.hours, moments=config.moments, target_depth=target.book_depth)
    seeds = _seed_list(config.seed, max(config.seeds, MIN_CALIBRATION_SEEDS), salt=1)
    fit_seeds = seeds[: config.seeds]

    with Cluster(config.ray) as cluster:
        simulate = Simulations(cluster, template, names)
        phase(f"measuring the moments' spread over {len(seeds)} seeds at the initial DSG")
        calibration_rows = simulate.per_seed(space.initial, seeds)
        objective = make_objective(names, target.moments, calibration_rows)
        initial_moments = _mean_moments(calibration_rows[: config.seeds], names)
        initial_objective = objective(initial_moments)
        dim = len(space.searched)
        phase(f"fitting {dim} parameters: popsize {space.popsize}, budget {config.budget}, {config.seeds} seeds")
        start = (initial_objective, space.initial, initial_moments)
        search = cma_search(config, space, simulate, objective, start, fit_seeds, on_generation)
        final_objective, final_vector, final_moments = search.best
        identifiability: list[dict[str, Any]] = []
        if config.sensitivity:
            phase(f"sensitivity of the moments to each of the {dim} parameters at the optimum")
            noise_seeds = [_seed_list(config.seed, config.seeds, salt=2 + i) for i in range(NOISE_SEED_SETS)]
            identifiability = _sensitivity(
                simulate, objective, final_vector, final_moments, space.searched, space.params, fit_seeds, noise_seeds
            )

    dsg = dsg_document(final_vector)
    used = objective.used()
    report = {
        "schema": REPORT_SCHEMA,
        "version": REPORT_VERSION,
        "symbol": target.symbol,
        "target": {"folder": str(config.target), "span_hours": target.span_hours, "inputs": target.inputs},
        "settings": _settings(config, space.popsize, space.searched, space.params),
        "objective": {"initial": initial_objective, "final": final_objective},
        "evaluations": search.evaluations,
        "generations": search.generations,
        "seconds": time.perf_counter() - started,
        "moments": [
            {
                "name": name,
                "target": _num(objective.target[i]),
                "initial": _num(initial_moments[i]),
                "simulated": _num(final_moments[i]),
                "error": _num(final_moments[i] - objective.target[i]),
                "z": _num((final_moments[i] - objective.target[i]) / objective.scale[i]),
                "scale": _num(objective.scale[i]),
                "weight": _num(objective.weight[i]) if used[i] else 0.0,
            }
            for i, name in enumerate(names)
        ],
        "params": [
            {
                "name": p.name,
                "initial": float(space.initial[i]),
                "final": float(dsg["params"][p.name]),
                "lo": p.lo,
                "hi": p.hi,
                "searched": i in space.searched,
                "log_scale": p.log_scale,
            }
            for i, p in enumerate(space.params)
        ],
        "identifiability": identifiability,
    }
    # The document must match its committed schema before anyone reads it.
    ChimeraReport.model_validate(report)
    generations = pl.DataFrame(search.log, schema=CHIMERA_GENERATIONS.polars_schema())
    return FitResult(target.symbol, dsg, report, generations, search.evaluations, time.perf_counter() - started)


def write_fit(result: FitResult, output: Path) -> None:
    """The fitted DSG at `output`, its report and its generation log beside it, published together."""
    report_path, log_path = report_paths(output)
    with io.publish_together():  # the DSG, its report and its log appear together or not at all
        io.write_table(
            result.generations,
            log_path,
            schema=CHIMERA_GENERATIONS,
            producer="chimera",
            inputs=result.report["target"]["inputs"],
            params=result.report["settings"],
        )
        io.write_json(result.report, report_path)
        io.write_json(result.dsg, output)


def _sensitivity(
    simulate: Callable[[Sequence[np.ndarray], Sequence[int]], list[np.ndarray]],
    objective: Objective,
    vector: np.ndarray,
    moments: np.ndarray,
    searched: list[int],
    all_params: list[Param],
    seeds: list[int],
    noise_seeds: list[list[int]],
) -> list[dict[str, Any]]:
    """One-sided finite differences of the standardized moments per parameter, against the seed noise there.

    Moving a parameter by SENSITIVITY_STEP (normalized) changes z = (moments - target) / scale by dz; the same DSG
    simulated on other seed sets changes it by the noise alone. A parameter whose |dz|^2 stays under
    IDENTIFIED_RATIO times that noise is one the moments cannot pin down. Each |dz| is capped at SENSITIVITY_CAP so
    that one moment exploding (a market that breaks down) does not stand for all of them.
    """
    used = objective.used()
    base = objective.z(moments)[used]

    def power(simulated: np.ndarray) -> tuple[float, np.ndarray]:
        dz = objective.z(simulated)[used] - base
        dz = np.where(np.isfinite(dz), np.minimum(np.abs(dz), SENSITIVITY_CAP), SENSITIVITY_CAP)
        return float(np.sum(dz**2)), dz

    noise_runs = [simulate([vector], other)[0] for other in noise_seeds]
    noise = float(np.mean([power(m)[0] for m in noise_runs])) if noise_runs else 2.0 * used.sum() / len(seeds)
    probes, steps = [], []
    for index in searched:
        p = all_params[index]
        u = p.to_unit(vector[index])
        step = SENSITIVITY_STEP if u + SENSITIVITY_STEP <= 1 else -SENSITIVITY_STEP
        probe = vector.copy()
        probe[index] = p.from_unit(u + step)
        probes.append(probe)
        steps.append(step)
    used_names = [n for n, u in zip(objective.names, used, strict=True) if u]
    out = []
    for index, step, simulated in zip(searched, steps, simulate(probes, seeds), strict=True):
        change, dz = power(simulated)
        top = np.argsort(-dz, kind="stable")[:3]
        out.append(
            {
                "param": all_params[index].name,
                "step": step,
                "moment_change": change,
                "noise": noise,
                "ratio": change / noise if noise > 0 else float("inf"),
                "identified": bool(change > IDENTIFIED_RATIO * noise),
                "most_moved": [used_names[i] for i in top],
            }
        )
    return out


def _num(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _settings(config: ChimeraConfig, popsize: int, searched: list[int], params: list[Param]) -> dict[str, Any]:
    return {
        "init": config.init,
        "budget": config.budget,
        "seeds": config.seeds,
        "hours": config.hours,
        "seed": config.seed,
        "popsize": popsize,
        "sigma0": config.sigma0,
        "params": [params[i].name for i in searched],
        "ray": config.ray is not None,
        "moments": asdict(config.moments),
    }
