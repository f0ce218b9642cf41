"""`apexctl causal` logic: PCMCI (tigramite) restricted to the parents of one target column, with parallel MCI.

Pipeline: read a `features` table -> choose or compute the target -> data hygiene (standardize per symbol, drop
all-NaN / mostly-missing / constant / near-duplicate columns with a reason, mask NaN) -> PC1 for the target only ->
MCI of every candidate link, in chunks over a process pool -> optional global FDR -> `apex.causal` JSON.

Rules chosen (also in the README section of the command):
- tau_min defaults to 0: a features row at t is complete at the row's close, which is exactly when the forward return
  log(close[t+h]/close[t]) starts, so a lag-0 link is a usable prediction, not a leak.
- The target's own past enters as candidate (autoregressive) links only at lags that are already known at t: for a
  computed fwd_return over h rows, lags >= h (shorter lags overlap the target's own future window); for an existing
  column, lags >= 1. They are reported apart, in "target_lags".
- Minimum samples: max(MIN_SAMPLES_FLOOR, SAMPLES_PER_LINK * candidate links). The largest regression PC1 may run
  conditions on every other candidate link, and ~10 samples per regressor is the usual floor for stable estimates.
- Near-duplicates: |corr| > DUPLICATE_CORR with an earlier kept column (pairwise-complete rows, all symbols pooled).
- Columns missing in more than MAX_MISSING_FRACTION of the rows are dropped: masking them would remove most samples.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from importlib.metadata import version as package_version
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from pydantic import ValidationError

from apexctl import signals
from apexctl.console import safe
from apexctl.errors import InputError, SchemaError, UsageError
from apexctl.forge import ranges
from apexctl.forge.durations import duration_ns, parse_duration
from apexctl.forge.feedback import note, steps
from apexctl.forge.io import check_numeric_columns, describe, read_json, read_table, write_json
from apexctl.schemas.causal import CAUSAL_SCHEMA, CAUSAL_VERSION, CausalDoc
from apexctl.schemas.tables import FEATURE_KEYS, FEATURES

DUPLICATE_CORR = 0.98
MAX_MISSING_FRACTION = 0.5
SAMPLES_PER_LINK = 10
MIN_SAMPLES_FLOOR = 200
# Standardized data never comes near this value, so it can mark missing samples (tigramite compares for equality,
# so NaN itself cannot be the flag).
MISSING_SENTINEL = -9.87654321e30
FWD_RETURN = re.compile(r"^fwd_return_(\d{1,9})([smhd])$")
SHUFFLES = ranges.IntRange(1, 100_000)


class CondTest(StrEnum):
    """Conditional independence tests of tigramite: linear partial correlation, or non-linear kNN-CMI / GP+dCor."""

    parcorr = "parcorr"
    cmiknn = "cmiknn"
    gpdc = "gpdc"


class Fdr(StrEnum):
    """False-discovery control over the tested links: Benjamini-Hochberg (the default), or none (raw p-values)."""

    none = "none"
    fdr_bh = "fdr_bh"


@dataclass(frozen=True)
class CausalConfig:
    """Options of one `apexctl causal` run (the CLI flags, typed)."""

    target: str = "fwd_return_5m"
    tau_max: int = 10
    tau_min: int = 0
    test: CondTest = CondTest.parcorr
    pc_alpha: float = 0.2
    alpha: float = 0.05
    #: Without it, the hundreds of links tested at --alpha 0.05 report about 5% of the noise links as parents.
    fdr: Fdr = Fdr.fdr_bh
    features: tuple[str, ...] | None = None
    symbol: str | None = None
    jobs: int | None = None
    seed: int = 0
    shuffles: int = 500


@dataclass
class Prepared:
    """Standardized per-symbol arrays (features..., target last) with NaN replaced by the sentinel."""

    arrays: dict[int, np.ndarray]
    var_names: list[str]
    symbols: list[str]
    target_source: str
    target_min_lag: int
    dropped: list[dict[str, str]] = field(default_factory=list)

    @property
    def target_index(self) -> int:
        return len(self.var_names) - 1


# ---------------------------------------------------------------------------------------------------------- target


def forward_return(frame: pl.DataFrame, target: str, source: str) -> tuple[pl.DataFrame, int]:
    """Adds `target` = log(close[t+h] / close[t]) per symbol (rows sorted by ts); returns the frame and h in rows."""
    horizon = parse_duration(target.removeprefix("fwd_return_"), f"--target {target}: the horizon")
    if "close" not in frame.columns:
        raise InputError(
            f"{source}: target '{target}' is not a column and there is no 'close' column to compute it from"
        )
    if "interval" not in frame.columns:
        raise InputError(
            f"{source}: target '{target}' needs the 'interval' column of a bar-grain features table "
            "(use --grain 1m/5m/15m/1h in `apexctl features`, or name an existing column with --target)"
        )
    intervals = frame["interval"].unique().to_list()
    if len(intervals) != 1 or intervals[0] is None:
        raise InputError(
            f"{source}: target '{target}' needs one bar interval, the table has {sorted(map(str, intervals))}"
        )
    interval_ns = duration_ns(str(intervals[0]))
    if not interval_ns:
        raise InputError(f"{source}: interval '{intervals[0]}' is not a bar length like 1m, 5m, 1h")
    if horizon % interval_ns or horizon < interval_ns:
        raise UsageError(
            f"--target {target}: the horizon is not a positive multiple of the table's interval '{intervals[0]}'"
        )
    rows = horizon // interval_ns
    close = pl.col("close").cast(pl.Float64)
    frame = frame.with_columns(
        (close.shift(-rows).over("symbol") / close).log().alias(target),
    )
    return frame, rows


# --------------------------------------------------------------------------------------------------------- hygiene


def _standardize(values: np.ndarray) -> tuple[np.ndarray, float]:
    """(x - mean) / std over the finite values; returns the standardized array and the std (0 when constant)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return values, 0.0
    with np.errstate(over="ignore", invalid="ignore"):  # values near the float limit: the std overflows, checked below
        std = float(finite.std())
    if not std > 0 or not math.isfinite(std):
        return values, 0.0
    return (values - float(finite.mean())) / std, std


