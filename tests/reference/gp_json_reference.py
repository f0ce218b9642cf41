"""A GP tree's document built the plain way: nested dicts for `json.dumps`; what `forge.gp.to_json` must write."""

from __future__ import annotations

import json
from typing import Any

from deap import gp

from apexctl.forge.gp import PRIMITIVES, SCHEMA, VERSION, Window

_TO_JSON = {deap_name: name for name, deap_name, *_ in PRIMITIVES}


def _node(tree: gp.PrimitiveTree, index: int, features: set[str]) -> tuple[dict[str, Any], int]:
    node = tree[index]
    if isinstance(node, gp.Primitive):
        args = []
        index += 1
        for _ in range(node.arity):
            arg, index = _node(tree, index, features)
            args.append(arg)
        return {"op": _TO_JSON[node.name], "args": args}, index
    if node.ret is Window:
        return {"window": int(node.value)}, index + 1
    if node.ret is bool:
        return {"bool": bool(node.value)}, index + 1
    if isinstance(node.value, str):
        features.add(node.value)
        return {"feature": node.value}, index + 1
    return {"const": float(node.value)}, index + 1


def to_json(tree: gp.PrimitiveTree) -> str:
    features: set[str] = set()
    root, _ = _node(tree, 0, features)
    return json.dumps({"schema": SCHEMA, "version": VERSION, "features": sorted(features), "root": root})
