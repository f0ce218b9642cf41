"""MAML trainer: meta-training beats pooled training on tasks that need adaptation, the meta-gradient kernel against
explicit autograd and finite differences, vmap against a loop, task building, and `apexctl train maml` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from apexctl import _core
from apexctl.errors import InputError, SchemaError
from apexctl.forge.io import sha256_file, write_table
from apexctl.forge.maml import (
    Functional,
    MamlConfig,
    TaskSet,
    build_tasks,
    compare,
    loss_of,
    meta_gradient,
    meta_loss,
    new_net,
    run,
)
from apexctl.forge.nets import ModelCard, build, load_model
from apexctl.schemas.maml_report import MamlReport, maml_report_json_schema_text
from apexctl.schemas.tables import FEATURES
from tests.conftest import run_cli

torch.set_num_threads(1)


def regime_tasks(tasks: int, rows: int, seed: int, window: int = 1, inputs: int = 4) -> TaskSet:
    """Tasks that need adaptation: sign = sign(a * x_1 + noise) with a = +-1 per task, size = s * |x_2| per task.

    Pooled over tasks the sign is unpredictable (a averages out), so only a model that adapts can beat chance.
    """
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(0, 2, (tasks, 1), generator=g) * 2.0 - 1.0
    scale = 0.5 + 1.5 * torch.rand(tasks, 1, generator=g)
    shape = (tasks, rows, window, inputs) if window > 1 else (tasks, rows, inputs)
    x = torch.randn(*shape, generator=g)
    last = x[:, :, -1] if window > 1 else x
    sign = (a * last[..., 0] + 0.3 * torch.randn(tasks, rows, generator=g) > 0).float()
    y = torch.stack([sign, scale * last[..., 1].abs()], dim=-1)
    half = rows // 2
    return TaskSet(x[:, :half], y[:, :half], x[:, half:], y[:, half:])


@pytest.mark.parametrize("order", [1, 2])
def test_meta_training_beats_pooled_baseline_after_k_steps(order):
    config = MamlConfig(
        hidden=(16, 16), steps=40, tasks_per_batch=8, inner_steps=3, inner_lr=0.5, meta_lr=1e-2, order=order, seed=0
    )
    torch.manual_seed(0)
    net = new_net(config, inputs=4, standardize=False)
    result = compare(net, regime_tasks(64, 40, seed=1), regime_tasks(32, 40, seed=2), config)
    meta, base = result.meta_curve, result.baseline_curve
    assert len(meta["loss"]) == len(base["loss"]) == 4
    # Adaptation must do real work for the meta-trained model, and leave it clearly ahead of the baseline.
    assert meta["loss"][-1] < meta["loss"][0] - 0.3
    assert meta["loss"][-1] < base["loss"][-1] - 0.15
    assert meta["sign_accuracy"][-1] > 0.8 > base["sign_accuracy"][-1]


def _tiny(seed: int, window: int = 1) -> tuple[Functional, TaskSet]:
    torch.manual_seed(seed)
    arch = "gru" if window > 1 else "mlp"
    config = {"inputs": 2, "hidden": 3, "outputs": 2} if window > 1 else {"inputs": 2, "hidden": [3], "outputs": 2}
    net = build(ModelCard(arch, config, ["a", "b"], "maml", window=window)).double()
    tasks = regime_tasks(3, 8, seed=seed + 100, window=window, inputs=2)
    as_double = TaskSet(*(t.double() for t in (tasks.support_x, tasks.support_y, tasks.query_x, tasks.query_y)))
    return Functional(net), as_double


def _reference_meta_gradient(fn, params, tasks, steps, lr, first_order):
    """MAML by hand with torch.autograd: create_graph through the inner steps unless first-order."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    total = 0.0
    for i in range(len(tasks)):
        current = dict(leaves)
        for _ in range(steps):
            loss = loss_of(fn(current, tasks.support_x[i]), tasks.support_y[i], 1.0)
            grads = torch.autograd.grad(loss, list(current.values()), create_graph=not first_order)
            current = {k: v - lr * g for (k, v), g in zip(current.items(), grads, strict=True)}
        total = total + loss_of(fn(current, tasks.query_x[i]), tasks.query_y[i], 1.0)
    total = total / len(tasks)
    grads = torch.autograd.grad(total, list(leaves.values()))
    return dict(zip(leaves, grads, strict=True))


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), steps=st.integers(1, 3), lr=st.floats(0.05, 0.5))
def test_meta_gradient_matches_explicit_autograd_and_first_order_differs(seed, steps, lr):
    fn, tasks = _tiny(seed)
    params = fn.initial()
    kwargs = {"steps": steps, "lr": lr, "size_weight": 1.0}
    second, _ = meta_gradient(fn, params, tasks, order=2, **kwargs)
    first, _ = meta_gradient(fn, params, tasks, order=1, **kwargs)
    ref_second = _reference_meta_gradient(fn, params, tasks, steps, lr, first_order=False)
    ref_first = _reference_meta_gradient(fn, params, tasks, steps, lr, first_order=True)
    for name in params:
        torch.testing.assert_close(second[name], ref_second[name], rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(first[name], ref_first[name], rtol=1e-9, atol=1e-12)
    gap = max(float((second[n] - first[n]).abs().max()) for n in params)
    assert gap > 1e-6, "first and second order gave the same meta-gradient"


def test_second_order_meta_gradient_matches_finite_differences():
    fn, tasks = _tiny(3)
    params = fn.initial()
    kwargs = {"steps": 2, "lr": 0.3, "size_weight": 1.0}
    analytic, _ = meta_gradient(fn, params, tasks, order=2, **kwargs)
    eps = 1e-6
    for name, value in params.items():
        numeric = torch.zeros_like(value)
        for i in range(value.numel()):
            up = {k: v.clone() for k, v in params.items()}
            down = {k: v.clone() for k, v in params.items()}
            up[name].view(-1)[i] += eps
            down[name].view(-1)[i] -= eps
            numeric.view(-1)[i] = (
                meta_loss(fn, up, tasks, order=2, **kwargs) - meta_loss(fn, down, tasks, order=2, **kwargs)
            ) / (2 * eps)
        torch.testing.assert_close(analytic[name], numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("window", [1, 4])
@pytest.mark.parametrize("order", [1, 2])
def test_vmap_over_tasks_equals_a_python_loop(window, order):
    fn, tasks = _tiny(5, window=window)
    params = fn.initial()
    kwargs = {"steps": 2, "lr": 0.2, "size_weight": 0.7, "order": order}
    batched, batched_loss = meta_gradient(fn, params, tasks, vectorize=True, **kwargs)
    looped, looped_loss = meta_gradient(fn, params, tasks, vectorize=False, **kwargs)
    torch.testing.assert_close(batched_loss, looped_loss, rtol=1e-12, atol=1e-12)
    for name in params:
        torch.testing.assert_close(batched[name], looped[name], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("layers", [1, 2])
def test_functional_gru_equals_the_module(layers):
    torch.manual_seed(layers)
    config = {"inputs": 3, "hidden": 5, "outputs": 2, "layers": layers, "standardize": True}
    card = ModelCard("gru", config, list("abc"), "maml", window=6)
    net = build(card)
    net.norm.mean.copy_(torch.tensor([1.0, -2.0, 0.5]))
    net.norm.std.copy_(torch.tensor([2.0, 0.5, 3.0]))
    x = torch.randn(7, 6, 3)
    fn = Functional(net)
    torch.testing.assert_close(fn(fn.initial(), x), net(x), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------------- tables and the CLI


def features_frame(symbols: int = 2, bars: int = 300, seed: int = 0) -> pl.DataFrame:
    """A small bar-grain features table: a random walk close and a few features, warm-up NaNs, a useless column."""
    rng = np.random.default_rng(seed)
    parts = []
    for s in range(symbols):
        ret = rng.normal(0, 1e-3, bars)
        f1 = rng.normal(size=bars)
        f2 = np.convolve(ret, np.ones(3), "same") + rng.normal(0, 1e-3, bars)
        f1[:4] = np.nan
        parts.append(
            pl.DataFrame(
                {
                    "ts": np.arange(bars, dtype=np.int64) * 60_000_000_000,
                    "symbol": [f"SYM{s}USDT"] * bars,
                    "interval": ["1m"] * bars,
                    "close": 100.0 * np.exp(np.cumsum(ret)),
                    "f1": f1,
                    "f2": f2,
                    "volume": rng.exponential(5.0, bars),
                    "vmd_1": 100.0 * np.exp(np.cumsum(ret)),
                    "dead": np.full(bars, np.nan),
                }
            )
        )
    return pl.concat(parts)


def test_build_tasks_shapes_purge_and_inputs():
    config = MamlConfig(task_bars=40, horizon=5, support_fraction=0.5, holdout=0.25, arch="gru", window=3)
    data = build_tasks(features_frame(), "f.parquet", config)
    assert data.features == ["f1", "f2", "volume"]
    assert data.dropped == {"dead": "no finite value"}
    support, query = config.split_rows()
    assert (support, query) == (20, 15)
    assert data.train.support_x.shape[1:] == (20, 3, 3)
    assert data.train.query_x.shape[1:] == (15, 3, 3)
    # 300 bars - 4 NaN rows - 2 more for the first full window - 5 without a target = 289; stride 45 -> 6 tasks.
    assert data.usable_rows == {"SYM0USDT": 289, "SYM1USDT": 289}
    assert len(data.train) == 2 * 4
    assert len(data.held_out) == 2 * 2
    assert all(name.startswith(("SYM0USDT@", "SYM1USDT@")) for name in data.held_out.names)
    labels = np.concatenate([data.train.support_y[..., 0].ravel(), data.train.query_y[..., 0].ravel()])
    assert set(np.unique(labels).tolist()) <= {0.0, 0.5, 1.0}


def test_build_tasks_rejects_bad_tables():
    config = MamlConfig(task_bars=40)
    with pytest.raises(SchemaError, match=r"f\.parquet: features table lacks columns \['close'\]"):
        build_tasks(features_frame().drop("close"), "f.parquet", config)
    nan_only = features_frame().with_columns(pl.lit(float("nan")).alias(c) for c in ("f1", "f2", "volume"))
    with pytest.raises(InputError, match=r"f\.parquet: no usable feature column"):
        build_tasks(nan_only, "f.parquet", config)
    with pytest.raises(InputError, match=r"f\.parquet: too few bars for the tasks"):
        build_tasks(features_frame(bars=60), "f.parquet", config)
    with pytest.raises(SchemaError, match=r"--inputs names columns the table lacks: \['nope'\]"):
        build_tasks(features_frame(), "f.parquet", MamlConfig(inputs=("f1", "nope")))
    with pytest.raises(InputError, match=r"f\.parquet: the features table has no rows"):
        build_tasks(features_frame().clear(), "f.parquet", config)
    with pytest.raises(InputError, match=r"--holdout 0\.99 holds out every task .*nothing is left to train on"):
        build_tasks(features_frame(), "f.parquet", MamlConfig(task_bars=40, holdout=0.99))
    # Finite but near 1e300: the spread overflows, and training would only say it diverged.
    huge = features_frame().with_columns((pl.col("f2") * 1e300).alias("f2"))
    with pytest.raises(InputError, match=r"f\.parquet: column 'f2' holds values too large to standardize"):
        build_tasks(huge, "f.parquet", config)


def _write_features(path, frame):
    write_table(frame, path, schema=FEATURES, producer="test")


def test_run_gru_writes_a_checkpoint_export_can_rebuild_and_is_deterministic(tmp_path):
    feats = tmp_path / "feats.parquet"
    _write_features(feats, features_frame())
    config = MamlConfig(arch="gru", hidden=(4,), window=3, task_bars=40, steps=3, tasks_per_batch=3, seed=4)
    outputs = []
    for name in ("a", "b"):
        out = tmp_path / name / "model.pt"
        report = run(str(feats), str(out), config, command="apexctl train maml ...")
        net, card = load_model(out)
        outputs.append({k: v.clone() for k, v in net.state_dict().items()})
    assert outputs[0].keys() == outputs[1].keys()
    assert all(torch.equal(outputs[0][k], outputs[1][k]) for k in outputs[0])
    assert card.arch == "gru"
    assert card.window == 3
    assert card.task == "maml"
    assert card.features == ["f1", "f2", "volume"]
    assert card.outputs == ["sign_logit", "size"]
    assert card.input_shape() == [-1, 3, 3]
    # The standardization is inside the module, so export sees the raw feature window.
    raw = torch.tensor(features_frame()[["f1", "f2", "volume"]][10:13].to_numpy(), dtype=torch.float32)[None]
    standardized = (raw - net.norm.mean) / net.norm.std
    assert float(net.norm.std[2]) > 1.0
    assert torch.allclose(net(raw), net.head(net.gru(standardized)[0][:, -1]))
    assert report["settings"]["arch"] == "gru"


def test_cli_end_to_end_and_bad_input(tmp_path):
    feats = tmp_path / "feats.parquet"
    _write_features(feats, features_frame())
    out = tmp_path / "out" / "model.pt"
    args = ["train", "maml", "--features", str(feats), "--task-bars", "40", "--steps", "4", "--inner-steps", "2"]
    result = run_cli(*args, "--hidden", "8", "--seed", "3", "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    assert "held-out loss after 2 steps" in result.stderr.decode()
    net, card = load_model(out)
    assert card.task == "maml"
    assert card.features == ["f1", "f2", "volume"]
    assert card.training_data == {str(feats): sha256_file(feats)}
    assert card.command.startswith("apexctl train maml --features")
    # What the bundle records of its bars: one-minute bars read from their times, the default options.
    assert card.bars == {"bar_seconds": 60, "options": {"rv_bars": 30, "vmd_modes": 3, "vmd_window": 64}}
    assert net(torch.zeros(5, 3)).shape == (5, 2)
    report = json.loads((tmp_path / "out" / "model.report.json").read_text())
    assert report["schema"] == "apex.maml_report"
    MamlReport.model_validate(report)
    assert len(report["held_out"]["meta"]["loss"]) == len(report["held_out"]["baseline"]["loss"]) == 3
    assert report["tasks"]["held_out"] == 4
    assert report["settings"]["inner_steps"] == 2

    bad = tmp_path / "bad.parquet"
    features_frame().drop("close").write_parquet(bad)
    result = run_cli("train", "maml", "--features", str(bad), "-o", str(tmp_path / "bad.pt"))
    stderr = result.stderr.decode()
    assert result.returncode == 2
    assert stderr.count("\n") == 1
    assert str(bad) in stderr
    assert "close" in stderr
    assert not (tmp_path / "bad.pt").exists()


def test_gru_window_1_reads_sequences_of_one_row():
    config = MamlConfig(task_bars=40, horizon=5, arch="gru", hidden=(4,), window=1)
    data = build_tasks(features_frame(), "f.parquet", config)
    # A GRU input is a sequence even of one row: [tasks, rows, window, features].
    assert data.train.support_x.shape[1:] == (20, 1, 3)
    assert data.held_out.query_x.shape[1:] == (15, 1, 3)
    mlp = build_tasks(features_frame(), "f.parquet", MamlConfig(task_bars=40, horizon=5))
    np.testing.assert_array_equal(data.train.support_x[:, :, 0], mlp.train.support_x)


def test_cli_gru_window_1_trains_and_exports_a_sequence_model(tmp_path):
    feats = tmp_path / "feats.parquet"
    _write_features(feats, features_frame())
    model = tmp_path / "mm" / "model.pt"
    args = ["--arch", "gru", "--window", "1", "--hidden", "4", "--task-bars", "40", "--steps", "3"]
    result = run_cli("train", "maml", "--features", str(feats), *args, "--inner-steps", "1", "-o", str(model))
    assert result.returncode == 0, result.stderr.decode()
    net, card = load_model(model)
    assert (card.arch, card.window, card.input_shape()) == ("gru", 1, [-1, 1, 3])
    bundle = tmp_path / "bundles" / "SYM0USDT" / "a"
    result = run_cli("export", "--maml", str(model), "--symbol", "SYM0USDT", "-o", str(bundle))
    assert result.returncode == 0, result.stderr.decode()
    (entry,) = json.loads((bundle / "manifest.json").read_text())["models"]
    assert entry["window"] == 1
    assert entry["inputs"] == [{"name": "features", "shape": [-1, 1, 3]}]
    # The Rust engine feeds each row as a window of one ([1, 1, n]) and is ready from the first row.
    rows = np.random.default_rng(0).standard_normal((6, 3))
    got = _core.policy_run(str(bundle), "maml", rows)
    with torch.no_grad():
        want = net(torch.tensor(rows, dtype=torch.float32)[:, None, :]).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_report_schema_file_is_current():
    path = Path(__file__).resolve().parents[2] / "apexctl" / "schemas" / "maml_report.schema.json"
    assert path.read_text() == maml_report_json_schema_text(), (
        "apexctl/schemas/maml_report.schema.json is stale: run "
        "`python -m apexctl.schemas.maml_report > apexctl/schemas/maml_report.schema.json`"
    )
