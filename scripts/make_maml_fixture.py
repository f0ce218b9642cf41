"""Writes rs/apex-infer/tests/fixtures/maml: MLPs exported to ONNX and their PyTorch MAML adaptation on support sets.

The cargo test `maml_parity` reads each ONNX file's weights, runs the Rust inner loop on the same support set and
compares the adapted weights and the adapted network's outputs with what `apexctl.forge.maml.adapt` (torch.func)
computed here. Run `.venv/bin/python scripts/make_maml_fixture.py` to regenerate (deterministic).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from apexctl.forge.export import export_onnx
from apexctl.forge.maml import Functional, adapt, loss_of
from apexctl.forge.nets import ModelCard, build

OUT = Path(__file__).resolve().parent.parent / "rs" / "apex-infer" / "tests" / "fixtures" / "maml"

CASES = [
    {
        "name": "tanh_std",
        "inputs": 4,
        "hidden": [8, 8],
        "activation": "tanh",
        "standardize": True,
        "steps": 3,
        "lr": 0.1,
        "size_weight": 1.0,
        "support": 12,
    },
    {
        "name": "relu_plain",
        "inputs": 3,
        "hidden": [5],
        "activation": "relu",
        "standardize": False,
        "steps": 5,
        "lr": 0.05,
        "size_weight": 0.5,
        "support": 7,
    },
]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(11)
    torch.manual_seed(11)
    cases = []
    for case in CASES:
        features = [f"x{i}" for i in range(case["inputs"])]
        config = {k: case[k] for k in ("inputs", "hidden", "activation", "standardize")} | {"outputs": 2}
        card = ModelCard("mlp", config, features, "maml", outputs=["sign_logit", "size"])
        net = build(card).eval()
        if case["standardize"]:
            net.norm.mean.copy_(torch.tensor(rng.normal(0, 1, case["inputs"]), dtype=torch.float32))
            net.norm.std.copy_(torch.tensor(rng.uniform(0.5, 2.0, case["inputs"]), dtype=torch.float32))
        export_onnx(net, card, OUT / f"{case['name']}.onnx")
        x = torch.tensor(rng.normal(0, 1.5, (case["support"], case["inputs"])), dtype=torch.float32)
        returns = rng.normal(0, 1, case["support"])
        returns[0] = 0.0
        sign = np.where(returns > 0, 1.0, np.where(returns < 0, 0.0, 0.5))
        y = torch.tensor(np.stack([sign, np.abs(returns) * 1.3], axis=1), dtype=torch.float32)
        query = torch.tensor(rng.normal(0, 1.5, (5, case["inputs"])), dtype=torch.float32)
        fn = Functional(net)
        params = fn.initial()
        adapted = adapt(fn, params, x, y, case["steps"], case["lr"], case["size_weight"], first_order=True)
        with torch.no_grad():
            before = float(loss_of(fn(params, x), y, case["size_weight"]))
            after = float(loss_of(fn(adapted, x), y, case["size_weight"]))
            outputs = fn(adapted, query).tolist()
        cases.append(
            {
                **case,
                "file": f"{case['name']}.onnx",
                "support_x": x.tolist(),
                "support_y": y.tolist(),
                "query": query.tolist(),
                "adapted": {name: value.detach().flatten().tolist() for name, value in adapted.items()},
                "outputs": outputs,
                "loss_before": before,
                "loss_after": after,
            }
        )
    (OUT / "cases.json").write_text(json.dumps(cases, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
