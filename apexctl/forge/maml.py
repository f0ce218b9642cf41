"""`apexctl train maml` logic: tasks from a features table, MAML with torch.func, a pooled baseline, held-out scoring.

The network (a `nets.MLP` over the feature row or a `nets.GRUNet` over a window of rows) predicts two outputs for the
next `horizon` bars: `sign_logit` (logit of P(return > 0)) and `size` (|return| in units of the training returns'
standard deviation). Loss = BCE(sign) + size_weight * Huber(size).

A task is one symbol over one stretch of contiguous bars (a time window, i.e. a regime). Its first rows are the
support set the model adapts on (k SGD steps), the rest the query set it is scored on. MAML learns the initial
weights from which those k steps help most: the meta-gradient of the query loss after adaptation, vectorized over
the tasks of a batch with `torch.func.vmap`; `order=2` differentiates through the inner steps, `order=1` treats the
inner gradients as constants (first-order MAML). The baseline is the same network trained on the same tasks pooled
(no adaptation in the loop), with the same optimizer, steps and batches; both are then adapted the same way on the
held-out tasks (the latest windows of every symbol).
"""

from __future__ import annotations

import copy
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, grad_and_value, vmap

from apexctl import __version__
from apexctl.errors import InputError, SchemaError, UsageError
from apexctl.forge.io import read_table, sha256_file, write_json
from apexctl.forge.nets import GRUNet, ModelCard, build, save_model
from apexctl.schemas.tables import FEATURES

OUTPUTS = ["sign_logit", "size"]
REPORT_SCHEMA = "apex.maml_report"
REPORT_VERSION = 1

#: Columns that are never inputs: identity, and price levels (not comparable across symbols or over time).
_NOT_INPUTS = {"ts", "symbol", "interval", "open", "high", "low", "close"}
_PRICE_LEVEL = re.compile(r"^(close_\w+|vmd_\d+)$")

Params = dict[str, torch.Tensor]


