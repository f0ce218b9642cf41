"""Regenerates rs/apex-infer/tests/fixtures: a tiny MLP and GRU exported to ONNX, rows, and onnxruntime's outputs.

The cargo parity tests load these ONNX files through `ort` and compare with the outputs onnxruntime computed here
(one row per call for the MLP, a sliding window of rows for the GRU), so the fixtures pin the Rust engine to
onnxruntime-in-Python. Run: `.venv/bin/python scripts/make_infer_fixtures.py` (deterministic: same files each run).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from apexctl.forge.export import export_onnx
from apexctl.forge.nets import ModelCard, build

OUT = Path(__file__).resolve().parent.parent / "rs" / "apex-infer" / "tests" / "fixtures"
FEATURES = ["ofi_l1", "book_pressure", "clv"]
ROWS = 10


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(7)
    rows = np.round(np.random.default_rng(7).standard_normal((ROWS, len(FEATURES))), 6)
    cases: dict = {"features": FEATURES, "rows": rows.tolist(), "models": {}}
    cards = {
        "mlp": ModelCard("mlp", {"inputs": 3, "hidden": [6], "outputs": 2}, FEATURES, "maml", outputs=["sign", "size"]),
        "gru": ModelCard("gru", {"inputs": 3, "hidden": 4, "outputs": 2}, FEATURES, "maml", window=4),
    }
    for name, card in cards.items():
        net = build(card).eval()
        path = OUT / f"{name}.onnx"
        export_onnx(net, card, path)
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        x = rows.astype(np.float32)
        if card.window == 1:
            expected = [session.run(None, {card.input_name: x[t : t + 1]})[0][0].tolist() for t in range(ROWS)]
        else:
            w = card.window
            expected = [
                None if t + 1 < w else session.run(None, {card.input_name: x[None, t + 1 - w : t + 1]})[0][0].tolist()
                for t in range(ROWS)
            ]
        cases["models"][name] = {
            "file": path.name,
            "window": card.window,
            "input": card.input_name,
            "output": card.output_name,
            "expected": expected,
        }
    (OUT / "cases.json").write_text(json.dumps(cases, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
