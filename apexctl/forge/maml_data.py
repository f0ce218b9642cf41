"""`apexctl train maml` data: settings, and the (symbol, time window) tasks cut from a features table (no torch).

Kept apart from the torch code so reading and checking the input, where user mistakes surface, needs no torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
import polars as pl

from apexctl.console import safe
from apexctl.errors import InputError, SchemaError, UsageError
from apexctl.forge import ranges
from apexctl.forge.features import bars_made
from apexctl.forge.io import check_numeric_columns, read_table, sha256_file
from apexctl.schemas.tables import FEATURE_KEYS, FEATURES

#: The model's outputs, in order (what `apexctl export` checks a --maml checkpoint declares).
OUTPUTS = ["sign_logit", "size"]
TASK_BARS = ranges.IntRange(2, 100_000)
TASKS_PER_BATCH = ranges.IntRange(1, 10_000)
INNER_STEPS = ranges.IntRange(0, 100)
STEPS = ranges.IntRange(1, 1_000_000)
ORDER = ranges.IntRange(1, 2)
SIZE_WEIGHT = ranges.FloatRange(0.0, 1_000.0)
#: Width of a hidden layer (--hidden) and their count.
WIDTH = ranges.IntRange(1, 4_096)
MAX_LAYERS = 16


#: Columns that are never inputs: identity, and price levels (not comparable across symbols or over time).
_NOT_INPUTS = FEATURE_KEYS | {"open", "high", "low", "close"}
_PRICE_LEVEL = re.compile(r"^(close_\w+|vmd_\d+)$")


@dataclass(frozen=True)
class MamlConfig:
    """Settings of one `apexctl train maml` run (recorded in the report)."""

    arch: str = "mlp"
    #: Hidden widths, one layer per entry (GRU layers all have one size).
    hidden: tuple[int, ...] = (32, 32)
    #: Rows per input: 1 for the MLP; the GRU's window length.
    window: int = 1
    horizon: int = 5
    task_bars: int = 60
    support_fraction: float = 0.5
    holdout: float = 0.25
    tasks_per_batch: int = 8
    inner_steps: int = 3
    inner_lr: float = 0.1
    meta_lr: float = 1e-3
    steps: int = 300
    order: int = 2
    size_weight: float = 1.0
    seed: int = 0
    threads: int = 1
    inputs: tuple[str, ...] | None = None

    def validate(self) -> None:
        """Raises UsageError for settings outside what the trainer accepts."""
        for kind, value, option in (
            (ranges.WINDOW, self.window, "--window"),
            (ranges.WINDOW, self.horizon, "--horizon"),
            (TASK_BARS, self.task_bars, "--task-bars"),
            (ranges.OPEN_SHARE, self.support_fraction, "--support"),
            (ranges.OPEN_SHARE, self.holdout, "--holdout"),
            (TASKS_PER_BATCH, self.tasks_per_batch, "--tasks-per-batch"),
            (INNER_STEPS, self.inner_steps, "--inner-steps"),
            (ranges.LEARNING_RATE, self.inner_lr, "--inner-lr"),
            (ranges.LEARNING_RATE, self.meta_lr, "--meta-lr"),
            (STEPS, self.steps, "--steps"),
            (ORDER, self.order, "--order"),
            (SIZE_WEIGHT, self.size_weight, "--size-weight"),
            (ranges.SEED, self.seed, "--seed"),
            (ranges.WORKERS, self.threads, "--threads"),
        ):
            kind.check(value, option)
        for width in self.hidden:
            WIDTH.check(width, "--hidden")
        checks = [
            (self.arch in ("mlp", "gru"), f"--arch must be mlp or gru, got {self.arch!r}"),
            (self.arch == "gru" or self.window == 1, "--window applies to --arch gru only (the MLP reads one row)"),
            (
                1 <= len(self.hidden) <= MAX_LAYERS,
                f"--hidden: give 1 to {MAX_LAYERS} layer widths, got {len(self.hidden)}",
            ),
            (
                self.arch != "gru" or len(set(self.hidden)) <= 1,
                f"--arch gru stacks GRU layers of one size: give equal widths (e.g. 16 or 16,16), got {self.hidden}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)
        support, query = self.split_rows()
        if support < 1 or query < 1:
            raise UsageError(
                f"--task-bars {self.task_bars} leaves {support} support and {query} query rows after the "
                f"{self.horizon}-bar purge between them; raise --task-bars or change --support"
            )

    def split_rows(self) -> tuple[int, int]:
        """(support rows, query rows) of a task; `horizon` rows between them are dropped so targets do not overlap."""
        support = round(self.task_bars * self.support_fraction)
        return support, self.task_bars - support - self.horizon


ArrayT = TypeVar("ArrayT")


@dataclass
class Tasks(Generic[ArrayT]):
    """Tasks of equal shape: inputs `[tasks, rows, *input]`, targets `[tasks, rows, 2]` = (sign label, size), as
    float32 arrays or tensors."""

    support_x: ArrayT
    support_y: ArrayT
    query_x: ArrayT
    query_y: ArrayT
    names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return self.support_x.shape[0]

    def arrays(self) -> tuple[ArrayT, ArrayT, ArrayT, ArrayT]:
        return self.support_x, self.support_y, self.query_x, self.query_y


class ArrayTasks(Tasks[np.ndarray]):
    """Tasks as float32 NumPy arrays (what `build_tasks` makes, before torch is loaded)."""


@dataclass
class Dataset:
    """Tasks built from a features table, with what is needed to rebuild inputs and targets at inference."""

    train: ArrayTasks
    held_out: ArrayTasks
    features: list[str]
    mean: np.ndarray
    std: np.ndarray
    size_scale: float
    dropped: dict[str, str]
    usable_rows: dict[str, int]


def _default_inputs(frame: pl.DataFrame) -> list[str]:
    return [
        name
        for name, dtype in frame.schema.items()
        if dtype.is_numeric() and name not in _NOT_INPUTS and not _PRICE_LEVEL.match(name)
    ]


def build_tasks(frame: pl.DataFrame, source: str, config: MamlConfig) -> Dataset:
    """Splits every symbol's bars into tasks; the latest `holdout` share of each symbol's tasks is held out.

    Inputs are the feature columns (raw; the network standardizes them with the training mean and std). Targets at
    row t: r = log(close[t+h] / close[t]); sign label 1 if r > 0, 0 if r < 0, 0.5 if flat; size = |r| / std(r).
    Rows with a missing input (in any row of the GRU window) or target are skipped. Tasks are `task_bars`
    consecutive usable rows, separated by `horizon` skipped rows so no target of a task overlaps the next task.
    """
    missing = [c for c in ("ts", "symbol", "close") if c not in frame.columns]
    if missing:
        raise SchemaError(f"{source}: features table lacks columns {missing} (make it with `apexctl features`)")
    if frame.is_empty():
        raise InputError(f"{source}: the features table has no rows; nothing to train on")
    if config.inputs is not None:
        check_numeric_columns(frame, config.inputs, source, "--inputs")
        candidates = list(config.inputs)
    else:
        candidates = _default_inputs(frame)
    frame = frame.sort(["symbol", "ts"])
    dropped: dict[str, str] = {}
    features: list[str] = []
    for name in candidates:
        values = frame[name].cast(pl.Float64).fill_null(float("nan")).to_numpy()
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            dropped[name] = "no finite value"
        elif finite.size < values.size // 2:
            dropped[name] = f"finite in only {finite.size} of {values.size} rows"
        elif np.ptp(finite) == 0.0:
            dropped[name] = "constant"
        else:
            features.append(name)
    if not features:
        raise InputError(
            f"{source}: no usable feature column ({len(candidates)} candidates, all missing/NaN or constant)"
        )

    support_rows, _ = config.split_rows()
    per_symbol: list[tuple[str, list[np.ndarray], list[np.ndarray], list[int]]] = []
    usable_rows: dict[str, int] = {}
    for (symbol,), part in frame.group_by(["symbol"], maintain_order=True):
        x = part.select(pl.col(features).cast(pl.Float64).fill_null(float("nan"))).to_numpy()
        close = part["close"].cast(pl.Float64).fill_null(float("nan")).to_numpy()
        ts = part["ts"].to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.full(close.size, np.nan)
            r[: -config.horizon] = np.log(close[config.horizon :] / close[: -config.horizon])
        row_ok = np.isfinite(x).all(axis=1)
        if config.window > 1:
            run = np.convolve(row_ok.astype(np.int64), np.ones(config.window, dtype=np.int64))[: row_ok.size]
            row_ok = run == config.window
        # The GRU reads a sequence `[window, F]` per row, even a window of 1 row; the MLP reads the row `[F]`.
        offsets = np.arange(1 - config.window, 1) if config.arch == "gru" else None
        usable = np.flatnonzero(row_ok & np.isfinite(r))
        usable_rows[str(symbol)] = int(usable.size)
        stride = config.task_bars + config.horizon
        starts = range(0, usable.size - config.task_bars + 1, stride)
        inputs, targets, task_ts = [], [], []
        for start in starts:
            rows = usable[start : start + config.task_bars]
            inputs.append(x[rows] if offsets is None else x[rows[:, None] + offsets])
            targets.append(r[rows])
            task_ts.append(int(ts[rows[0]]))
        per_symbol.append((str(symbol), inputs, targets, task_ts))

    counts = {symbol: len(inputs) for symbol, inputs, _, _ in per_symbol}
    train_x: list[np.ndarray] = []
    train_r: list[np.ndarray] = []
    held_x: list[np.ndarray] = []
    held_r: list[np.ndarray] = []
    train_names: list[str] = []
    held_names: list[str] = []
    for symbol, inputs, targets, task_ts in per_symbol:
        n = len(inputs)
        held = max(1, round(n * config.holdout)) if n >= 2 else 0
        for i in range(n):
            name = f"{symbol}@{np.datetime64(task_ts[i], 'ns').astype('datetime64[s]')}"
            if i >= n - held:
                held_x.append(inputs[i])
                held_r.append(targets[i])
                held_names.append(name)
            else:
                train_x.append(inputs[i])
                train_r.append(targets[i])
                train_names.append(name)
    if held_x and not train_x:
        raise InputError(
            f"{source}: --holdout {config.holdout:g} holds out every task (tasks per symbol {counts}): nothing is "
            "left to train on; lower --holdout"
        )
    if not train_x or not held_x:
        raise InputError(
            f"{source}: too few bars for the tasks: usable rows per symbol {usable_rows} give tasks {counts} of "
            f"--task-bars {config.task_bars} (+{config.horizon} purged); need 2 tasks of one symbol to hold one out "
            f"(give more bars or lower --task-bars / --window)"
        )

    stacked_x = np.stack(train_x)
    flat = stacked_x.reshape(-1, len(features))
    with np.errstate(over="ignore", invalid="ignore"):
        mean = flat.mean(axis=0)
        std = flat.std(axis=0)
    # Finite values near 1e300 overflow the spread: training would only "diverge", with the cause unnamed.
    overflow = next((name for name, m, s in zip(features, mean, std, strict=True) if not np.isfinite(m + s)), None)
    if overflow is not None:
        raise InputError(
            f"{source}: column {safe(overflow)!r} holds values too large to standardize (its mean or spread "
            "overflows float64); rescale it, or leave it out with --inputs"
        )
    std[std == 0.0] = 1.0
    returns = np.concatenate(train_r)
    size_scale = float(returns.std()) or 1.0

    def task_set(xs: list[np.ndarray], rs: list[np.ndarray], names: list[str]) -> ArrayTasks:
        x_all = np.stack(xs).astype(np.float32)
        r_all = np.stack(rs)
        sign = np.where(r_all > 0, 1.0, np.where(r_all < 0, 0.0, 0.5))
        y_all = np.stack([sign, np.abs(r_all) / size_scale], axis=-1).astype(np.float32)
        query_start = support_rows + config.horizon
        return ArrayTasks(
            x_all[:, :support_rows], y_all[:, :support_rows], x_all[:, query_start:], y_all[:, query_start:], names
        )

    return Dataset(
        train=task_set(train_x, train_r, train_names),
        held_out=task_set(held_x, held_r, held_names),
        features=features,
        mean=mean,
        std=std,
        size_scale=size_scale,
        dropped=dropped,
        usable_rows=usable_rows,
    )


@dataclass
class Prepared:
    """A features file read and split into tasks, ready to train on."""

    path: str
    sha256: str
    data: Dataset
    #: The bars of the table (`features.bars_made`): the model card records them for the bundle.
    bars: dict[str, Any] | None = None


def prepare(features_path: str, output: str, config: MamlConfig) -> Prepared:
    """Checks the settings, reads the features file and builds the tasks (every user mistake surfaces here)."""
    config.validate()
    if output == "-":
        raise UsageError("-o must be a file path (model.pt); the report is written next to it")
    table = read_table(features_path, FEATURES)
    data = build_tasks(table.frame, table.source, config)
    digest = table.sha256 or (sha256_file(features_path) if features_path != "-" else "")
    return Prepared(features_path, digest, data, bars_made(table, table.frame))
