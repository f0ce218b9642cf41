"""GP strategies in DEAP: the typed primitive set (the reference semantics on NumPy columns), JSON I/O, Rust evaluation.

The functions of the primitive set ARE the reference semantics of `apex-gp` (see rs/apex-gp/src/lib.rs): they work on
whole NumPy columns, the rolling ops add each window from oldest to newest starting at 0.0, and `tanh` is the
contract's own (`apex_gp::tanh`, not the C library's, which differs between platforms), computed with the same float
operations in the same order as the Rust evaluators, so results agree bit for bit.

DEAP cannot call a primitive named after a Python keyword, so `and`, `or`, `not` are `and_`, `or_`, `not_` inside DEAP
and keep their contract names in JSON. Window arguments are a type of their own with terminals only; DEAP's
`genFull`/`genHalfAndHalf` insist on a primitive for every type below the maximum depth, so use this module's
`gen_half_and_half` (DEAP's algorithm, falling back to a terminal for types that have no primitive).
"""

from __future__ import annotations

import contextvars
import functools
import json
import keyword
import math
import random
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
from deap import gp

from apexctl import _core
from apexctl.console import safe
from apexctl.errors import DataError, InputError
from apexctl.forge.io import describe, parse_json, read_bounded

SCHEMA = "apex.gp_tree"
VERSION = 1
#: Window lengths the generators draw from (any 1..=1000 loads).
WINDOWS = (1, 2, 3, 5, 10, 20, 50)
#: Divisors and standard deviations below this make `div` and `ts_zscore` return 0.0.
PROTECT_EPS = 1e-12
#: The Rust loader's limits (apex-gp `Limits::default()`): height 17 (DEAP's customary bloat limit), 4096 nodes.
MAX_HEIGHT = 17
MAX_NODES = 4096
#: Largest GP tree file read: a tree within MAX_NODES, pretty-printed at MAX_HEIGHT, is well under 1 MB, so a larger
#: file is refused after reading this much instead of being parsed whole.
TREE_MAX_BYTES = 4 << 20

Column = npt.NDArray[np.float64]


class Window:
    """DEAP type of window-length arguments (the terminals are plain ints)."""


# Rows of the columns being evaluated: constant subtrees give scalars, and `lag` of a scalar needs the length.
_ROWS: contextvars.ContextVar[int] = contextvars.ContextVar("apex_gp_rows")


def _column(x: Any) -> Column:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0:
        try:
            rows = _ROWS.get()
        except LookupError:
            raise DataError("GP reference: evaluate trees through reference_evaluate (it sets the row count)") from None
        return np.full(rows, float(arr))
    return arr


def _div(a: Any, b: Any) -> Any:
    with np.errstate(all="ignore"):
        return np.where(np.abs(b) < PROTECT_EPS, 0.0, np.divide(a, b))


def _lag(x: Any, k: int) -> Column:
    col = _column(x)
    out = np.full(len(col), np.nan)
    if k < len(col):
        out[k:] = col[: len(col) - k]
    return out


def _windows(x: Any, k: int) -> tuple[Column, list[tuple[Column, npt.NDArray[np.bool_]]], Column]:
    """The column, its window members oldest first as (values, present) pairs, and the window sizes min(t+1, k)."""
    col = _column(x)
    n = len(col)
    padded = np.concatenate([np.zeros(k - 1), col])
    rows = np.arange(n)
    members = [(padded[j : j + n], rows + j >= k - 1) for j in range(k)]
    return col, members, np.minimum(rows + 1, k).astype(np.float64)


def _mean(members: list[tuple[Column, npt.NDArray[np.bool_]]], m: Column) -> Column:
    acc = np.zeros(len(m))
    for values, present in members:
        acc = np.where(present, acc + values, acc)
    return acc / m


def _std(members: list[tuple[Column, npt.NDArray[np.bool_]]], m: Column) -> Column:
    mu = _mean(members, m)
    acc = np.zeros(len(m))
    for values, present in members:
        d = values - mu
        acc = np.where(present, acc + d * d, acc)
    return np.sqrt(acc / m)


def _ts_mean(x: Any, k: int) -> Column:
    _, members, m = _windows(x, k)
    return _mean(members, m)


def _ts_std(x: Any, k: int) -> Column:
    _, members, m = _windows(x, k)
    return _std(members, m)


def _ts_zscore(x: Any, k: int) -> Column:
    col, members, m = _windows(x, k)
    sd = _std(members, m)
    with np.errstate(all="ignore"):
        return np.where(sd < PROTECT_EPS, 0.0, (col - _mean(members, m)) / sd)


