"""`apexctl train maml` logic: tasks from a features table, MAML with torch.func, a pooled baseline, held-out scoring.

The network (a `nets.MLP` over the feature row or a `nets.GRUNet` over a window of rows) predicts two outputs for the
next `horizon` bars: `sign_logit` (logit of P(return > 0)) and `size` (|return| in units of the training returns'
standard deviation). Loss = BCE(sign) + size_weight * Huber(size).

Tasks come from `maml_data` (no torch there, so bad input fails fast). A task is one symbol over one stretch of
contiguous bars (a time window, i.e. a regime). Its first rows are the support set the model adapts on (k SGD steps),
the rest the query set it is scored on. MAML learns the initial weights from which those k steps help most: the
meta-gradient of the query loss after adaptation, vectorized over the tasks of a batch with `torch.func.vmap`;
`order=2` differentiates through the inner steps, `order=1` treats the inner gradients as constants (first-order
MAML). The baseline is the same network trained on the same tasks pooled (no adaptation in the loop), with the same
optimizer, steps and batches; both are then adapted the same way on the held-out tasks (the latest windows of every
symbol).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, grad_and_value, vmap

from apexctl import __version__
from apexctl.errors import UsageError
from apexctl.forge.io import first_non_finite, publish_together, write_json
from apexctl.forge.maml_data import OUTPUTS, ArrayTasks, MamlConfig, Prepared, Tasks, build_tasks, prepare
from apexctl.forge.nets import GRUNet, ModelCard, build, save_model
from apexctl.forge.outputs import report_beside
from apexctl.schemas.maml_report import MAML_REPORT_SCHEMA, MAML_REPORT_VERSION, MamlReport

__all__ = ["MamlConfig", "Prepared", "TaskSet", "build_tasks", "prepare", "run", "train"]

Params = dict[str, torch.Tensor]


class TaskSet(Tasks[torch.Tensor]):
    """Tasks as float32 tensors (see `Tasks`)."""

    @classmethod
    def from_arrays(cls, tasks: ArrayTasks) -> TaskSet:
        """The tasks as float32 tensors."""
        tensors = (torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in tasks.arrays())
        return cls(*tensors, list(tasks.names))

    def take(self, index: torch.Tensor) -> TaskSet:
        """The tasks at `index` (in that order)."""
        picked = [self.names[i] for i in index.tolist()] if self.names else []
        return TaskSet(*(a[index] for a in self.arrays()), picked)


# ---------------------------------------------------------------------------------------------------------- kernel


def loss_of(out: torch.Tensor, y: torch.Tensor, size_weight: float) -> torch.Tensor:
    """BCE of the sign logit + size_weight * Huber of the size, averaged over rows."""
    bce = F.binary_cross_entropy_with_logits(out[..., 0], y[..., 0])
    return bce + size_weight * F.huber_loss(out[..., 1], y[..., 1])


class Functional:
    """A network as a pure function `(params, x) -> output` of its parameters, usable under torch.func transforms.

    The MLP goes through `functional_call`. torch's fused GRU kernel has no vmap batching rule, so the GRU is
    evaluated by the same equations written out (gates r, z, n in nn.GRU's layout), from the same parameter names;
    `tests/cli/test_maml.py` checks both against the module itself.
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
        losses = vmap(one, in_dims=(None, 0, 0, 0, 0))(params, *tasks.arrays())
    else:
        losses = torch.stack([one(params, *(a[i] for a in tasks.arrays())) for i in range(len(tasks))])
    return losses.mean()


def meta_gradient(fn: Functional, params: Params, tasks: TaskSet, **settings: Any) -> tuple[Params, torch.Tensor]:
    """(gradient of `meta_loss` with respect to the initial parameters, its value); `settings` are `meta_loss`'s
    keywords."""
    return grad_and_value(partial(meta_loss, fn, tasks=tasks, **settings))(params)


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

    curves = vmap(one, in_dims=(None, 0, 0, 0, 0))(params, *tasks.arrays()).mean(dim=0)
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


#: What a trainer minimizes: a task batch -> (gradients of `params`, loss).
Objective = Callable[[TaskSet], tuple[Any, Any]]


def _adam_steps(
    params: Params,
    train: TaskSet,
    config: MamlConfig,
    gradient: Objective,
    on_step: Callable[[int, float], None] | None,
) -> list[float]:
    """Adam on `params` in place over the task batches every trainer shares (same data budget); `gradient` turns a
    batch into (gradients, loss). Returns the loss of every step."""
    optimizer = _optimizer(params, config.meta_lr)
    history = []
    for step, index in enumerate(_batches(len(train), config.tasks_per_batch, config.steps, config.seed)):
        grads, loss = gradient(train.take(index))
        _step(optimizer, params, grads)
        history.append(float(loss))
        if on_step is not None:
            on_step(step, history[-1])
    return history


def _maml_objective(fn: Functional, params: Params, config: MamlConfig) -> Objective:
    """The MAML objective of a task batch: the loss on the query sets after `inner_steps` SGD steps on the support
    sets, differentiated through those steps (`order` 2) or not (1)."""

    def gradient(batch: TaskSet) -> tuple[Any, Any]:
        return meta_gradient(
            fn,
            params,
            batch,
            steps=config.inner_steps,
            lr=config.inner_lr,
            size_weight=config.size_weight,
            order=config.order,
        )

    return gradient


def _pooled_objective(fn: Functional, params: Params, config: MamlConfig) -> Objective:
    """The baseline's objective: the plain loss on all rows of the batch's tasks, support and query pooled."""

    def gradient(batch: TaskSet) -> tuple[Any, Any]:
        x = torch.cat([batch.support_x.flatten(0, 1), batch.query_x.flatten(0, 1)])
        y = torch.cat([batch.support_y.flatten(0, 1), batch.query_y.flatten(0, 1)])
        return grad_and_value(lambda p: loss_of(fn(p, x), y, config.size_weight))(params)

    return gradient


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

    meta_history = _adam_steps(
        meta_params, train, config, _maml_objective(meta_fn, meta_params, config), report("meta")
    )
    base_history = _adam_steps(
        base_params, train, config, _pooled_objective(base_fn, base_params, config), report("baseline")
    )
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


# -------------------------------------------------------------------------------------------------------- the run


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def run(
    features_path: str,
    output: str,
    config: MamlConfig,
    command: str = "",
    on_step: Callable[[str, int, float], None] | None = None,
) -> dict[str, Any]:
    """Trains from a features file, writes `output` (model.pt) and model.report.json beside it; returns the report."""
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
    result = compare(net, TaskSet.from_arrays(data.train), TaskSet.from_arrays(data.held_out), config, on_step)
    meta_loss_k, base_loss_k = result.meta_curve["loss"][-1], result.baseline_curve["loss"][-1]
    card.training_data = {prepared.path: prepared.sha256}
    card.bars = prepared.bars
    card.command = command
    card.metrics = {
        "heldout_loss_meta": meta_loss_k,
        "heldout_loss_baseline": base_loss_k,
        "heldout_sign_accuracy_meta": result.meta_curve["sign_accuracy"][-1],
        "inner_steps": float(config.inner_steps),
        "inner_lr": config.inner_lr,
        "size_scale": data.size_scale,
        # What the live engine needs to adapt as training did (rs/apex-infer/src/maml.rs).
        "size_weight": config.size_weight,
        "horizon": float(config.horizon),
        "support_rows": float(config.split_rows()[0]),
    }
    report = {
        "schema": MAML_REPORT_SCHEMA,
        "version": MAML_REPORT_VERSION,
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
    MamlReport.model_validate(report)  # the committed JSON Schema describes exactly what is written
    bad = first_non_finite(report) or next(
        (f"weight {name}" for name, p in result.meta.state_dict().items() if not torch.isfinite(p).all()), None
    )
    if bad is not None:
        raise UsageError(
            f"training diverged ({bad} is not a finite number); nothing written: lower --meta-lr or --inner-lr"
        )
    with publish_together():  # the model and its report appear together
        save_model(output, result.meta, card)
        write_json(report, report_beside(output))
    return report


def _tail_mean(values: Sequence[float], share: float = 0.1) -> float:
    tail = values[-max(1, math.ceil(len(values) * share)) :]
    return float(sum(tail) / len(tail))