@dataclass(frozen=True)
class MamlConfig:
    """Settings of one `apexctl train maml` run (recorded in the report)."""

    arch: str = "mlp"
    #: Hidden widths (MLP: one layer per entry; GRU: the state size is the first entry).
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
        checks = [
            (self.arch in ("mlp", "gru"), f"--arch must be mlp or gru, got {self.arch!r}"),
            (self.arch == "gru" or self.window == 1, "--window applies to --arch gru only (the MLP reads one row)"),
            (self.window >= 1, f"--window must be at least 1, got {self.window}"),
            (self.horizon >= 1, f"--horizon must be at least 1 bar, got {self.horizon}"),
            (0.0 < self.support_fraction < 1.0, f"--support must be in (0, 1), got {self.support_fraction}"),
            (0.0 < self.holdout < 1.0, f"--holdout must be in (0, 1), got {self.holdout}"),
            (self.tasks_per_batch >= 1, f"--tasks-per-batch must be at least 1, got {self.tasks_per_batch}"),
            (self.inner_steps >= 0, f"--inner-steps must be at least 0, got {self.inner_steps}"),
            (self.inner_lr > 0.0, f"--inner-lr must be positive, got {self.inner_lr}"),
            (self.meta_lr > 0.0, f"--meta-lr must be positive, got {self.meta_lr}"),
            (self.steps >= 1, f"--steps must be at least 1, got {self.steps}"),
            (self.order in (1, 2), f"--order must be 1 or 2, got {self.order}"),
            (self.size_weight >= 0.0, f"--size-weight must be at least 0, got {self.size_weight}"),
            (self.threads >= 1, f"--threads must be at least 1, got {self.threads}"),
            (bool(self.hidden) and min(self.hidden) >= 1, f"--hidden needs positive widths, got {self.hidden}"),
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


@dataclass
class TaskSet:
    """Tasks of equal shape: inputs `[tasks, rows, *input]`, targets `[tasks, rows, 2]` = (sign label, size)."""

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor
    names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return self.support_x.shape[0]

    def take(self, index: torch.Tensor) -> TaskSet:
        """The tasks at `index` (in that order)."""
        picked = [self.names[i] for i in index.tolist()] if self.names else []
        return TaskSet(self.support_x[index], self.support_y[index], self.query_x[index], self.query_y[index], picked)


# ---------------------------------------------------------------------------------------------------------- kernel


def loss_of(out: torch.Tensor, y: torch.Tensor, size_weight: float) -> torch.Tensor:
    """BCE of the sign logit + size_weight * Huber of the size, averaged over rows."""
    bce = F.binary_cross_entropy_with_logits(out[..., 0], y[..., 0])
    return bce + size_weight * F.huber_loss(out[..., 1], y[..., 1])


class Functional:
    """A network as a pure function `(params, x) -> output` of its parameters, usable under torch.func transforms.

    The MLP goes through `functional_call`. torch's fused GRU kernel has no vmap batching rule, so the GRU is
    evaluated by the same equations written out (gates r, z, n in nn.GRU's layout), from the same parameter names;
    `tests/test_maml.py` checks both against the module itself.
    """

    def __init__(self, net: nn.Module) -> None:
        self.net = net
        self.buffers = {name: b.detach() for name, b in net.named_buffers()}
        self.gru = isinstance(net, GRUNet)
        self.layers = net.gru.num_layers if isinstance(net, GRUNet) else 0

    def initial(self) -> Params:
        """Copies of the network's current parameters (plain tensors, no autograd history)."""
        return {name: p.detach().clone() for name, p in self.net.named_parameters()}

    def load(self, params: Params) -> None:
        """Writes `params` into the network."""
        with torch.no_grad():
            for name, p in self.net.named_parameters():
                p.copy_(params[name])

    def __call__(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        if not self.gru:
            return functional_call(self.net, (params, self.buffers), (x,))
        if "norm.mean" in self.buffers:
            x = (x - self.buffers["norm.mean"]) / self.buffers["norm.std"]
        seq = h = x
        for layer in range(self.layers):
            w_ih, w_hh = params[f"gru.weight_ih_l{layer}"], params[f"gru.weight_hh_l{layer}"]
            b_ih, b_hh = params[f"gru.bias_ih_l{layer}"], params[f"gru.bias_hh_l{layer}"]
            gates_in = seq @ w_ih.T + b_ih
            h = torch.zeros(seq.shape[0], w_hh.shape[1], dtype=seq.dtype)
            outs = []
            for t in range(seq.shape[1]):
                in_r, in_z, in_n = gates_in[:, t].chunk(3, dim=-1)
                h_r, h_z, h_n = (h @ w_hh.T + b_hh).chunk(3, dim=-1)
                r = torch.sigmoid(in_r + h_r)
                z = torch.sigmoid(in_z + h_z)
                n = torch.tanh(in_n + r * h_n)
                h = (1 - z) * n + z * h
                outs.append(h)
            seq = torch.stack(outs, dim=1)
        return h @ params["head.weight"].T + params["head.bias"]


def adapt(
    fn: Functional,
    params: Params,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    lr: float,
    size_weight: float,
    first_order: bool = False,
) -> Params:
    """`steps` plain SGD steps on one task's support set; differentiable in `params` unless `first_order`."""

    def support_loss(p: Params) -> torch.Tensor:
        return loss_of(fn(p, x), y, size_weight)

    for _ in range(steps):
        g = grad(support_loss)(params)
        if first_order:
            g = {name: v.detach() for name, v in g.items()}
        params = {name: params[name] - lr * g[name] for name in params}
    return params


def _query_loss_after_adaptation(
    fn: Functional,
    params: Params,
    sx: torch.Tensor,
    sy: torch.Tensor,
    qx: torch.Tensor,
    qy: torch.Tensor,
    *,
    steps: int,
    lr: float,
    size_weight: float,
    first_order: bool,
) -> torch.Tensor:
    adapted = adapt(fn, params, sx, sy, steps, lr, size_weight, first_order)
    return loss_of(fn(adapted, qx), qy, size_weight)


def meta_loss(
    fn: Functional,
    params: Params,
    tasks: TaskSet,
    *,
    steps: int,
    lr: float,
    size_weight: float,
    order: int = 2,
    vectorize: bool = True,
) -> torch.Tensor:
    """The MAML objective: mean over tasks of the query loss after `steps` SGD steps on the support set.

    `vectorize` maps over tasks with vmap; False runs a plain Python loop (the reference the vmap path is tested
    against).
    """
    one = partial(_query_loss_after_adaptation, fn, steps=steps, lr=lr, size_weight=size_weight, first_order=order == 1)
    if vectorize:
        losses = vmap(one, in_dims=(None, 0, 0, 0, 0))(
            params, tasks.support_x, tasks.support_y, tasks.query_x, tasks.query_y
        )
    else:
        losses = torch.stack(
            [
                one(params, tasks.support_x[i], tasks.support_y[i], tasks.query_x[i], tasks.query_y[i])
                for i in range(len(tasks))
            ]
        )
    return losses.mean()


def meta_gradient(
    fn: Functional,
    params: Params,
    tasks: TaskSet,
    *,
    steps: int,
    lr: float,
    size_weight: float,
    order: int = 2,
    vectorize: bool = True,
) -> tuple[Params, torch.Tensor]:
    """(gradient of `meta_loss` with respect to the initial parameters, its value)."""
    objective = partial(
        meta_loss, fn, tasks=tasks, steps=steps, lr=lr, size_weight=size_weight, order=order, vectorize=vectorize
    )
    return grad_and_value(objective)(params)


def adaptation_curve(
    fn: Functional, params: Params, tasks: TaskSet, steps: int, lr: float, size_weight: float
) -> dict[str, list[float]]:
    """Mean query loss and sign accuracy over `tasks` after 0, 1, ..., `steps` SGD steps on each support set."""

    def one(p: Params, sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor) -> torch.Tensor:
        rows = []
        for step in range(steps + 1):
            if step:
                p = adapt(fn, p, sx, sy, 1, lr, size_weight, first_order=True)
            out = fn(p, qx)
            hit = ((out[:, 0] > 0).to(qy.dtype) == qy[:, 0]).to(qy.dtype)
            # Query rows with a flat return (label 0.5) have no direction to hit.
            directional = (qy[:, 0] != 0.5).to(qy.dtype)
            accuracy = (hit * directional).sum() / directional.sum().clamp(min=1.0)
            rows.append(torch.stack([loss_of(out, qy, size_weight), accuracy]))
        return torch.stack(rows)

    curves = vmap(one, in_dims=(None, 0, 0, 0, 0))(
        params, tasks.support_x, tasks.support_y, tasks.query_x, tasks.query_y
    ).mean(dim=0)
    return {"loss": curves[:, 0].tolist(), "sign_accuracy": curves[:, 1].tolist()}


# -------------------------------------------------------------------------------------------------------- training


def _optimizer(params: Params, lr: float) -> torch.optim.Adam:
    return torch.optim.Adam(list(params.values()), lr=lr)


def _step(optimizer: torch.optim.Adam, params: Params, grads: Params) -> None:
    for name, p in params.items():
        p.grad = grads[name]
    optimizer.step()


def _batches(tasks: int, per_batch: int, steps: int, seed: int) -> list[torch.Tensor]:
    """The task indices of every step, the same for meta-training and the baseline (same data budget)."""
    generator = torch.Generator().manual_seed(seed)
    take = min(per_batch, tasks)
    return [torch.randperm(tasks, generator=generator)[:take] for _ in range(steps)]


def meta_train(
    fn: Functional,
    params: Params,
    train: TaskSet,
    config: MamlConfig,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Meta-trains `params` in place with Adam on the MAML objective; returns the meta-loss of every step."""
    optimizer = _optimizer(params, config.meta_lr)
    history = []
    for step, index in enumerate(_batches(len(train), config.tasks_per_batch, config.steps, config.seed)):
        grads, loss = meta_gradient(
            fn,
            params,
            train.take(index),
            steps=config.inner_steps,
            lr=config.inner_lr,
            size_weight=config.size_weight,
            order=config.order,
        )
        _step(optimizer, params, grads)
        history.append(float(loss))
        if on_step is not None:
            on_step(step, history[-1])
    return history


def pooled_train(
    fn: Functional,
    params: Params,
    train: TaskSet,
    config: MamlConfig,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """The baseline: trains `params` in place with Adam on all rows of the same task batches, pooled."""
    optimizer = _optimizer(params, config.meta_lr)
    history = []
    for step, index in enumerate(_batches(len(train), config.tasks_per_batch, config.steps, config.seed)):
        batch = train.take(index)
        x = torch.cat([batch.support_x.flatten(0, 1), batch.query_x.flatten(0, 1)])
        y = torch.cat([batch.support_y.flatten(0, 1), batch.query_y.flatten(0, 1)])
        grads, loss = grad_and_value(lambda p, x=x, y=y: loss_of(fn(p, x), y, config.size_weight))(params)
        _step(optimizer, params, grads)
        history.append(float(loss))
        if on_step is not None:
            on_step(step, history[-1])
    return history


def new_net(config: MamlConfig, inputs: int, standardize: bool) -> nn.Module:
    """A fresh network of the configured architecture (seeded by the caller)."""
    return build(_card(config, [f"x{i}" for i in range(inputs)], standardize))


def _card(config: MamlConfig, features: list[str], standardize: bool) -> ModelCard:
    if config.arch == "gru":
        arch_config: dict[str, Any] = {
            "inputs": len(features),
            "hidden": config.hidden[0],
            "outputs": len(OUTPUTS),
            "layers": len(config.hidden),
            "standardize": standardize,
        }
    else:
        arch_config = {
            "inputs": len(features),
            "hidden": list(config.hidden),
            "outputs": len(OUTPUTS),
            "activation": "tanh",
            "standardize": standardize,
        }
    return ModelCard(
        arch=config.arch,
        config=arch_config,
        features=list(features),
        task="maml",
        window=config.window,
        outputs=list(OUTPUTS),
    )


@dataclass
class Comparison:
    """Meta-trained and baseline networks and their held-out adaptation curves."""

    meta: nn.Module
    baseline: nn.Module
    meta_curve: dict[str, list[float]]
    baseline_curve: dict[str, list[float]]
    meta_history: list[float]
    baseline_history: list[float]


def compare(
    net: nn.Module,
    train: TaskSet,
    held_out: TaskSet,
    config: MamlConfig,
    on_step: Callable[[str, int, float], None] | None = None,
) -> Comparison:
    """Meta-trains a copy of `net` and pool-trains another copy from the same initial weights, then scores both."""
    meta_net, base_net = net, _clone(net)
    meta_fn, base_fn = Functional(meta_net), Functional(base_net)
    meta_params, base_params = meta_fn.initial(), base_fn.initial()

    def report(phase: str) -> Callable[[int, float], None] | None:
        return None if on_step is None else (lambda step, loss: on_step(phase, step, loss))

    meta_history = meta_train(meta_fn, meta_params, train, config, report("meta"))
    base_history = pooled_train(base_fn, base_params, train, config, report("baseline"))
    meta_fn.load(meta_params)
    base_fn.load(base_params)
    curve = partial(adaptation_curve, steps=config.inner_steps, lr=config.inner_lr, size_weight=config.size_weight)
    return Comparison(
        meta=meta_net,
        baseline=base_net,
        meta_curve=curve(meta_fn, meta_params, held_out),
        baseline_curve=curve(base_fn, base_params, held_out),
        meta_history=meta_history,
        baseline_history=base_history,
    )


def _clone(net: nn.Module) -> nn.Module:
    return copy.deepcopy(net)


# ----------------------------------------------------------------------------------------------------------- tasks


@dataclass
class Dataset:
    """Tasks built from a features table, with what is needed to rebuild inputs and targets at inference."""

    train: TaskSet
    held_out: TaskSet
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
    if config.inputs is not None:
        absent = [c for c in config.inputs if c not in frame.columns]
        if absent:
            raise SchemaError(f"{source}: --inputs names columns the table lacks: {absent}")
        wrong = [c for c in config.inputs if not frame.schema[c].is_numeric()]
        if wrong:
            raise SchemaError(f"{source}: --inputs must be numeric columns; not numeric: {wrong}")
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
        usable = np.flatnonzero(row_ok & np.isfinite(r))
        usable_rows[str(symbol)] = int(usable.size)
        stride = config.task_bars + config.horizon
        starts = range(0, usable.size - config.task_bars + 1, stride)
        inputs, targets, task_ts = [], [], []
        for start in starts:
            rows = usable[start : start + config.task_bars]
            if config.window > 1:
                inputs.append(np.stack([x[row - config.window + 1 : row + 1] for row in rows]))
            else:
                inputs.append(x[rows])
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
    if not train_x or not held_x:
        raise InputError(
            f"{source}: too few bars for the tasks: usable rows per symbol {usable_rows} give tasks {counts} of "
            f"--task-bars {config.task_bars} (+{config.horizon} purged); need 2 tasks of one symbol to hold one out "
            f"(give more bars or lower --task-bars / --window)"
        )

    stacked_x = np.stack(train_x)
    flat = stacked_x.reshape(-1, len(features))
    mean = flat.mean(axis=0)
    std = flat.std(axis=0)
    std[std == 0.0] = 1.0
    returns = np.concatenate(train_r)
    size_scale = float(returns.std()) or 1.0

    def task_set(xs: list[np.ndarray], rs: list[np.ndarray], names: list[str]) -> TaskSet:
        x_all = torch.tensor(np.stack(xs), dtype=torch.float32)
        r_all = np.stack(rs)
        sign = np.where(r_all > 0, 1.0, np.where(r_all < 0, 0.0, 0.5))
        y_all = torch.tensor(np.stack([sign, np.abs(r_all) / size_scale], axis=-1), dtype=torch.float32)
        query_start = support_rows + config.horizon
        return TaskSet(
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


# -------------------------------------------------------------------------------------------------------- the run


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


@dataclass
class Prepared:
    """A features file read and split into tasks, ready to train on."""

    path: str
    sha256: str
    data: Dataset


def prepare(features_path: str, output: str, config: MamlConfig) -> Prepared:
    """Checks the settings, reads the features file and builds the tasks (every user mistake surfaces here)."""
    config.validate()
    if output == "-":
        raise UsageError("-o must be a file path (model.pt); the report is written next to it")
    table = read_table(features_path, FEATURES)
    data = build_tasks(table.frame, table.source, config)
    digest = table.sha256 or (sha256_file(features_path) if features_path != "-" else "")
    return Prepared(features_path, digest, data)


def run(
    features_path: str,
    output: str,
    config: MamlConfig,
    command: str = "",
    on_step: Callable[[str, int, float], None] | None = None,
) -> dict[str, Any]:
    """Trains from a features file, writes `output` (model.pt) and `output`.report.json; returns the report."""
    return train(prepare(features_path, output, config), output, config, command, on_step)


def train(
    prepared: Prepared,
    output: str,
    config: MamlConfig,
    command: str = "",
    on_step: Callable[[str, int, float], None] | None = None,
) -> dict[str, Any]:
    """Meta-trains and trains the baseline on prepared tasks, writes the checkpoint and the report; returns it.

    `command` is the producing command line, recorded in the checkpoint and the report.
    """
    started = time.perf_counter()
    torch.set_num_threads(config.threads)
    data = prepared.data
    _seed_everything(config.seed)
    card = _card(config, data.features, standardize=True)
    net = build(card)
    net.norm.mean.copy_(torch.tensor(data.mean, dtype=torch.float32))
    net.norm.std.copy_(torch.tensor(data.std, dtype=torch.float32))
    result = compare(net, data.train, data.held_out, config, on_step)
    meta_loss_k, base_loss_k = result.meta_curve["loss"][-1], result.baseline_curve["loss"][-1]
    card.training_data = {prepared.path: prepared.sha256}
    card.command = command
    card.metrics = {
        "heldout_loss_meta": meta_loss_k,
        "heldout_loss_baseline": base_loss_k,
        "heldout_sign_accuracy_meta": result.meta_curve["sign_accuracy"][-1],
        "inner_steps": float(config.inner_steps),
        "inner_lr": config.inner_lr,
        "size_scale": data.size_scale,
    }
    save_model(output, result.meta, card)
    report = {
        "schema": REPORT_SCHEMA,
        "version": REPORT_VERSION,
        "producer": {"command": card.command, "version": __version__},
        "model": output,
        "features_file": {"path": prepared.path, "sha256": prepared.sha256},
        "settings": {**asdict(config), "hidden": list(config.hidden)},
        "features": data.features,
        "dropped_features": data.dropped,
        "size_scale": data.size_scale,
        "tasks": {
            "train": len(data.train),
            "held_out": len(data.held_out),
            "support_rows": data.train.support_x.shape[1],
            "query_rows": data.train.query_x.shape[1],
            "usable_rows": data.usable_rows,
            "held_out_names": data.held_out.names,
        },
        "held_out": {
            "steps": list(range(config.inner_steps + 1)),
            "meta": result.meta_curve,
            "baseline": result.baseline_curve,
            "meta_minus_baseline_after_k": meta_loss_k - base_loss_k,
        },
        "training": {
            "meta_loss_first": result.meta_history[0],
            "meta_loss_last": _tail_mean(result.meta_history),
            "baseline_loss_first": result.baseline_history[0],
            "baseline_loss_last": _tail_mean(result.baseline_history),
        },
        "seconds": round(time.perf_counter() - started, 3),
    }
    write_json(report, report_path(output))
    return report


def report_path(output: str | Path) -> str:
    """The report written next to the model: OUT.report.json."""
    return f"{output}.report.json"


def _tail_mean(values: Sequence[float], share: float = 0.1) -> float:
    tail = values[-max(1, math.ceil(len(values) * share)) :]
    return float(sum(tail) / len(tail))
