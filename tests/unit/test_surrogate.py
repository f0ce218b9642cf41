"""The SAE pieces: evaluated-share widening, screening, Spearman, tree features, a seeded deterministic model."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from deap import gp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr

from apexctl import _core
from apexctl.forge import surrogate as sae
from apexctl.forge.gp import PRIMITIVES, gen_half_and_half, primitive_set, to_json
from tests.reference import surrogate_shape_reference


def test_fraction_widens_under_threshold_and_narrows_back():
    base, floor = 0.02, 0.3
    fraction = base
    history = []
    for corr in [0.5, 0.1, 0.2, None, -0.4, 0.29, 0.9, 0.3, 0.8, 0.8, 0.8, 0.8, 0.1]:
        fraction = sae.next_fraction(fraction, corr, base, floor)
        history.append(fraction)
    assert history == pytest.approx([0.02, 0.04, 0.08, 0.08, 0.16, 0.32, 0.16, 0.08, 0.04, 0.02, 0.02, 0.02, 0.04])
    # Capped at 1.0 however long the model stays bad.
    fraction = base
    for _ in range(12):
        fraction = sae.next_fraction(fraction, -1.0, base, floor)
    assert fraction == 1.0


def test_screen_takes_top_fraction_plus_a_random_holdout():
    predicted = [float(v) for v in range(1000)]  # tree i predicted i: the top are the last ones
    chosen = sae.screen(predicted, 0.02, random.Random(3))
    top = set(range(980, 1000))
    assert top <= set(chosen.evaluate)
    assert len(chosen.holdout) == sae.HOLDOUT_MIN
    assert set(chosen.evaluate) == top | set(chosen.holdout)
    assert chosen.holdout != sorted(range(1000))[: sae.HOLDOUT_MIN], "the holdout is random, not the first trees"
    again = sae.screen(predicted, 0.02, random.Random(3))
    assert again == chosen
    assert sae.screen(predicted, 1.0, random.Random(3)).evaluate == list(range(1000))


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.lists(st.floats(-5, 5), min_size=3, max_size=40), st.integers(0, 1000))
@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")
def test_spearman_matches_scipy(values, seed):
    other = np.random.default_rng(seed).permutation(values).tolist()
    ours = sae.spearman(values, other)
    theirs = spearmanr(values, other).statistic
    if ours is None:
        assert len(set(values)) == 1 or np.isnan(theirs)
    else:
        assert ours == pytest.approx(theirs, abs=1e-9)


def _tree(root: dict, features: list[str]) -> str:
    return json.dumps({"schema": "apex.gp_tree", "version": 1, "features": features, "root": root})


def test_features_count_primitives_terminals_and_read_the_signal():
    rng = np.random.default_rng(0)
    n = 600
    sig = rng.normal(size=n)
    close = 100 * np.exp(np.cumsum(np.concatenate([[0.0], 0.01 * sig[:-1]])))
    names = ["sig", "other"]
    featurizer = sae.Featurizer(names, [sig, rng.normal(size=n)], close, train_end=500)
    good = _tree({"op": "tanh", "args": [{"feature": "sig"}]}, ["sig"])
    bad = _tree({"op": "neg", "args": [{"op": "lag", "args": [{"feature": "sig"}, {"window": 5}]}]}, ["sig"])
    rows = featurizer.rows([good, bad])
    assert rows.shape == (2, len(featurizer.columns))
    col = {name: i for i, name in enumerate(featurizer.columns)}
    assert rows[0, col["size"]] == 2
    assert rows[1, col["size"]] == 4
    assert rows[0, col["op_tanh"]] == 1
    assert rows[1, col["op_neg"]] == 1
    assert rows[1, col["op_lag"]] == 1
    assert rows[1, col["window_max"]] == 5
    assert rows[0, col["feature_sig"]] == 1
    assert rows[0, col["feature_other"]] == 0
    assert [c[3:] for c in featurizer.columns if c.startswith("op_")] == [p[0] for p in PRIMITIVES]
    # tanh(sig) predicts the next return on this market (it drives it); neg(lag(sig, 5)) does not.
    assert rows[0, col["signal_ret_corr"]] > 0.5
    assert abs(rows[1, col["signal_ret_corr"]]) < 0.2


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), depth=st.integers(0, 7), count=st.integers(1, 30))
def test_shapes_count_what_the_python_walk_counts(seed, depth, count):
    """The Rust shape rows of the trees' JSON equal the per-node Python count over the DEAP trees, bit for bit."""
    names = ["ofi", "ret_1", "z\u00e9"]
    pset = primitive_set(names)
    random.seed(seed)
    trees = [gp.PrimitiveTree(gen_half_and_half(pset, 0, depth)) for _ in range(count)]
    ours = _core.gp_shapes([to_json(t) for t in trees], names)
    assert np.array_equal(ours, surrogate_shape_reference.shapes(trees, names))
    assert ours.shape[1] == len(_core.gp_shape_columns(names))


def test_surrogate_is_deterministic_and_learns():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 6))
    y = 2 * x[:, 0] - x[:, 1] + 0.1 * rng.normal(size=400)
    models = []
    for _ in range(2):
        model = sae.Surrogate(seed=7, min_rows=100)
        model.add(x[:300], y[:300])
        model.fit()
        models.append(model.predict(x[300:]))
    assert np.array_equal(models[0], models[1])
    corr = sae.spearman(models[0].tolist(), y[300:].tolist())
    assert corr is not None
    assert corr > 0.8
    small = sae.Surrogate(seed=7, min_rows=100)
    small.add(x[:50], y[:50])
    small.fit()
    assert not small.ready, "fewer rows than min_rows: no model, every tree gets the true evaluation"


def test_training_window_keeps_the_most_recent_rows():
    model = sae.Surrogate(seed=1, window=5, min_rows=1)
    model.add(np.arange(14.0).reshape(7, 2), list(range(7)))
    assert model.x is not None
    assert model.x.shape == (5, 2), "a first batch larger than the window is trimmed too"
    assert model.y.tolist() == [2, 3, 4, 5, 6]
    model = sae.Surrogate(seed=1, window=5, min_rows=1)
    model.add(np.arange(8.0).reshape(4, 2), [0, 1, 2, 3])
    model.add(np.arange(6.0).reshape(3, 2) + 100, [4, 5, 6])
    assert model.y.tolist() == [2, 3, 4, 5, 6]
    assert model.x is not None
    assert model.x[-1].tolist() == [104.0, 105.0]