def _abs_corr(a: np.ndarray, b: np.ndarray) -> float:
    both = np.isfinite(a) & np.isfinite(b)
    if both.sum() < 3:
        return 0.0
    x, y = a[both] - a[both].mean(), b[both] - b[both].mean()
    denom = math.sqrt(float(x @ x) * float(y @ y))
    return abs(float(x @ y) / denom) if denom > 0 else 0.0


def candidate_features(frame: pl.DataFrame, config: CausalConfig, source: str) -> list[str]:
    """The requested feature columns, or every numeric column that is not an id, the time, or the target."""
    if config.features is not None:
        check_numeric_columns(frame, config.features, source, "--features")
        names = [f for f in dict.fromkeys(config.features) if f != config.target]
    else:
        names = [
            name
            for name, dtype in frame.schema.items()
            if dtype.is_numeric() and name not in FEATURE_KEYS and name != config.target
        ]
    if not names:
        raise InputError(f"{source}: no numeric feature columns besides the target '{config.target}'")
    return names


def _refuse_repeated_bars(frame: pl.DataFrame, source: str) -> None:
    """A bar-grain table holds each (symbol, ts) once: a repeated bar would enter the series twice, as if time had
    moved on (update-grain rows may share a timestamp: several book messages in one millisecond)."""
    if "interval" not in frame.columns:
        return
    repeated = frame.filter(pl.struct("symbol", "ts").is_duplicated())
    if repeated.is_empty():
        return
    first = repeated.row(0, named=True)
    raise InputError(
        f"{source}: {repeated.height:,} rows repeat a bar (symbol {safe(first['symbol'])}, ts {first['ts']} "
        "appears more than once); each bar must appear once: drop the duplicates"
    )


