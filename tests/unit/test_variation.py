"""Variation's copies: `clone_tree` makes what `copy.deepcopy` makes, and `vary` breeds the same offspring as with
DEAP's own deep copies and `staticLimit`; `MaximizedFitness` reads back what DEAP's `Fitness` does."""

from __future__ import annotations

import copy
import random
import struct
from pathlib import Path

import pytest
from deap import base
from hypothesis import given, settings
from hypothesis import strategies as st

from apexctl.forge.evolve import EvolveConfig, make_toolbox, vary
from apexctl.forge.evolve.variation import MaximizedFitness, clone_tree, individual
from apexctl.forge.gp import primitive_set, to_json
from tests.reference.variation_reference import deap_toolbox

NAMES = ["a", "b", "c"]


def described(ind):
    """Everything an individual is, as plain values: class, nodes, fitness (class, weighted values, validity,
    attributes) and the other attributes."""
    fitness = ind.fitness
    others = {k: v for k, v in vars(ind).items() if k != "fitness"}
    return (type(ind), str(ind), type(fitness), fitness.wvalues, fitness.valid, sorted(vars(fitness)), others)


@pytest.mark.parametrize("dual", [False, True])
def test_clone_tree_makes_what_deepcopy_makes(dual):
    pset = primitive_set(NAMES)
    ind = individual(to_json(make_toolbox(pset, EvolveConfig("-", Path("x"))).individual()), pset, dual)
    ind.fitness.values = (0.5, -1.0) if dual else (0.5,)
    ind.fitness.crowding_dist = 2.0  # NSGA-II's; a deep copy does not carry it
    clone = clone_tree(ind)
    assert described(clone) == described(copy.deepcopy(ind))
    assert clone is not ind
    assert clone.fitness is not ind.fitness
    assert all(a is b for a, b in zip(clone, ind, strict=True))  # nodes are shared, as DEAP's copy shares them
    size = len(ind)
    del clone.fitness.values
    clone.pop()
    assert ind.fitness.valid
    assert len(ind) == size


def test_clone_tree_deep_copies_what_it_does_not_know():
    pset = primitive_set(NAMES)
    ind = individual(to_json(make_toolbox(pset, EvolveConfig("-", Path("x"))).individual()), pset, False)
    ind.history = [1, 2]
    clone = clone_tree(ind)
    assert clone.history == [1, 2]
    assert clone.history is not ind.history


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), max_depth=st.integers(2, 8), dual=st.booleans())
def test_vary_breeds_what_deap_copies_breed(seed, max_depth, dual):
    config = EvolveConfig(
        "-", Path("x"), pop=40, max_depth=max_depth, cx_prob=0.9, mut_prob=0.6, dsg="d" if dual else None
    )
    pset = primitive_set(NAMES)
    ours, theirs = make_toolbox(pset, config), deap_toolbox(pset, config)
    random.seed(seed)
    population = ours.population(n=config.pop)
    for i, ind in enumerate(population):
        ind.fitness.values = (random.random(), random.random()) if dual else (random.random(),)
        ind.fitness.crowding_dist = float(i % 3)
        ind.json, ind.estimated = to_json(ind), bool(i % 2)
    for _ in range(3):
        state = random.getstate()
        mine = vary(population, ours, config)
        after = random.getstate()
        random.setstate(state)
        reference = vary(population, theirs, config)
        assert [described(ind) for ind in mine] == [described(ind) for ind in reference]
        assert random.getstate() == after
        population = mine
        for i, ind in enumerate(population):
            if not ind.fitness.valid:
                ind.fitness.values = (random.random(), random.random()) if dual else (random.random(),)
            ind.fitness.crowding_dist = float(i % 3)


def bits(values) -> list[tuple[type, bytes]]:
    """Each value's type and exact bits (so -0.0 differs from 0.0 and a NaN equals itself)."""
    return [(type(v), struct.pack("<d", v)) for v in values]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    values=st.lists(
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**60), 2**60), st.booleans()),
        min_size=1,
        max_size=3,
    )
)
def test_maximized_fitness_reads_back_what_deap_fitness_reads(values):
    weights = (1.0,) * len(values)
    ours = type("Ours", (MaximizedFitness,), {"weights": weights})()
    deaps = type("Deaps", (base.Fitness,), {"weights": weights})()
    ours.values, deaps.values = tuple(values), tuple(values)
    assert bits(ours.values) == bits(deaps.values)
    assert bits(ours.wvalues) == bits(deaps.wvalues)
    assert ours.valid
    del ours.values
    assert ours.values == ()
    assert not ours.valid


def test_maximized_fitness_refuses_other_weights():
    with pytest.raises(TypeError, match=r"weights of 1\.0 only"):
        type("Minimized", (MaximizedFitness,), {"weights": (1.0, -1.0)})
