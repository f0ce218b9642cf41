"""A DEAP tree's shape counted node by node in Python: what `_core.gp_shapes` must return for the tree's JSON."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from deap import gp

from apexctl.forge.gp import PRIMITIVES, Window


def shapes(trees: Sequence[gp.PrimitiveTree], names: Sequence[str]) -> np.ndarray:
    """Size, height, constants, window sum, largest window, then per-primitive and per-feature counts."""
    primitive_index = {deap_name: i for i, (_, deap_name, *_) in enumerate(PRIMITIVES)}
    feature_index = {name: i for i, name in enumerate(names)}
    n_ops = len(PRIMITIVES)
    out = np.zeros((len(trees), 5 + n_ops + len(names)))
    for row, tree in enumerate(trees):
        values = out[row]
        values[0] = len(tree)
        values[1] = tree.height
        window_max = 0
        for node in tree:
            if isinstance(node, gp.Primitive):
                values[5 + primitive_index[node.name]] += 1
            elif node.ret is Window:
                values[3] += node.value
                window_max = max(window_max, node.value)
            elif node.ret is float:
                if isinstance(node.value, str):
                    values[5 + n_ops + feature_index[node.value]] += 1
                else:
                    values[2] += 1
        values[4] = window_max
    return out