def prepare(frame: pl.DataFrame, config: CausalConfig, source: str) -> Prepared:
    """Target, candidate columns and hygiene; every dropped column gets a reason on stderr and in the result."""
    if config.symbol is not None:
        frame = frame.filter(pl.col("symbol") == config.symbol)
        if frame.is_empty():
            raise InputError(f"{source}: no rows of symbol '{config.symbol}'")
    frame = frame.sort("symbol", "ts", maintain_order=True)
    if frame.is_empty():
        raise InputError(f"{source}: the features table has no rows")
    _refuse_repeated_bars(frame, source)
    if config.target in frame.columns:
        if not frame.schema[config.target].is_numeric():
            raise InputError(f"{source}: target column '{config.target}' is not numeric")
        target_source, target_min_lag = "column", 1
    elif FWD_RETURN.match(config.target):
        frame, rows = forward_return(frame, config.target, source)
        target_source = f"log(close[t+{rows}]/close[t]) per symbol ({rows} rows)"
        target_min_lag = rows
    else:
        raise InputError(
            f"{source}: no target column '{config.target}' (name an existing column, or fwd_return_<h> like "
            "fwd_return_5m to compute it from close)"
        )
    names = candidate_features(frame, config, source)
    symbols = frame["symbol"].unique(maintain_order=True).to_list()
    parts = frame.partition_by("symbol", maintain_order=True)
    columns: dict[str, list[np.ndarray]] = {}
    dropped: list[dict[str, str]] = []

    def drop(name: str, reason: str) -> None:
        dropped.append({"feature": name, "reason": reason})
        note(("causal:", "yellow"), f" dropped '{name}': {reason}")

    for name in [*names, config.target]:
        raw = [part[name].cast(pl.Float64).fill_null(float("nan")).to_numpy().copy() for part in parts]
        pooled = np.concatenate(raw)
        pooled[~np.isfinite(pooled)] = np.nan
        missing = float(np.isnan(pooled).mean())
        is_target = name == config.target
        if missing == 1.0:
            if is_target:
                raise InputError(f"{source}: target '{name}' has no finite values (all missing, NaN or infinite)")
            drop(name, "no finite values (all missing, NaN or infinite)")
            continue
        if missing > MAX_MISSING_FRACTION and not is_target:
            drop(name, f"{missing:.0%} of the values missing or not finite (more than {MAX_MISSING_FRACTION:.0%})")
            continue
        standardized = []
        constant_in = None
        for symbol, values in zip(symbols, raw, strict=True):
            values[~np.isfinite(values)] = np.nan
            scaled, std = _standardize(values)
            if std == 0.0:
                constant_in = symbol
                break
            standardized.append(scaled)
        if constant_in is not None:
            if is_target:
                raise InputError(f"{source}: target '{name}' is constant (symbol {constant_in})")
            drop(name, f"constant (symbol {constant_in})")
            continue
        if not is_target:
            pooled_scaled = np.concatenate(standardized)
            twin = next(
                (
                    kept
                    for kept, arrays in columns.items()
                    if _abs_corr(pooled_scaled, np.concatenate(arrays)) > DUPLICATE_CORR
                ),
                None,
            )
            if twin is not None:
                corr = _abs_corr(pooled_scaled, np.concatenate(columns[twin]))
                drop(name, f"near-duplicate of '{twin}' (|corr| = {corr:.4f} > {DUPLICATE_CORR})")
                continue
        columns[name] = standardized
    var_names = list(columns)
    if len(var_names) < 2:
        raise InputError(f"{source}: no usable numeric feature left after hygiene (see the dropped columns above)")
    arrays = {}
    for index in range(len(symbols)):
        block = np.column_stack([columns[name][index] for name in var_names])
        block[np.isnan(block)] = MISSING_SENTINEL
        arrays[index] = block
    return Prepared(arrays, var_names, [str(s) for s in symbols], target_source, target_min_lag, dropped)


# ------------------------------------------------------------------------------------------------------- tigramite


def _dataframe(prepared: Prepared) -> Any:
    from tigramite.data_processing import DataFrame

    # tigramite overwrites the flagged entries of the arrays it is given, so it gets copies.
    data = {key: value.copy() for key, value in prepared.arrays.items()}
    if len(data) == 1:
        return DataFrame(data[0], var_names=prepared.var_names, missing_flag=MISSING_SENTINEL)
    return DataFrame(data, var_names=prepared.var_names, missing_flag=MISSING_SENTINEL, analysis_mode="multiple")


def _acf(self: Any, series: np.ndarray, max_lag: int | None = None) -> np.ndarray:
    """tigramite 5.2's CondIndTest._get_acf without `np.corrcoef(..., ddof=0)`: NumPy 2.4 removed that argument,
    which never changed the result (it cancels out of a correlation), so this is the same function."""
    if max_lag is None:
        max_lag = int(max(5, 0.1 * len(series)))
    autocorr = np.ones(max_lag + 1)
    for lag in range(1, max_lag + 1):
        autocorr[lag] = np.corrcoef(series[lag:], series[: len(series) - lag])[0, 1]
    return autocorr


