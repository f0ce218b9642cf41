"""GP trees from Python: Rust batch == DEAP's gp.compile reference, batch == streaming, JSON round trips, bad trees."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from deap import gp
from hypothesis import given, settings
from hypothesis import strategies as st

from apexctl import _core
from apexctl.errors import DataError
from apexctl.forge import gp as forge_gp
from tests.reference import gp_json_reference

NAMES = ["ofi_l1", "ret_1", "spread"]
SCHEMA_FILE = Path(__file__).resolve().parents[2] / "apexctl" / "schemas" / "gp_tree.schema.json"


def random_columns(rng: np.random.Generator, rows: int) -> list[np.ndarray]:
    """Columns with NaN gaps, exact ties, near-zero values and infinities, the cases the semantics single out."""
    columns = []
    for _ in NAMES:
        column = rng.normal(size=rows) * rng.choice([0.1, 1.0, 30.0], size=rows)
        column[rng.random(rows) < 0.05] = np.nan
        ties = rng.random(rows) < 0.1
        column[ties] = rng.integers(-2, 3, size=int(ties.sum()))
        column[rng.random(rows) < 0.03] = 1e-13
        column[rng.random(rows) < 0.01] = rng.choice([np.inf, -np.inf])
        columns.append(column)
    return columns


def random_trees(seed: int, count: int, pset: gp.PrimitiveSetTyped) -> list[gp.PrimitiveTree]:
    random.seed(seed)
    return [gp.PrimitiveTree(forge_gp.gen_half_and_half(pset, 1, 6)) for _ in range(count)]


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.all(a.view(np.uint64) == b.view(np.uint64)))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(0, 120))
def test_rust_batch_equals_the_deap_reference_and_streaming(seed, rows):
    pset = forge_gp.primitive_set(NAMES)
    trees = random_trees(seed, 20, pset)
    columns = random_columns(np.random.default_rng(seed), rows)
    texts = [forge_gp.to_json(tree) for tree in trees]
    batch = _core.gp_evaluate(texts, NAMES, np.column_stack(columns) if rows else columns)
    assert batch.shape == (len(trees), rows)
    into = np.full((len(trees), rows), 7.0)  # every value must be overwritten
    _core.gp_evaluate_into(texts, NAMES, columns, into)
    assert same_bits(into, batch)
    for tree, text, ours in zip(trees, texts, batch, strict=True):
        assert same_bits(ours, forge_gp.reference_evaluate(tree, pset, columns)), str(tree)
        assert same_bits(ours, _core.gp_stream(text, NAMES, columns)), str(tree)


def test_every_tree_matches_the_reference_bit_for_bit_tanh_included():
    pset = forge_gp.primitive_set(NAMES)
    trees = random_trees(11, 300, pset)
    columns = random_columns(np.random.default_rng(11), 600)
    batch = _core.gp_evaluate([forge_gp.to_json(t) for t in trees], NAMES, columns)
    for tree, ours in zip(trees, batch, strict=True):
        assert same_bits(ours, forge_gp.reference_evaluate(tree, pset, columns)), str(tree)
    assert sum("tanh" in str(t) for t in trees) > 30
    assert np.count_nonzero(batch) > batch.size // 4


def test_tanh_is_the_contracts_own_and_close_to_the_true_value():
    """The NumPy tanh of the reference performs the Rust kernel's operations (a tree `tanh(x)` gives the same bits)
    and stays within 2 ulp of the C library's math.tanh, which is itself up to 2 ulp from the true value."""
    rng = np.random.default_rng(3)
    x = np.concatenate(
        [rng.uniform(-4, 4, 4000), np.exp(rng.uniform(-40, 4, 4000)) * rng.choice([-1, 1], 4000), [0.0, -0.0, 0.55]]
    )
    x = np.concatenate([x, [np.inf, -np.inf, np.nan, 1e-310, 19.1, 22.0, 1e300]])
    tree = doc({"op": "tanh", "args": [{"feature": "ofi_l1"}]})
    rust = _core.gp_stream(tree, ["ofi_l1"], [x])
    ours = forge_gp._tanh(x)
    assert same_bits(rust, forge_gp.signal(ours, len(x)))
    finite = np.isfinite(x)
    assert np.array_equal(ours[~finite], np.tanh(x[~finite]), equal_nan=True)
    assert np.all(np.abs(ours[~np.isnan(x)]) <= 1.0)
    assert np.array_equal(np.sign(ours), np.sign(np.tanh(x)), equal_nan=True)
    libm = np.array([math.tanh(v) for v in x[finite]])
    spacing = np.spacing(np.abs(libm))
    assert np.max(np.abs(ours[finite] - libm) / spacing) <= 2.0


def test_json_round_trip_is_lossless():
    pset = forge_gp.primitive_set(NAMES)
    for tree in random_trees(5, 300, pset):
        text = forge_gp.to_json(tree)
        back = forge_gp.from_json(text, pset)
        assert back == tree
        assert str(back) == str(tree)
        assert json.loads(forge_gp.to_json(back)) == json.loads(text)
        assert json.loads(_core.gp_validate(text, NAMES)) == json.loads(text)


