"""The Rust inference engine from Python: ONNX parity with onnxruntime, GP parity with gp_stream, bundle checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import onnxruntime
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from apexctl import _core, _ort
from apexctl.errors import DataError
from apexctl.forge.export import ExportConfig, bundle_schema, export
from apexctl.forge.nets import ModelCard, build, save_model

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "apexctl" / "schemas" / "bundle.schema.json"
NAMES = ["ofi_l1", "book_pressure", "clv", "rv"]
TREE = {
    "schema": "apex.gp_tree",
    "version": 1,
    "features": ["clv", "ofi_l1", "rv"],
    "root": {
        "op": "if_then_else",
        "args": [
            {"op": "gt", "args": [{"feature": "rv"}, {"const": 0.0}]},
            {"op": "ts_zscore", "args": [{"feature": "ofi_l1"}, {"window": 5}]},
            {"op": "mul", "args": [{"op": "ema", "args": [{"feature": "clv"}, {"window": 4}]}, {"const": -2.0}]},
        ],
    },
}
# Each network in the slot whose role it has (export checks the task and the outputs): the IEL an MLP over one row,
# with one logit per action; the MAML model here a GRU over a window, with its two heads.
ACTIONS = ["aggressive", "passive_touch", "passive_inside", "wait"]
MLP = ModelCard("mlp", {"inputs": 3, "hidden": [8, 8], "outputs": 4}, ["clv", "ofi_l1", "book_pressure"], "iel",
                outputs=ACTIONS)  # fmt: skip
GRU = ModelCard("gru", {"inputs": 2, "hidden": 6, "outputs": 2}, ["rv", "ofi_l1"], "maml", window=5,
                outputs=["sign_logit", "size"])  # fmt: skip


def hall_of_fame(folder: Path, tree: dict = TREE, names: list[str] = NAMES) -> Path:
    """A hand-made hall_of_fame/ folder with one tree (the layout `apexctl evolve` writes)."""
    folder.mkdir(parents=True)
    (folder / "001.json").write_text(json.dumps(tree))
    entry = {"rank": 1, "file": "001.json", "size": 9, "height": 3, "train": {"pnl": 1.0}, "held_out": {"pnl": 0.5}}
    index = {"schema": "apex.hall_of_fame", "version": 1, "symbol": "SOLUSDT", "features": names, "entries": [entry]}
    (folder / "index.json").write_text(json.dumps(index))
    return folder


def checkpoint(path: Path, card: ModelCard, seed: int) -> Path:
    torch.manual_seed(seed)
    save_model(path, build(card), card)
    return path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("infer")
    config = ExportConfig(
        output=root / "bundles" / "SOLUSDT" / "a",
        hall_of_fame=hall_of_fame(root / "hall_of_fame"),
        maml=checkpoint(root / "maml.pt", GRU, 2),
        iel=checkpoint(root / "iel.pt", MLP, 1),
        command="test",
    )
    return export(config).output


def bundle_rows(bundle: Path, rows: int, seed: int) -> tuple[list[str], np.ndarray]:
    features = json.loads((bundle / "manifest.json").read_text())["features"]
    return features, np.random.default_rng(seed).standard_normal((rows, len(features)))


def ort_session(path: Path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize(("file", "shape"), [("iel.onnx", (7, 3)), ("maml.onnx", (7, 5, 2))])
def test_onnx_batch_call_matches_onnxruntime(bundle, file, shape):
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    want = ort_session(bundle / file).run(None, {"features": x})[0]
    got = _core.onnx_run(str(bundle / file), x)
    assert got.dtype == np.float32
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_mlp_policy_streams_rows_like_onnxruntime(bundle):
    features, rows = bundle_rows(bundle, 40, seed=4)
    columns = [features.index(f) for f in MLP.features]
    x = rows[:, columns].astype(np.float32)
    session = ort_session(bundle / "iel.onnx")
    want = np.vstack([session.run(None, {"features": x[t : t + 1]})[0] for t in range(len(x))])
    got = _core.policy_run(str(bundle), "iel", rows)
    assert got.shape == (40, 4)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_gru_policy_feeds_a_sliding_window_and_is_nan_until_full(bundle):
    features, rows = bundle_rows(bundle, 30, seed=5)
    x = rows[:, [features.index(f) for f in GRU.features]].astype(np.float32)
    session = ort_session(bundle / "maml.onnx")
    w = GRU.window
    got = _core.policy_run(str(bundle), "maml", rows)
    assert got.shape == (30, 2)
    assert np.isnan(got[: w - 1]).all(), "not ready until the window holds `window` rows"
    want = np.vstack([session.run(None, {"features": x[None, t + 1 - w : t + 1]})[0] for t in range(w - 1, len(x))])
    np.testing.assert_allclose(got[w - 1 :], want, rtol=0, atol=1e-5)
    again = _core.policy_run(str(bundle), "maml", rows)
    np.testing.assert_array_equal(got, again)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 60), nan_share=st.sampled_from([0.0, 0.1]))
def test_gp_policy_equals_gp_stream_exactly(bundle, seed, rows, nan_share):
    features, data = bundle_rows(bundle, rows, seed)
    rng = np.random.default_rng(seed + 1)
    data[rng.random(data.shape) < nan_share] = np.nan
    data[rng.random(data.shape) < 0.05] = 0.0
    got = _core.policy_run(str(bundle), "signal", data)[:, 0]
    manifest = json.loads((bundle / "manifest.json").read_text())
    gp_features = manifest["models"][0]["features"]
    want = _core.gp_stream(
        (bundle / "signal.gp.json").read_text(), gp_features, [data[:, features.index(f)].copy() for f in gp_features]
    )
    np.testing.assert_array_equal(got.view(np.uint64), want.view(np.uint64))


def test_check_reports_what_it_verified(bundle):
    report = _core.bundle_check(str(bundle))
    assert report["symbol"] == "SOLUSDT"
    assert report["slot"] == "a"
    assert sorted(report["files"]) == ["iel.onnx", "maml.onnx", "signal.gp.json"]
    assert [(m["name"], m["kind"], m["outputs"], m["window"]) for m in report["models"]] == [
        ("signal", "gp", 1, 1),
        ("maml", "onnx", 2, 5),
        ("iel", "onnx", 4, 1),
    ]
    assert all(np.isfinite(m["last_output"]).all() for m in report["models"])
    same = _core.bundle_check(str(bundle), report["features"])
    assert same["features"] == report["features"]


def test_wrong_feature_order_names_the_feature_and_position(bundle):
    features = json.loads((bundle / "manifest.json").read_text())["features"]
    swapped = [features[1], features[0], *features[2:]]
    with pytest.raises(DataError, match=rf"position 0: the bundle expects {features[0]!r}".replace("'", '"')):
        _core.bundle_check(str(bundle), swapped)
    with pytest.raises(DataError, match="the engine does not compute it"):
        _core.bundle_check(str(bundle), ["vpin", *features[1:]])


def test_tampered_file_is_a_hash_error(bundle, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in bundle.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    tree = json.loads((copy / "signal.gp.json").read_text())
    tree["root"]["args"][2]["args"][1]["const"] = 2.0
    (copy / "signal.gp.json").write_text(json.dumps(tree))
    with pytest.raises(DataError, match=r"file \"signal\.gp\.json\" has SHA-256 .*the file was changed"):
        _core.bundle_check(str(copy))
    with pytest.raises(DataError, match='no model named "nope"'):
        _core.policy_run(str(bundle), "nope", np.zeros((1, 4)))


def test_committed_schema_is_current_and_the_manifest_follows_it(bundle):
    assert SCHEMA_FILE.read_text() == _core.bundle_schema(), (
        "regenerate: python -c 'from apexctl import _core; print(_core.bundle_schema(), end=\"\")' "
        "> apexctl/schemas/bundle.schema.json"
    )
    manifest = json.loads((bundle / "manifest.json").read_text())
    jsonschema.validate(manifest, bundle_schema())
    bad = dict(manifest, version="1")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, bundle_schema())


def test_the_wheel_library_is_found_without_importing_onnxruntime(bundle):
    code = (
        "import sys, os; from apexctl import _core; print(os.environ['ORT_DYLIB_PATH']);"
        f"print('onnxruntime' in sys.modules); print(len(_core.bundle_check({str(bundle)!r})['models']))"
    )
    env = {k: v for k, v in os.environ.items() if k != _ort.VARIABLE}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True, text=True).stdout
    path, imported, models = out.split()
    assert Path(path).is_file()
    assert "libonnxruntime" in Path(path).name
    assert imported == "False"
    assert models == "3", "the Rust engine loaded ONNX Runtime from the wheel without ORT_DYLIB_PATH set"


def test_a_missing_runtime_is_a_clear_error(bundle):
    env = dict(os.environ, ORT_DYLIB_PATH="/nonexistent/libonnxruntime.so")
    code = f"from apexctl import _core; _core.bundle_check({str(bundle)!r})"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "ORT_DYLIB_PATH=/nonexistent/libonnxruntime.so is not a file" in result.stderr
    assert "scripts/just" in result.stderr