def _cond_test(test: CondTest, seed: int, shuffles: int) -> Any:
    from tigramite.independence_tests.independence_tests_base import CondIndTest

    # The block-shuffle significance (cmiknn without conditions) computes an ACF with the removed argument.
    CondIndTest._get_acf = _acf
    if test is CondTest.parcorr:
        from tigramite.independence_tests.parcorr import ParCorr

        return ParCorr(significance="analytic", seed=seed)
    if test is CondTest.cmiknn:
        from tigramite.independence_tests.cmiknn import CMIknn

        # One KD-tree worker: the parallelism is over links, and one thread keeps results independent of the pool.
        return CMIknn(significance="shuffle_test", seed=seed, workers=1, sig_samples=shuffles)
    from tigramite.independence_tests.gpdc import GPDC

    return GPDC(significance="analytic", seed=seed)


def _pcmci(prepared: Prepared, config: CausalConfig) -> Any:
    from tigramite.pcmci import PCMCI

    test = _cond_test(config.test, config.seed, config.shuffles)
    return PCMCI(dataframe=_dataframe(prepared), cond_ind_test=test, verbosity=0)


Link = tuple[int, int]  # (variable index, -lag) as tigramite writes it


def target_links(prepared: Prepared, tau_min: int, tau_max: int) -> list[Link]:
    """Every candidate link into the target: features at lags tau_min..tau_max, the target at lags it knows."""
    target = prepared.target_index
    links = [(i, -tau) for tau in range(tau_min, tau_max + 1) for i in range(target)]
    links += [(target, -tau) for tau in range(max(1, tau_min, prepared.target_min_lag), tau_max + 1)]
    return links


def link_assumptions(n_vars: int, target: int, links: Sequence[Link]) -> dict[int, dict[Link, str]]:
    """tigramite 5.2 removed `selected_variables`; its equivalent is link assumptions that list only links into the
    target: PC1 and MCI then run for the target row alone (other rows are empty, so their parents are not searched
    and the MCI conditions only on the target's parents, as `selected_variables` did)."""
    assumptions: dict[int, dict[Link, str]] = {j: {} for j in range(n_vars)}
    assumptions[target] = {link: "-?>" for link in links}
    return assumptions


def count_samples(prepared: Prepared, tau_max: int) -> int:
    """Time points (over all symbols) at which no variable is masked at any lag 0..tau_max: a lower bound of the
    samples each test keeps (tigramite masks per test, only the variables that test uses)."""
    dataframe = _dataframe(prepared)
    # Every variable at every lag in one array: a sample counts only if no value any test may need is masked.
    window = [(i, -tau) for i in range(len(prepared.var_names)) for tau in range(tau_max + 1)]
    array, _, _ = dataframe.construct_array(
        X=window, Y=[(prepared.target_index, 0)], Z=[], tau_max=tau_max, verbosity=0
    )
    return int(array.shape[1])


def _link_seed(seed: int, link: Link) -> np.random.Generator:
    # Each link's randomized test draws from its own stream, so p-values do not depend on how links are chunked.
    return np.random.default_rng([seed, link[0], -link[1]])


_WORKER: dict[str, Any] = {}


def _worker_init(prepared: Prepared, config: CausalConfig, single_thread: bool = False) -> None:
    if single_thread:  # a pool worker: the parent handles interrupts and terminates it
        signals.worker_defaults()
        # The pool already uses every core; BLAS threads inside each worker would only fight over them.
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    _WORKER["pcmci"] = _pcmci(prepared, config)
    _WORKER["prepared"] = prepared


def _mci_chunk(
    chunk: Sequence[Link], parents: dict[int, list[Link]], tau_min: int, tau_max: int, seed: int
) -> list[tuple[Link, float, float]]:
    """MCI of each link of the chunk, conditioned on the PC1 parents; (link, value, p-value) per link."""
    pcmci = _WORKER["pcmci"]
    prepared: Prepared = _WORKER["prepared"]
    target = prepared.target_index
    out = []
    for link in chunk:
        pcmci.cond_ind_test.random_state = _link_seed(seed, link)
        result = pcmci.run_mci(
            link_assumptions=link_assumptions(len(prepared.var_names), target, [link]),
            tau_min=tau_min,
            tau_max=tau_max,
            parents=parents,
        )
        i, lag = link
        out.append((link, float(result["val_matrix"][i, target, -lag]), float(result["p_matrix"][i, target, -lag])))
    return out


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stops every worker of the pool now (Python 3.14 has `terminate_workers`; before it, the processes are only
    reachable through the pool's `_processes`)."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    processes = list(getattr(pool, "_processes", {}).values())
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=2)
        if process.is_alive():
            process.kill()
            process.join(timeout=2)


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """BH-adjusted p-values (step-up, monotone, capped at 1), in the input order."""
    count = len(p_values)
    if count == 0:
        return []
    order = np.argsort(np.asarray(p_values, dtype=float), kind="stable")
    ranked = np.asarray(p_values, dtype=float)[order] * count / np.arange(1, count + 1)
    adjusted_sorted = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    adjusted = np.empty(count)
    adjusted[order] = adjusted_sorted
    return adjusted.tolist()