CONSTANTS = [0.0, -0.0, 1e-320, -2.5e-308, 1e300, -1.7976931348623157e308, 0.1, 1 / 3, 7.0, -123456789.125]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    depth=st.integers(0, 7),
    names=st.lists(st.sampled_from(["ofi_l1", "ret_1", "spread", "é_λ", "_x9", "Ωmega"]), min_size=1, unique=True),
    constants=st.lists(st.one_of(st.sampled_from(CONSTANTS), st.floats(allow_nan=False, allow_infinity=False))),
    window=st.integers(1, 10_000),
)
def test_to_json_writes_what_json_dumps_writes(seed, depth, names, constants, window):
    pset = forge_gp.primitive_set(names)
    pset.addTerminal(window, forge_gp.Window)
    random.seed(seed)
    tree = gp.PrimitiveTree(forge_gp.gen_half_and_half(pset, 0, depth))
    ephemerals = [node for node in tree if isinstance(node, gp.Terminal) and node.ret is float and node.name == "const"]
    for node, value in zip(ephemerals, constants, strict=False):
        node.value = value
    assert forge_gp.to_json(tree) == gp_json_reference.to_json(tree)


def test_windows_outside_the_generator_set_and_constants_survive():
    pset = forge_gp.primitive_set(NAMES)
    text = json.dumps(
        {
            "schema": "apex.gp_tree",
            "version": 1,
            "features": ["ret_1"],
            "root": {
                "op": "ema",
                "args": [{"op": "mul", "args": [{"feature": "ret_1"}, {"const": 0.1}]}, {"window": 7}],
            },
        }
    )
    tree = forge_gp.from_json(text, pset)
    assert str(tree) == "ema(mul(ret_1, 0.1), 7)"
    assert json.loads(forge_gp.to_json(tree)) == json.loads(text)


def test_evaluate_takes_a_polars_frame():
    rng = np.random.default_rng(2)
    frame = pl.DataFrame(
        {"ts": np.arange(50), "symbol": ["BTCUSDT"] * 50, **dict(zip(NAMES, rng.normal(size=(3, 50)), strict=True))}
    )
    pset = forge_gp.primitive_set(NAMES)
    trees = random_trees(3, 10, pset)
    out = forge_gp.evaluate([forge_gp.to_json(t) for t in trees], frame)
    columns = [frame.get_column(n).to_numpy() for n in NAMES]
    expected = np.stack([forge_gp.reference_evaluate(t, pset, columns) for t in trees])
    assert same_bits(out, expected)
    assert np.all(np.abs(out) <= 1.0)


def doc(root: dict) -> str:
    return json.dumps({"schema": "apex.gp_tree", "version": 1, "features": ["ofi_l1", "zz"], "root": root})


@pytest.mark.parametrize(
    ("root", "message"),
    [
        ({"op": "pow", "args": [{"feature": "ofi_l1"}]}, 'GP tree at root: unknown primitive "pow"'),
        ({"op": "add", "args": [{"feature": "ofi_l1"}]}, "GP tree at root: add takes 2 argument(s), found 1"),
        (
            {"op": "neg", "args": [{"op": "lag", "args": [{"feature": "ofi_l1"}, {"const": 3}]}]},
            "GP tree at root.args[0].args[1]: expected Window, found Float (const 3)",
        ),
        ({"op": "neg", "args": [{"feature": "zz"}]}, 'GP tree at root.args[0]: unknown feature "zz"'),
    ],
)
def test_bad_trees_are_rejected_with_the_node_path(root, message):
    with pytest.raises(DataError) as error:
        _core.gp_validate(doc(root), NAMES)
    assert str(error.value).startswith(message)
    with pytest.raises(DataError):
        forge_gp.from_json(doc(root), forge_gp.primitive_set(NAMES))
    with pytest.raises(DataError, match=r"^trees\[1\]: "):
        _core.gp_evaluate([doc({"const": 1.0}), doc(root)], NAMES, np.zeros((4, 3)))


def test_evaluate_into_refuses_an_output_of_the_wrong_shape_or_layout():
    text = json.dumps({"schema": "apex.gp_tree", "version": 1, "features": ["ret_1"], "root": {"feature": "ret_1"}})
    texts, columns = [text, text], np.zeros((4, 3))
    with pytest.raises(DataError, match=r"out has shape \[3, 4\], not \(2, 4\)"):
        _core.gp_evaluate_into(texts, NAMES, columns, np.empty((3, 4)))
    with pytest.raises(DataError, match="C-contiguous"):
        _core.gp_evaluate_into(texts, NAMES, columns, np.empty((4, 2)).T)


def test_too_deep_trees_are_rejected():
    root: dict = {"feature": "ofi_l1"}
    for _ in range(18):
        root = {"op": "abs", "args": [root]}
    with pytest.raises(DataError, match=r"too deep at root(\.args\[0\]){18}: depth 18 exceeds the limit 17"):
        _core.gp_validate(doc(root), NAMES)
    assert _core.gp_validate(doc(root), NAMES, max_depth=18)


def test_committed_schema_is_current_and_names_every_primitive():
    assert SCHEMA_FILE.read_text() == _core.gp_tree_schema()
    schema = json.loads(SCHEMA_FILE.read_text())
    ops = {n["properties"]["op"]["const"] for n in schema["$defs"]["node"]["oneOf"] if "op" in n["properties"]}
    assert ops == {name for name, *_ in forge_gp.PRIMITIVES}


def test_bad_feature_names_are_refused():
    with pytest.raises(DataError, match="identifiers"):
        forge_gp.primitive_set(["ok", "not-ok"])
    with pytest.raises(DataError, match="identifiers"):
        forge_gp.primitive_set(["lag"])
