"""NSGA-II survivor selection for --dsg: DEAP's `selNSGA2` result, computed by apex-pareto in O(n log n)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from deap import tools

from apexctl import _core


def select_nsga2(individuals: Sequence[Any], k: int) -> list[Any]:
    """What `deap.tools.selNSGA2(individuals, k)` returns (standard sort), and the same `fitness.crowding_dist` on
    every individual of the fronts it sorts. DEAP compares every pair of distinct fitnesses, which at --pop 50000
    (100,000 parents and offspring) takes about an hour a generation; apex-pareto takes milliseconds.

    Populations apex-pareto does not cover go to DEAP: other than two objectives weighted 1.0, or values that are
    not finite (DEAP's order then depends on how Python sorts NaN)."""
    pairs = [ind.fitness.values for ind in individuals]
    if k <= 0 or not pairs or individuals[0].fitness.weights != (1.0, 1.0) or any(len(p) != 2 for p in pairs):
        return tools.selNSGA2(list(individuals), k)
    values = np.array(pairs, dtype=np.float64)
    if not np.all(np.abs(values) <= _core.PARETO_MAX_ABS_VALUE):
        return tools.selNSGA2(list(individuals), k)
    first: dict[int, int] = {}
    objects = [first.setdefault(id(ind), i) for i, ind in enumerate(individuals)]  # one label per object
    chosen, ranked, crowding = _core.pareto_select(values, objects, k)
    # In DEAP's order, so an individual listed twice keeps the distance DEAP assigns it last.
    for index, distance in zip(ranked.tolist(), crowding.tolist(), strict=True):
        individuals[index].fitness.crowding_dist = distance
    return [individuals[i] for i in chosen.tolist()]