def _chunks(links: Sequence[Link], jobs: int) -> list[list[Link]]:
    # A few chunks per worker balance the load (PC1 parents make some tests heavier than others).
    count = min(len(links), max(1, jobs * 4))
    return [list(links[k::count]) for k in range(count) if links[k::count]]


def search(prepared: Prepared, config: CausalConfig) -> dict[str, Any]:
    """PC1 for the target, then MCI of every candidate link over a pool; returns the links' values and p-values."""
    target = prepared.target_index
    links = target_links(prepared, config.tau_min, config.tau_max)
    assumptions = link_assumptions(len(prepared.var_names), target, links)
    pcmci = _pcmci(prepared, config)
    note(f"causal: PC1 over {len(links)} candidate links of '{config.target}' ({config.test.value})")
    pcmci.run_pc_stable(
        link_assumptions=assumptions, tau_min=config.tau_min, tau_max=config.tau_max, pc_alpha=config.pc_alpha
    )
    parents: dict[int, list[Link]] = {j: list(v) for j, v in pcmci.all_parents.items()}
    jobs = max(1, config.jobs or os.cpu_count() or 1)
    chunks = _chunks(links, jobs)
    results: dict[Link, tuple[float, float]] = {}
    with steps("MCI", len(links)) as bar:
        if jobs == 1:
            _worker_init(prepared, config)
            for chunk in chunks:
                for link, value, p_value in _mci_chunk(chunk, parents, config.tau_min, config.tau_max, config.seed):
                    results[link] = (value, p_value)
                bar.advance(len(chunk))
        else:
            context = get_context("fork" if sys.platform.startswith("linux") else "spawn")
            pool = ProcessPoolExecutor(
                max_workers=min(jobs, len(chunks)),
                mp_context=context,
                initializer=_worker_init,
                initargs=(prepared, config, True),
            )
            try:
                futures = [
                    pool.submit(_mci_chunk, chunk, parents, config.tau_min, config.tau_max, config.seed)
                    for chunk in chunks
                ]
                for future, chunk in zip(futures, chunks, strict=True):
                    for link, value, p_value in future.result():
                        results[link] = (value, p_value)
                    bar.advance(len(chunk))
            except BaseException:
                # Interrupted or failed: the workers are killed, and the pool's own shutdown is not waited for (its
                # manager thread can block on a queue the dead workers left; the process exits without it).
                _terminate(pool)
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            pool.shutdown(wait=True)
    ordered = [link for link in links if link in results]
    p_values = [results[link][1] for link in ordered]
    if config.fdr is Fdr.fdr_bh:
        p_values = benjamini_hochberg(p_values)
    return {
        "links": [
            (prepared.var_names[i], -lag, results[(i, lag)][0], p)
            for (i, lag), p in zip(ordered, p_values, strict=True)
        ],
        "pc1_parents": [(prepared.var_names[i], -lag) for i, lag in parents[target]],
        "jobs": jobs,
    }


# -------------------------------------------------------------------------------------------------------- run


def min_samples(candidate_links: int) -> int:
    return max(MIN_SAMPLES_FLOOR, SAMPLES_PER_LINK * candidate_links)


def _check_config(config: CausalConfig) -> None:
    ranges.LAGS.check(config.tau_min, "--tau-min")
    ranges.LAGS.check(config.tau_max, "--tau-max")
    if config.tau_max < config.tau_min:
        raise UsageError(f"--tau-min {config.tau_min} / --tau-max {config.tau_max}: need tau-min <= tau-max")
    ranges.OPEN_SHARE.check(config.pc_alpha, "--pc-alpha")
    ranges.OPEN_SHARE.check(config.alpha, "--alpha")
    SHUFFLES.check(config.shuffles, "--shuffles")
    if config.jobs is not None:
        ranges.WORKERS.check(config.jobs, "--jobs")
    ranges.SEED.check(config.seed, "--seed")