def _ts_extreme(pick: Callable[[Column, Column], Column], start: float) -> Callable[[Any, int], Column]:
    def extreme(x: Any, k: int) -> Column:
        col, members, _ = _windows(x, k)
        acc = np.full(len(col), start)
        for values, present in members:
            acc = np.where(present, pick(acc, values), acc)
        return acc

    return extreme


def _ts_rank(x: Any, k: int) -> Column:
    col, members, m = _windows(x, k)
    below = np.zeros(len(col))
    equal = np.zeros(len(col))
    has_nan = np.zeros(len(col), dtype=bool)
    for values, present in members:
        below += present & (values < col)
        equal += present & (values == col)
        has_nan |= present & np.isnan(values)
    with np.errstate(all="ignore"):
        rank = np.where(m == 1.0, 0.5, (below + 0.5 * (equal - 1.0)) / (m - 1.0))
    return np.where(has_nan, np.nan, rank)


def _f64(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


# The constants of `apex_gp::tanh` (rs/apex-gp/src/kernels.rs), which documents the method.
_LN2_HI, _LN2_LO = _f64(0x3FE62E42FEE00000), _f64(0x3DEA39EF35793C76)
_LOG2_E = 1.4426950408889634
_ROUNDER = 6755399441055744.0
_ROUNDER_BITS = np.int64(0x4338000000000000)
_EXPM1 = (
    0.5,
    0.16666666666666666,
    0.041666666666666664,
    0.008333333333333333,
    0.001388888888888889,
    0.0001984126984126984,
    2.48015873015873e-05,
    2.7557319223985893e-06,
    2.755731922398589e-07,
    2.505210838544172e-08,
    2.08767569878681e-09,
    1.6059043836821613e-10,
)
_TANH_SMALL = (
    -0.333333333333333,
    0.13333333333326833,
    -0.05396825396387826,
    0.021869488389093708,
    -0.008863232652639582,
    0.003592092531111528,
    -0.0014555459753001745,
    0.000588457014460456,
    -0.00023341264379724913,
    8.335995224389472e-05,
    -1.9520957823074092e-05,
)


def _horner(x: Any, coefficients: Sequence[float]) -> Any:
    acc = np.full_like(x, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        acc = acc * x + c
    return acc


def _tanh(x: Any) -> Any:
    """The contract's tanh: `apex_gp::tanh`'s float operations, one NumPy operation each (NumPy fuses none)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        a = np.abs(x)
        a = np.where(a > 22.0, 22.0, a)
        y = 2.0 * a
        shifted = y * _LOG2_E + _ROUNDER
        kf = shifted - _ROUNDER
        k = shifted.view(np.int64) - _ROUNDER_BITS
        r = (y - kf * _LN2_HI) - kf * _LN2_LO
        s = r + (r * r) * _horner(r, _EXPM1)
        scale = ((k + 1023).astype(np.uint64) << np.uint64(52)).view(np.float64)
        t = scale * s + (scale - 1.0)
        u = a * a
        small = a + a * (u * _horner(u, _TANH_SMALL))
        return np.copysign(np.where(a > 0.55, 1.0 - 2.0 / (t + 2.0), small), x)


def _ema(x: Any, k: int) -> Column:
    col = _column(x)
    alpha = 2.0 / (k + 1.0)
    out = np.empty(len(col))
    average: float | None = None
    for t, value in enumerate(col.tolist()):
        if math.isnan(value):  # no update
            out[t] = np.nan
            continue
        average = value if average is None else average + alpha * (value - average)
        out[t] = average
    return out


F, B, W = float, bool, Window
#: (contract name, DEAP name, function, argument types, result type): the one table of primitives.
PRIMITIVES: tuple[tuple[str, str, Callable[..., Any], list[type], type], ...] = (
    ("add", "add", np.add, [F, F], F),
    ("sub", "sub", np.subtract, [F, F], F),
    ("mul", "mul", np.multiply, [F, F], F),
    ("div", "div", _div, [F, F], F),
    ("neg", "neg", np.negative, [F], F),
    ("abs", "abs", np.abs, [F], F),
    ("sign", "sign", np.sign, [F], F),
    ("tanh", "tanh", _tanh, [F], F),
    ("min", "min", np.minimum, [F, F], F),
    ("max", "max", np.maximum, [F, F], F),
    ("gt", "gt", np.greater, [F, F], B),
    ("lt", "lt", np.less, [F, F], B),
    ("and", "and_", np.logical_and, [B, B], B),
    ("or", "or_", np.logical_or, [B, B], B),
    ("not", "not_", np.logical_not, [B], B),
    ("if_then_else", "if_then_else", np.where, [B, F, F], F),
    ("lag", "lag", _lag, [F, W], F),
    ("ts_mean", "ts_mean", _ts_mean, [F, W], F),
    ("ts_std", "ts_std", _ts_std, [F, W], F),
    ("ts_zscore", "ts_zscore", _ts_zscore, [F, W], F),
    ("ts_min", "ts_min", _ts_extreme(np.minimum, np.inf), [F, W], F),
    ("ts_max", "ts_max", _ts_extreme(np.maximum, -np.inf), [F, W], F),
    ("ts_rank", "ts_rank", _ts_rank, [F, W], F),
    ("ema", "ema", _ema, [F, W], F),
)
_TO_JSON = {deap_name: name for name, deap_name, *_ in PRIMITIVES}
_TO_DEAP = {name: deap_name for name, deap_name, *_ in PRIMITIVES}


def _random_constant() -> float:
    """Ephemeral constants: uniform in [-1, 1] (module level so every primitive set shares the same function)."""
    return random.uniform(-1.0, 1.0)


def primitive_set(feature_names: Sequence[str]) -> gp.PrimitiveSetTyped:
    """The typed DEAP primitive set over these features (in this order: compiled trees take one column each)."""
    names = list(feature_names)
    reserved = set(_TO_JSON) | {"const"}
    for name in names:
        if not name.isidentifier() or keyword.iskeyword(name) or name in reserved:
            raise DataError(f"feature {name!r}: GP feature names must be Python identifiers and not primitive names")
    if len(set(names)) != len(names):
        raise DataError(f"GP feature names repeat: {names}")
    pset = gp.PrimitiveSetTyped("apex_gp", [float] * len(names), float, prefix="ARG")
    pset.renameArguments(**{f"ARG{i}": name for i, name in enumerate(names)})
    for _, deap_name, function, args, ret in PRIMITIVES:
        pset.addPrimitive(function, args, ret, name=deap_name)
    pset.addEphemeralConstant("const", _random_constant, float)
    for k in WINDOWS:
        pset.addTerminal(k, Window)
    pset.addTerminal(True, bool)
    pset.addTerminal(False, bool)
    return pset


def _generate(
    pset: gp.PrimitiveSetTyped,
    min_: int,
    max_: int,
    condition: Callable[[int, int], bool],
    type_: type | None = None,
) -> list[Any]:
    """DEAP's `gp.generate`, except that a type without primitives (Window) always gets a terminal. `type_` is the
    root type (default: the set's return type), as `gp.mutUniform` asks for subtrees of the replaced node's type."""
    expr: list[Any] = []
    height = random.randint(min_, max_)
    stack: list[tuple[int, type]] = [(0, type_ or pset.ret)]
    while stack:
        depth, node_type = stack.pop()
        if condition(height, depth) or not pset.primitives[node_type]:
            term = random.choice(pset.terminals[node_type])
            if isinstance(term, gp.MetaEphemeral):
                term = term()
            expr.append(term)
        else:
            prim = random.choice(pset.primitives[node_type])
            expr.append(prim)
            stack.extend((depth + 1, arg) for arg in reversed(prim.args))
    return expr


def gen_full(pset: gp.PrimitiveSetTyped, min_: int, max_: int, type_: type | None = None) -> list[Any]:
    """DEAP's genFull for this set: every branch reaches the drawn height."""
    return _generate(pset, min_, max_, lambda height, depth: depth == height, type_)


def gen_grow(pset: gp.PrimitiveSetTyped, min_: int, max_: int, type_: type | None = None) -> list[Any]:
    """DEAP's genGrow for this set: branches may stop early."""

    def condition(height: int, depth: int) -> bool:
        return depth == height or (depth >= min_ and random.random() < pset.terminalRatio)

    return _generate(pset, min_, max_, condition, type_)


def gen_half_and_half(pset: gp.PrimitiveSetTyped, min_: int, max_: int, type_: type | None = None) -> list[Any]:
    """DEAP's genHalfAndHalf for this set (use it for `toolbox.expr` and `gp.mutUniform`)."""
    return random.choice((gen_grow, gen_full))(pset, min_, max_, type_)


#: Each primitive's opening text in a tree document, and the text of each leaf that is not a constant, by value.
_OPEN = {deap_name: f'{{"op": {json.dumps(name)}, "args": [' for name, deap_name, *_ in PRIMITIVES}
_BOOL = {True: '{"bool": true}', False: '{"bool": false}'}
_DOCUMENT_HEAD = f'{{"schema": {json.dumps(SCHEMA)}, "version": {json.dumps(VERSION)}, "features": '


@functools.cache
def _feature_leaf(name: str) -> str:
    return f'{{"feature": {json.dumps(name)}}}'


def to_json(tree: gp.PrimitiveTree) -> str:
    """The tree as an `apex.gp_tree` version 1 document (features = those used, sorted): the text `json.dumps` writes
    for it, put together from each node's piece in one pass over the prefix order (evolve writes every new tree, some
    50,000 a generation, and building the nested dicts for `json.dumps` took twice as long)."""
    features: set[str] = set()
    parts: list[str] = []
    open_args: list[int] = []  # arguments still to come, per primitive not yet closed
    for node in tree:
        if isinstance(node, gp.Primitive):
            parts.append(_OPEN[node.name])
            open_args.append(node.arity)
            continue
        value = node.value
        if node.ret is Window:
            parts.append(f'{{"window": {int(value)}}}')
        elif node.ret is bool:
            parts.append(_BOOL[bool(value)])
        elif isinstance(value, str):
            features.add(value)
            parts.append(_feature_leaf(value))
        else:
            parts.append(f'{{"const": {json.dumps(float(value))}}}')
        while open_args:  # this node ends an argument; close every primitive whose last argument it was
            open_args[-1] -= 1
            if open_args[-1]:
                parts.append(", ")
                break
            open_args.pop()
            parts.append("]}")
    return f'{_DOCUMENT_HEAD}{json.dumps(sorted(features))}, "root": {"".join(parts)}}}'


def _node_from_json(node: dict[str, Any], pset: gp.PrimitiveSetTyped, out: list[Any]) -> None:
    if "op" in node:
        out.append(pset.mapping[_TO_DEAP[node["op"]]])
        for arg in node["args"]:
            _node_from_json(arg, pset, out)
    elif "feature" in node:
        out.append(pset.mapping[node["feature"]])
    elif "const" in node:
        ephemeral = pset.mapping["const"]
        constant = ephemeral.__new__(ephemeral)
        constant.value = float(node["const"])
        out.append(constant)
    elif "bool" in node:
        out.append(next(t for t in pset.terminals[bool] if t.value is node["bool"]))
    else:
        k = int(node["window"])
        out.append(next((t for t in pset.terminals[Window] if t.value == k), None) or gp.Terminal(k, False, Window))


def read_tree_text(path: str | Path, option: str) -> str:
    """The text of a GP tree file, read with a size bound (TREE_MAX_BYTES) and checked to be strict JSON (the Rust
    loader would let a repeated key's last value win); errors name the file and the option."""
    data = read_bounded(path, f"a GP tree ({SCHEMA} JSON) for {option}", TREE_MAX_BYTES)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{safe(describe(path))}: {option}: not UTF-8 text; expected a GP tree") from None
    parse_json(text, f"{describe(path)}: {option}", f"a GP tree ({SCHEMA} JSON)")
    return text


def from_json(text: str, pset: gp.PrimitiveSetTyped) -> gp.PrimitiveTree:
    """The DEAP tree of a document; the Rust loader validates it first (DataError names the bad node's path)."""
    normalized = _core.gp_validate(text, list(pset.arguments))
    expr: list[Any] = []
    _node_from_json(json.loads(normalized)["root"], pset, expr)
    return gp.PrimitiveTree(expr)


def signal(value: Any, rows: int) -> Column:
    """The final signal: the value broadcast to `rows`, clipped to [-1, 1], NaN mapped to 0.0, -0.0 to 0.0."""
    column = np.broadcast_to(np.asarray(value, dtype=np.float64), (rows,))
    return np.where(np.isnan(column), 0.0, np.clip(column, -1.0, 1.0) + 0.0)


def reference_evaluate(tree: gp.PrimitiveTree, pset: gp.PrimitiveSetTyped, columns: Sequence[Column]) -> Column:
    """The reference signal of `tree`: DEAP's `gp.compile` run on the columns (one per feature of `pset`)."""
    rows = len(columns[0]) if columns else 0
    function = gp.compile(tree, pset)
    token = _ROWS.set(rows)
    try:
        with np.errstate(all="ignore"):
            value = function(*[np.asarray(c, dtype=np.float64) for c in columns])
    finally:
        _ROWS.reset(token)
    return signal(value, rows)


def frame_columns(frame: pl.DataFrame) -> tuple[list[str], list[Column]]:
    """The numeric feature columns of a frame (everything numeric but `ts`) as float64, nulls as NaN."""
    names = [n for n, dtype in frame.schema.items() if dtype.is_numeric() and n != "ts"]
    columns = [frame.get_column(n).cast(pl.Float64).fill_null(np.nan).to_numpy() for n in names]
    return names, columns


def evaluate(trees_json: Sequence[str], frame: pl.DataFrame, *, max_depth: int = 17, max_nodes: int = 4096) -> Column:
    """Signals (trees x rows) of the JSON trees over the frame's feature columns, computed in Rust in parallel."""
    names, columns = frame_columns(frame)
    return _core.gp_evaluate(list(trees_json), names, columns, max_depth=max_depth, max_nodes=max_nodes)
