"""Bundles whose ONNX models load and pass the engine's sample-row check but fail when run on live rows: what the
engine's fallback to the previous champion (and the retirement of a failing challenger) is tested with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from apexctl.forge import io, outputs
from apexctl.forge.export import GP_FILE, MANIFEST, OPSET, SCHEMA, VERSION, check, role_outputs

#: The only feature the models read: the bar's close, a price far above the sample rows' values in [-1, 1].
FEATURES = ["close"]
#: Above this |input| a failing model reshapes its output to a size it cannot have: ONNX Runtime refuses the run.
LIVE_ABOVE = 1.5


def onnx_bytes(*, window: int, outputs_: int, value: float, fails: bool) -> bytes:
    """A model over the close: `outputs_` copies of `value` for each row (input `[batch, features]`, or `[batch,
    window, features]` when `window` > 1). When `fails`, a row with |close| above LIVE_ABOVE (any live price) makes
    its Reshape target one value longer than its output, and ONNX Runtime raises at run time; the check's sample
    rows (values in [-1, 1]) run."""
    width = len(FEATURES)
    shape: list[Any] = ["batch", width] if window == 1 else ["batch", window, width]
    limit = LIVE_ABOVE if fails else float(np.finfo(np.float32).max)

    def const(name: str, array: np.ndarray) -> onnx.NodeProto:
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name))

    nodes = [
        const("limit", np.array(limit, dtype=np.float32)),
        const("zero", np.array(0.0, dtype=np.float32)),
        const("value", np.array(value, dtype=np.float32)),
        const("axis0", np.array([0], dtype=np.int64)),
        const("width", np.array([outputs_], dtype=np.int64)),
        const("batch", np.array([-1], dtype=np.int64)),
        const("tile", np.array([1, outputs_], dtype=np.int64)),
        # live = max |x| > limit, as 0 or 1; the target shape is [-1, outputs + live].
        helper.make_node("Abs", ["x"], ["abs"]),
        helper.make_node("ReduceMax", ["abs"], ["largest"], keepdims=0),
        helper.make_node("Greater", ["largest", "limit"], ["is_live"]),
        helper.make_node("Cast", ["is_live"], ["live"], to=TensorProto.INT64),
        helper.make_node("Unsqueeze", ["live", "axis0"], ["live1"]),
        helper.make_node("Add", ["width", "live1"], ["columns"]),
        helper.make_node("Concat", ["batch", "columns"], ["target"], axis=0),
        # One `value` per output and row: x * 0 flattened, its row max, plus value, tiled.
        helper.make_node("Mul", ["x", "zero"], ["zeros"]),
        helper.make_node("Flatten", ["zeros"], ["flat"], axis=1),
        helper.make_node("ReduceMax", ["flat"], ["row"], axes=[1], keepdims=1),
        helper.make_node("Add", ["row", "value"], ["one"]),
        helper.make_node("Tile", ["one", "tile"], ["values"]),
        helper.make_node("Reshape", ["values", "target"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "fails_on_live_rows",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", outputs_])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def onnx_entry(name: str, *, window: int, outputs_: int) -> dict[str, Any]:
    """The manifest entry of an ONNX model made by `onnx_bytes` (an IEL one declares the IEL trainer's task and
    actions, as `apexctl export --check` requires)."""
    shape = [-1, len(FEATURES)] if window == 1 else [-1, window, len(FEATURES)]
    meaning = role_outputs("iel") if name == "iel" else [f"output {i}" for i in range(outputs_)]
    return {
        "name": name,
        "kind": "onnx",
        "file": f"{name}.onnx",
        "features": FEATURES,
        "opset": OPSET,
        "window": window,
        "inputs": [{"name": "x", "shape": shape}],
        "outputs": [{"name": "y", "shape": [-1, outputs_], "meaning": meaning}],
        "info": {"task": name},
    }


def gp_entry(tree: dict) -> tuple[dict[str, Any], bytes]:
    """A GP signal over `clv` (the Pit Crew tests' trees) as a manifest entry and its file."""
    document = {"schema": "apex.gp_tree", "version": 1, "features": ["clv"], "root": tree}
    entry = {
        "name": "signal",
        "kind": "gp",
        "file": GP_FILE,
        "features": ["clv"],
        "window": 1,
        "outputs": [{"name": "signal", "shape": [1], "meaning": ["target position in [-1, 1]"]}],
    }
    return entry, (json.dumps(document) + "\n").encode()


def publish_bundle(folder: Path, models: list[tuple[dict[str, Any], bytes]], *, tag: str) -> str:
    """Writes a bundle of `models` (entry, file bytes) over `folder` as `apexctl export` does (staging folder checked by
    the engine's bundle check, then one atomic rename); `tag` makes its manifest, so its model id, unique. The id."""
    features: list[str] = []
    for entry, _ in models:
        features += [f for f in entry["features"] if f not in features]
    manifest = {
        "schema": SCHEMA,
        "version": VERSION,
        "symbol": "BTCUSDT",
        "slot": folder.name,
        "created_by": {"command": f"test {tag}", "apexctl_version": "test"},
        "features": features,
        "models": [entry for entry, _ in models],
        "files": {entry["file"]: io.sha256_bytes(data) for entry, data in models},
        "training_data": {},
    }
    folder.parent.mkdir(parents=True, exist_ok=True)
    with outputs.staged_folder(folder, replace=True) as staging:
        for entry, data in models:
            (staging / entry["file"]).write_bytes(data)
        (staging / MANIFEST).write_text(io.dumps(io.jsonable(manifest), indent=2) + "\n")
        check(staging)
    return io.sha256_bytes((folder / MANIFEST).read_bytes())
