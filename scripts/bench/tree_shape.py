"""Benchmark: the surrogate's shape rows of one generation's new trees (`_core.gp_shapes` over their GP JSON, 50,000
trees by default) against the per-node Python walk over the DEAP trees that it replaced
(`tests/reference/surrogate_shape_reference.py`); rows checked equal."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
from common import arguments, best_of, report
from deap import gp

from apexctl import _core
from apexctl.forge.gp import gen_half_and_half, primitive_set, to_json

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.reference.surrogate_shape_reference import shapes as python_shapes


def main() -> None:
    parser = arguments(__doc__, repeats=3)
    parser.add_argument("--trees", type=int, default=50_000, help="trees to describe (default 50,000)")
    parser.add_argument("--features", type=int, default=20, help="feature terminals (default 20)")
    args = parser.parse_args()
    names = [f"f{i}" for i in range(args.features)]
    pset = primitive_set(names)
    random.seed(args.seed)
    trees = [gp.PrimitiveTree(gen_half_and_half(pset, 1, 6)) for _ in range(args.trees)]
    texts = [to_json(t) for t in trees]
    if not np.array_equal(_core.gp_shapes(texts, names), python_shapes(trees, names)):
        sys.exit("gp_shapes returned other rows than the Python walk")
    ours = best_of(lambda: _core.gp_shapes(texts, names), args.repeats)
    peer = best_of(lambda: python_shapes(trees, names), args.repeats)
    report(f"shape rows of {args.trees:,} trees (JSON loaded in Rust), rows equal", "trees", args.trees, ours, peer,
           "python walk")  # fmt: skip


if __name__ == "__main__":
    main()
