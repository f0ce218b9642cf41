"""evolve --dsg's NSGA-II selection (apex-pareto through `select_nsga2`) against DEAP's `selNSGA2` itself: the same
individuals chosen in the same order, the same crowding distances, on populations full of ties and duplicates."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from deap import base, creator, tools
from hypothesis import given, settings
from hypothesis import strategies as st

from apexctl import _core
from apexctl.errors import DataError
from apexctl.forge.evolve.selection import select_nsga2

if not hasattr(creator, "SelectionTestFitness"):
    creator.create("SelectionTestFitness", base.Fitness, weights=(1.0, 1.0))
    creator.create("SelectionTestIndividual", list, fitness=creator.SelectionTestFitness)
    creator.create("SelectionTestMinFitness", base.Fitness, weights=(-1.0, 1.0))
    creator.create("SelectionTestMinIndividual", list, fitness=creator.SelectionTestMinFitness)


def population(pairs, cls=None):
    cls = cls or creator.SelectionTestIndividual
    out = []
    for i, pair in enumerate(pairs):
        ind = cls([i])
        ind.fitness.values = pair
        out.append(ind)
    return out


def outcome(individuals, chosen):
    """The chosen individuals (by tag) and every individual's crowding distance, bit for bit (None where unset)."""
    distances = [getattr(ind.fitness, "crowding_dist", None) for ind in individuals]
    return [ind[0] for ind in chosen], [None if d is None else d.hex() for d in distances]


def both(individuals, k):
    """(select_nsga2's outcome, DEAP's outcome) on deep copies of one population; an individual listed twice stays
    one object listed twice in each copy."""
    ours, deaps = copy.deepcopy(individuals), copy.deepcopy(individuals)
    return outcome(ours, select_nsga2(ours, k)), outcome(deaps, tools.selNSGA2(deaps, k))


levels = st.sampled_from([-2.0, -1.0, -0.0, 0.0, 0.5, 1.0, 2.0, 3.0])
values = st.one_of(levels, st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from([1e300, -1e300, 5e-324]))


@settings(max_examples=300, deadline=None)
@given(
    pairs=st.lists(st.tuples(values, values), max_size=80),
    repeats=st.lists(st.integers(0, 79), max_size=10),
    k=st.integers(0, 100),
)
def test_the_same_selection_as_deap(pairs, repeats, k):
    individuals = population(pairs)
    # The same object twice, as DEAP may be handed it.
    individuals += [individuals[r] for r in repeats if r < len(individuals)]
    ours, deaps = both(individuals, k)
    assert ours == deaps


def test_a_large_population_with_many_fronts():
    rng = np.random.default_rng(5)
    fitness = np.round(rng.uniform(0, 4, 3000), 2)
    pnl = np.round(fitness * 3 + rng.normal(0, 5, 3000), 1)
    individuals = population(list(zip(fitness.tolist(), pnl.tolist(), strict=True)))
    for k in (1, 1500, 3000):
        ours, deaps = both(individuals, k)
        assert ours == deaps


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), 1e308])
def test_values_apex_pareto_refuses_go_to_deap(bad):
    pairs = [(1.0, 2.0), (bad, 0.0), (0.5, 3.0), (2.0, 1.0)]
    chosen = select_nsga2(population(pairs), 2)
    assert len(chosen) == 2
    if not math.isnan(bad):
        ours, deaps = both(population(pairs), 2)
        assert ours == deaps
    with pytest.raises(DataError, match="individual 1"):
        _core.pareto_select(np.array(pairs), [0, 1, 2, 3], 2)


def test_other_weights_go_to_deap():
    pairs = [(1.0, 2.0), (0.0, 0.0), (0.5, 3.0), (2.0, 1.0), (1.0, 2.0)]
    individuals = population(pairs, creator.SelectionTestMinIndividual)
    ours, deaps = both(individuals, 3)
    assert ours == deaps


def test_object_labels_must_fit():
    with pytest.raises(DataError, match="object labels"):
        _core.pareto_select(np.zeros((2, 2)), [0, 2], 1)


def test_values_must_be_pairs():
    with pytest.raises(DataError, match="3 columns"):
        _core.pareto_select(np.zeros((4, 3)), [0, 1, 2, 3], 2)


def test_a_population_without_two_values_each_goes_to_deap():
    individuals = population([(1.0, 2.0), (0.5, 3.0)])
    del individuals[1].fitness.values  # not evaluated: DEAP fails on it, and so does the selection, the same way
    with pytest.raises(IndexError):
        tools.selNSGA2(copy.deepcopy(individuals), 1)
    with pytest.raises(IndexError):
        select_nsga2(individuals, 1)
