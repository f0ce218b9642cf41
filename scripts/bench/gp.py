"""Benchmark: GP node evaluations per second, Rust batch (apex-gp through apexctl._core) vs DEAP gp.compile on NumPy."""

from __future__ import annotations

import argparse
import random

import numpy as np
from common import best_of, report
from deap import gp

from apexctl import _core
from apexctl.forge import gp as forge_gp

NAMES = ["ofi_l1", "pressure", "ret_1", "ret_5", "spread", "vol"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trees", type=int, default=200, help="random trees (genHalfAndHalf, height 2..6)")
    parser.add_argument("--rows", type=int, default=20_000, help="rows of each feature column")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    random.seed(args.seed)
    rng = np.random.default_rng(args.seed)
    columns = [rng.standard_normal(args.rows) for _ in NAMES]
    pset = forge_gp.primitive_set(NAMES)
    trees = [gp.PrimitiveTree(forge_gp.gen_half_and_half(pset, 2, 6)) for _ in range(args.trees)]
    texts = [forge_gp.to_json(tree) for tree in trees]
    node_evals = sum(len(tree) for tree in trees) * args.rows

    def ours() -> np.ndarray:
        return _core.gp_evaluate(texts, NAMES, columns)

    def peer() -> list[np.ndarray]:
        return [forge_gp.reference_evaluate(tree, pset, columns) for tree in trees]

    np.testing.assert_allclose(ours(), np.stack(peer()), rtol=forge_gp.RTOL, atol=forge_gp.ATOL)
    ours_s = best_of(ours)
    peer_s = best_of(peer, repeats=1)
    title = f"gp: {args.trees} random trees x {args.rows:,} rows ({node_evals:,} node evaluations), checked equal"
    report(title, "node-evals", node_evals, ours_s, peer_s, "deap+numpy")


if __name__ == "__main__":
    main()
