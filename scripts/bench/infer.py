"""Benchmark: single-decision latency of the Rust inference engine (GP tree, ONNX MLP, ONNX GRU) vs Python peers.

Each decision is one bar: push one feature row, get the policy's output. Rust latencies are timed inside Rust around
each `Policy::decide` (`_core.policy_latency`, one row at a time, as the live engine calls it); the peers are timed
in Python around each call: onnxruntime's `InferenceSession.run` on the same ONNX file with a [1, n] or
[1, window, n] input (one intra-op thread on both sides), and, for the GP tree, the NumPy/DEAP reference
re-evaluating the tree over the last `--history` rows each bar (what a non-streaming evaluator must do).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from common import arguments
from deap import gp

from apexctl import _core
from apexctl.forge import gp as forge_gp
from apexctl.forge.export import ExportConfig, export, role_outputs
from apexctl.forge.nets import ModelCard, build, save_model

FEATURES = [f"f{i:02d}" for i in range(16)]


def gp_tree_of_size(target: int, seed: int) -> tuple[str, gp.PrimitiveTree, gp.PrimitiveSetTyped]:
    """A random tree (genHalfAndHalf) of about `target` nodes over FEATURES."""
    random.seed(seed)
    pset = forge_gp.primitive_set(FEATURES)
    while True:
        tree = gp.PrimitiveTree(forge_gp.gen_half_and_half(pset, 4, 7))
        if abs(len(tree) - target) <= 3:
            return forge_gp.to_json(tree), tree, pset


def make_bundle(folder: Path, args: argparse.Namespace) -> tuple[Path, gp.PrimitiveTree, gp.PrimitiveSetTyped]:
    text, tree, pset = gp_tree_of_size(args.gp_nodes, args.seed)
    hof = folder / "hall_of_fame"
    hof.mkdir()
    (hof / "001.json").write_text(text)
    index = {"schema": "apex.hall_of_fame", "version": 1, "symbol": "BENCH", "features": FEATURES}
    index["entries"] = [{"rank": 1, "file": "001.json", "size": len(tree)}]
    (hof / "index.json").write_text(json.dumps(index))
    torch.manual_seed(args.seed)
    n = len(FEATURES)
    # Export takes only the outputs each role's trainer declares (the live engine reads them by index).
    maml_outputs, iel_outputs = role_outputs("maml"), role_outputs("iel")
    mlp_config = {"inputs": n, "hidden": [64, 64], "outputs": len(maml_outputs)}
    gru_config = {"inputs": n, "hidden": 32, "outputs": len(iel_outputs)}
    mlp = ModelCard("mlp", mlp_config, FEATURES, "maml", outputs=maml_outputs)
    gru = ModelCard("gru", gru_config, FEATURES, "iel", window=args.window, outputs=iel_outputs)
    save_model(folder / "mlp.pt", build(mlp), mlp)
    save_model(folder / "gru.pt", build(gru), gru)
    config = ExportConfig(folder / "bundle", hall_of_fame=hof, maml=folder / "mlp.pt", iel=folder / "gru.pt")
    return export(config).output, tree, pset


def percentiles(ns: np.ndarray) -> tuple[float, float]:
    return float(np.percentile(ns, 50)) / 1e3, float(np.percentile(ns, 99)) / 1e3


def line(name: str, ours: np.ndarray, peer: np.ndarray, peer_name: str) -> None:
    o50, o99 = percentiles(ours)
    p50, p99 = percentiles(peer)
    print(f"{name}")
    print(f"  apexctl (Rust) : p50 {o50:9.2f} us   p99 {o99:9.2f} us")
    print(f"  {peer_name:<15}: p50 {p50:9.2f} us   p99 {p99:9.2f} us")
    print(f"  ratio          : p50 {p50 / o50:9.1f}x      p99 {p99 / o99:9.1f}x faster")


def python_onnx(path: Path, x: np.ndarray, window: int) -> np.ndarray:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    times = []
    for t in range(window - 1, len(x)):
        batch = x[t : t + 1] if window == 1 else x[None, t + 1 - window : t + 1]
        start = time.perf_counter_ns()
        session.run(None, {"features": batch})
        times.append(time.perf_counter_ns() - start)
    return np.array(times, dtype=np.float64)


def main() -> None:
    parser = arguments(__doc__, seed=3)
    parser.add_argument("--rows", type=int, default=3000, help="decisions timed per model")
    parser.add_argument("--gp-nodes", type=int, default=50, help="size of the GP tree")
    parser.add_argument("--window", type=int, default=32, help="rows per GRU input")
    parser.add_argument("--history", type=int, default=64, help="rows the non-streaming GP baseline re-evaluates")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        bundle, tree, pset = make_bundle(Path(tmp), args)
        manifest = json.loads((bundle / "manifest.json").read_text())
        rows = rng.standard_normal((args.rows, len(manifest["features"])))
        gp_features = manifest["models"][0]["features"]

        # Warm both sides up once (first-call allocations, ONNX Runtime's lazy init), then time.
        for model in ("signal", "maml", "iel"):
            _core.policy_latency(str(bundle), model, rows[:100])
        ours_gp = _core.policy_latency(str(bundle), "signal", rows)
        columns = [rows[:, manifest["features"].index(f)] for f in FEATURES]
        peer_gp = []
        for t in range(args.history, min(len(rows), args.history + 500)):
            recent = [c[t - args.history + 1 : t + 1] for c in columns]
            start = time.perf_counter_ns()
            forge_gp.reference_evaluate(tree, pset, recent)
            peer_gp.append(time.perf_counter_ns() - start)
        line(
            f"gp: one bar, {len(tree)}-node tree over {len(gp_features)} features (streaming evaluator)",
            ours_gp,
            np.array(peer_gp, dtype=np.float64),
            f"numpy@{args.history}rows",
        )
        x = rows.astype(np.float32)
        outputs = {role: len(role_outputs(role)) for role in ("maml", "iel")}
        ours_mlp = _core.policy_latency(str(bundle), "maml", rows)
        line(
            f"onnx mlp: one row [1, {len(FEATURES)}] -> {outputs['maml']}, hidden 64x64",
            ours_mlp,
            python_onnx(bundle / "maml.onnx", x, 1),
            "onnxruntime-py",
        )
        ours_gru = _core.policy_latency(str(bundle), "iel", rows)[args.window - 1 :]
        line(
            f"onnx gru: one row into a [1, {args.window}, {len(FEATURES)}] window -> {outputs['iel']}, hidden 32",
            ours_gru,
            python_onnx(bundle / "iel.onnx", x, args.window),
            "onnxruntime-py",
        )


if __name__ == "__main__":
    main()
