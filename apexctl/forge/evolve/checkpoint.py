"""The checkpoint under OUT/checkpoint/: what a generation boundary needs to continue identically."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pydantic

from apexctl.console import safe
from apexctl.errors import DataError, InputError, SchemaError, UsageError
from apexctl.forge import io, ranges
from apexctl.forge import surrogate as sae
from apexctl.forge.evolve.config import CHECKPOINT, CHECKPOINT_SCHEMA, CHECKPOINT_VERSION, EvolveConfig
from apexctl.forge.evolve.hall import Entry, Hall
from apexctl.forge.evolve.market import Market
from apexctl.forge.evolve.seeding import Terminals
from apexctl.forge.evolve.variation import individual


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
def discard_on_failure(out: Path, resume: bool, owned: bool) -> Iterator[None]:
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


def load_checkpoint_config(out: Path, gens: int | None = None, features: str | None = None) -> EvolveConfig:
    """The configuration a checkpointed run was started with, to continue it: a checkpoint whose settings are damaged
    or out of range is a SchemaError naming it.

    `gens` replaces its generation count when given: the total to reach, so it must exceed the generations the
    checkpoint already holds (a UsageError otherwise). `features` (--features) replaces the table's path when given:
    it must be the table the run started from (its sha256 is the checkpoint's `features_sha256`), which also lets a
    run that read stdin, or whose table moved, continue. Without it the path the checkpoint recorded is used. A
    checkpoint copied over another run's results is refused (see `check_same_run`)."""
    state = read_checkpoint(out)
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
    check_same_run(out, state)
    if gens is not None:
        gens = ranges.GENERATIONS.check(gens, "--gens")
        done = state["generation"]
        if gens <= done:
            raise UsageError(
                f"--gens {gens}: the run in {out} already has {done} generation{'' if done == 1 else 's'}; --gens is "
                f"the total to reach, give more than {done}"
            )
        config = dataclasses.replace(config, gens=gens)
    return dataclasses.replace(config, features=_resumed_features(path, config.features, state, features))


#: Settings a run keeps from start to end that its checkpoint and its results may still record differently: where
#: OUT is (a folder moved as a whole), --gens and --ray (--resume may change them) and --features (recorded absolute
#: in the checkpoint, as given in the results, at another path after --resume --features; its sha256 is compared).
_VOLATILE = ("output", "gens", "ray", "features")


#: Input paths: recorded absolute in the checkpoint, as given in the results; their file names are compared.
_PATHS = ("seed_dna", "causal", "dsg")


def check_same_run(out: Path, state: dict[str, Any]) -> None:
    """A checkpoint may continue only where it replaces nothing newer or of another run. OUT's results
    (generations.parquet) must not hold a later generation than the checkpoint: resuming would replace them with a
    shorter run (an older checkpoint of the same run copied back in). And a checkpoint not written in OUT (its
    recorded output is another folder: copied or moved in) needs OUT to hold no results, or the results of the
    checkpoint's run (its settings and features table, as hall_of_fame/index.json or, without it,
    generations.parquet records them), as a folder moved or renamed as a whole does. Anything else is one UsageError
    naming the checkpoint, what it records, what the results are, and what to do: resuming would publish that
    run's hall of fame over OUT's finished one."""
    path = out / CHECKPOINT / "state.json"
    generations = out / "generations.parquet"
    done, last = state["generation"], _results_last_generation(generations)
    if last is not None and last > done:
        raise UsageError(
            f"{path}: at generation {done}, but {generations} already holds generation {last}; resuming would "
            f"replace those results with older ones: resume from the checkpoint that reached generation {last} (or "
            "move this checkpoint/ into an empty folder and resume there)"
        )
    recorded = str(state["config"].get("output", ""))
    with contextlib.suppress(OSError, ValueError):  # a path that cannot be resolved is not this folder
        if Path(recorded).is_absolute() and Path(recorded).resolve() == out.resolve():
            return  # written here (checkpoints record OUT absolute; older ones as given, then the results decide)
    index_path = out / "hall_of_fame" / "index.json"
    if index_path.is_file():
        index = io.read_json(index_path, "a hall of fame index")
        params = index.get("params") if isinstance(index, dict) else None
        if not isinstance(params, dict):
            raise SchemaError(f"{index_path}: damaged hall of fame index: no params object")
    else:  # the hall of fame removed or lost: the log's own record of the run still says whose it is
        params = _results_metadata(generations, io.META_PARAMS)
        if not isinstance(params, dict):
            return
    config = state["config"]
    differences = []
    for key in sorted(set(config) & set(params) - set(_VOLATILE)):
        mine, theirs = config[key], params[key]
        if key in _PATHS:
            mine, theirs = (v if v in (None, io.STDIO, "default") else Path(str(v)).name for v in (mine, theirs))
        if mine != theirs:
            differences.append(f"{key} {safe(mine)} (the results: {safe(theirs)})")
    inputs = _results_inputs(generations)
    if state["features_sha256"] and inputs and state["features_sha256"] not in inputs:
        differences.append(f"another features table (sha256 {state['features_sha256'][:12]}...)")
    if not differences:
        return
    where = f"with -o {safe(recorded)}" if Path(recorded).is_absolute() else "in its own folder"
    raise UsageError(
        f"{path}: not of the run whose results {out} holds (it records output {safe(recorded)}; "
        f"{', '.join(differences[:4])}{', ...' if len(differences) > 4 else ''}); resuming would replace those "
        f"results: resume that run {where}, or move its checkpoint/ into an empty folder and resume there"
    )


def _results_metadata(generations: Path, key: str) -> Any:
    """The JSON value OUT's generations.parquet records under `key` (None when it has none, or cannot be read)."""
    import pyarrow.parquet as pq

    try:
        raw = (pq.read_schema(generations).metadata or {}).get(key.encode())
        return json.loads(raw) if raw else None
    except (OSError, ValueError, pa.ArrowException):
        return None


def _results_inputs(generations: Path) -> set[str]:
    """The sha256 of the inputs OUT's generations.parquet records (empty when it has none, or cannot be read)."""
    inputs = _results_metadata(generations, io.META_INPUTS)
    return {v for v in inputs.values() if isinstance(v, str)} if isinstance(inputs, dict) else set()


def _results_last_generation(generations: Path) -> int | None:
    """The last generation OUT's generations.parquet logs (None when there is none, or it cannot be read)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        column = pq.read_table(generations, columns=["generation"])["generation"]
        last = pc.max(column).as_py()
    except (OSError, ValueError, KeyError, pa.ArrowException):
        return None
    return last if isinstance(last, int) else None


def _resumed_features(path: Path, recorded: str, state: dict[str, Any], given: str | None) -> str:
    """The features table a resumed run reads: `given` (--features) when its sha256 is the checkpoint's, else the
    path the checkpoint recorded; every way this cannot work is one error saying what to do."""
    expected = state["features_sha256"]
    if not expected:  # written by an apexctl that did not hash stdin
        raise UsageError(
            f"{path}: the run read its features from stdin and the checkpoint has no features_sha256 to check a "
            "table against; it cannot be resumed (start it again)"
        )
    if given is None:
        if recorded == io.STDIO:
            raise UsageError(
                "--resume: the run read its features from stdin; pass --features FILE (or -) with the same table"
            )
        if not Path(recorded).exists():
            raise InputError(
                f"{recorded}: no such file; it is the features path the checkpoint recorded ({path}): pass "
                "--features with the same table"
            )
        if _sha256(recorded) != expected:
            raise InputError(
                f"{recorded}: changed since the checkpointed run started (its sha256 is not the checkpoint's "
                "features_sha256); --resume needs the same table (pass --features with it)"
            )
        return recorded
    if given == io.STDIO:
        return given  # checked once read (evolve)
    if _sha256(given) != expected:
        raise InputError(
            f"{given}: not the features table the run started from (its sha256 is not the checkpoint's "
            f"features_sha256, {path}); --resume needs the same table"
        )
    return str(Path(given).resolve())


def _sha256(path: str) -> str:
    try:
        return io.sha256_file(io.existing_file(path, "a Parquet file"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


def absolute_inputs(config: EvolveConfig) -> EvolveConfig:
    """`config` with its input paths and OUT made absolute (resolved against the working directory now): what the
    checkpoint records, so --resume finds the inputs from any directory. stdin ('-') and --dsg default stay as they
    are."""

    def absolute(value: str | None) -> str | None:
        return value if value in (None, io.STDIO, "default") else str(Path(value).resolve())

    features = absolute(config.features)
    assert features is not None
    paths = {"seed_dna": absolute(config.seed_dna), "causal": absolute(config.causal), "dsg": absolute(config.dsg)}
    # OUT too: --resume tells a checkpoint written in OUT from one copied or moved in (check_same_run).
    output = Path(os.path.abspath(config.output))
    return dataclasses.replace(config, features=features, output=output, **paths)


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


def read_checkpoint(out: Path) -> dict[str, Any]:
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
        handle.write(io.dumps_string_keyed(doc).encode())
    for old in folder.glob("surrogate-*.npz"):
        if old.name != rows_file:
            old.unlink(missing_ok=True)


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    import io as stdio

    buffer = stdio.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def restore_state(doc: dict[str, Any], config: EvolveConfig, pset: Any, market: Market, terminals: Terminals) -> State:
    population = []
    where = config.output / CHECKPOINT / "state.json"
    for text, values, estimated, crowding in doc["population"]:
        try:
            ind = individual(text, pset, config.dual)
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