def discover(frame: pl.DataFrame, config: CausalConfig, source: str = "input", sha256: str = "") -> dict[str, Any]:
    """Runs the whole search on a features frame and returns the `apex.causal` document."""
    _check_config(config)
    prepared = prepare(frame, config, source)
    short = [(s, a.shape[0]) for s, a in zip(prepared.symbols, prepared.arrays.values(), strict=True)]
    short = [(s, rows) for s, rows in short if rows <= config.tau_max + 1]
    if short:
        symbol, rows = short[0]
        raise InputError(
            f"{source}: --tau-max {config.tau_max} needs more than {config.tau_max + 1} rows per symbol; "
            f"{safe(symbol)} has {rows} (use a smaller --tau-max, more rows, or --symbol)"
        )
    links = target_links(prepared, config.tau_min, config.tau_max)
    samples = count_samples(prepared, config.tau_max)
    needed = min_samples(len(links))
    if samples < needed:
        raise InputError(
            f"{source}: {samples} usable samples after masking, need at least {needed} "
            f"({SAMPLES_PER_LINK} per candidate link x {len(links)} links, floor {MIN_SAMPLES_FLOOR}); "
            "use more rows, fewer --features or a smaller --tau-max"
        )
    found = search(prepared, config)
    significant = sorted(
        (link for link in found["links"] if link[3] <= config.alpha), key=lambda link: (link[3], link[0], link[1])
    )

    def as_dict(link: tuple[str, int, float, float]) -> dict[str, Any]:
        return {"feature": link[0], "lag": link[1], "p_value": link[3], "value": link[2]}

    doc = {
        "schema": CAUSAL_SCHEMA,
        "version": CAUSAL_VERSION,
        "target": config.target,
        "parents": [as_dict(link) for link in significant if link[0] != config.target],
        "target_lags": [as_dict(link) for link in significant if link[0] == config.target],
        "settings": {
            "target": config.target,
            "target_source": prepared.target_source,
            "tau_min": config.tau_min,
            "tau_max": config.tau_max,
            "test": config.test.value,
            "pc_alpha": config.pc_alpha,
            "alpha": config.alpha,
            "fdr": config.fdr.value,
            "features": prepared.var_names[:-1],
            "symbols": prepared.symbols,
            "seed": config.seed,
            "shuffles": config.shuffles,
            "jobs": found["jobs"],
            "samples_used": samples,
            "min_samples": needed,
            "candidate_links": len(links),
            "pc1_parents": [{"feature": f, "lag": lag} for f, lag in found["pc1_parents"]],
            "link_assumptions": "target row only (tigramite 5.2 equivalent of selected_variables)",
            "tigramite_version": package_version("tigramite"),
            "input": source,
            "input_sha256": sha256,
        },
        "dropped": prepared.dropped,
    }
    CausalDoc.model_validate(doc)
    return doc


def run(input_path: str, output: str, config: CausalConfig) -> dict[str, Any]:
    """Reads the features table, searches the target's causal parents, writes the JSON atomically ('-' = stdout)."""
    table = read_table(input_path, FEATURES)
    doc = discover(table.frame, config, table.source, table.sha256)
    write_json(doc, output)
    return doc


def load_causal(path: str | Path) -> CausalDoc:
    """Reads and validates an `apex.causal` document (strict JSON, size-bounded); every error names the file."""
    name = safe(describe(path))
    raw = read_json(path, f"an '{CAUSAL_SCHEMA}' document")
    if not isinstance(raw, dict) or raw.get("schema") != CAUSAL_SCHEMA:
        found = raw.get("schema") if isinstance(raw, dict) else type(raw).__name__
        raise SchemaError(f"{name}: not an '{CAUSAL_SCHEMA}' document (schema: {safe(found)!r})")
    version = raw.get("version")
    if not isinstance(version, int) or not 1 <= version <= CAUSAL_VERSION:
        raise SchemaError(
            f"{name}: '{CAUSAL_SCHEMA}' version {version!r}; this apexctl reads versions 1 to {CAUSAL_VERSION} "
            "(upgrade apexctl or re-run `apexctl causal`)"
        )
    try:
        return CausalDoc.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise SchemaError(f"{name}: invalid '{CAUSAL_SCHEMA}' document at {where}: {first['msg']}") from exc
