"""DEAP's toolbox for GP trees: the typed primitive set's generators, crossover, mutation and selection."""

from __future__ import annotations

import copy
import functools
import random
from collections.abc import Callable, Sequence
from typing import Any

from deap import base, creator, tools
from deap import gp as deap_gp

from apexctl.forge.evolve.config import EvolveConfig
from apexctl.forge.gp import (
    MAX_NODES,
    from_json,
    gen_grow,
    gen_half_and_half,
    to_json,
)


def cx_one_point(ind1: Any, ind2: Any) -> tuple[Any, Any]:
    """DEAP's typed `cxOnePoint`, except that the common node type is drawn from a list sorted by name: DEAP draws
    from a set of types, whose order follows their addresses and so may differ between processes."""
    if len(ind1) < 2 or len(ind2) < 2:
        return ind1, ind2
    types1: dict[type, list[int]] = {}
    types2: dict[type, list[int]] = {}
    for idx, node in enumerate(ind1[1:], 1):
        types1.setdefault(node.ret, []).append(idx)
    for idx, node in enumerate(ind2[1:], 1):
        types2.setdefault(node.ret, []).append(idx)
    common = sorted(set(types1) & set(types2), key=lambda t: t.__name__)
    if common:
        type_ = random.choice(common)
        slice1 = ind1.searchSubtree(random.choice(types1[type_]))
        slice2 = ind2.searchSubtree(random.choice(types2[type_]))
        ind1[slice1], ind2[slice2] = ind2[slice2], ind1[slice1]
    return ind1, ind2


#: What an individual carries besides its nodes and fitness, all immutable (`clone_tree` shares them).
_PLAIN_ATTRIBUTES = frozenset({"fitness", "json", "estimated"})


def clone_tree(ind: Any) -> Any:
    """What `copy.deepcopy` makes of an individual, built directly: DEAP's deep copy of a tree shares its nodes, and
    of its fitness keeps only the weighted values, but it pays for constructing both through `creator` and for the
    generic copy of the attributes. At a population of 50,000 that was most of a generation's variation time."""
    attributes = ind.__dict__
    if not _PLAIN_ATTRIBUTES.issuperset(attributes):
        return copy.deepcopy(ind)
    tree_class = type(ind)
    new = tree_class.__new__(tree_class)
    list.extend(new, ind)
    new.__dict__.update(attributes)
    fitness = ind.fitness
    new.fitness = fitness.__class__.__new__(fitness.__class__)
    new.fitness.wvalues = fitness.wvalues
    return new


def static_limit(key: Callable[[Any], int], max_value: int) -> Callable[[Any], Any]:
    """DEAP's `gp.staticLimit` (a child over the limit is replaced by a copy of one of its parents, drawn at random),
    with the parents copied by `clone_tree`."""

    def decorator(operator: Any) -> Any:
        @functools.wraps(operator)
        def limited(*parents: Any, **kwargs: Any) -> list[Any]:
            kept = [clone_tree(ind) for ind in parents]
            children = list(operator(*parents, **kwargs))
            for i, child in enumerate(children):
                if key(child) > max_value:
                    children[i] = random.choice(kept)
            return children

        return limited

    return decorator


class MaximizedFitness(base.Fitness):
    """DEAP's `Fitness` for objectives that are all maximized with weight 1.0, whose `values` are its `wvalues`.

    DEAP's getter divides every weighted value by its weight on each read, building a tuple in Python; selection, the
    generation log and the checkpoint read it several times per tree per generation (about 0.2 s a generation at
    --pop 50000). Dividing a float by 1.0 leaves it as it is, so the stored tuple is the answer."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if any(w != 1.0 for w in cls.weights or ()):
            raise TypeError(f"{cls.__name__}: MaximizedFitness takes weights of 1.0 only, not {cls.weights}")

    values = property(lambda self: self.wvalues, base.Fitness.setValues, base.Fitness.delValues)


def _tree_class(dual: bool) -> Any:
    """DEAP individual class: one maximized objective, or two (backtest fitness, simulator PnL) with --dsg."""
    if not hasattr(creator, "ApexFitness"):
        creator.create("ApexFitness", MaximizedFitness, weights=(1.0,))
        creator.create("ApexTree", deap_gp.PrimitiveTree, fitness=creator.ApexFitness)
        creator.create("ApexDualFitness", MaximizedFitness, weights=(1.0, 1.0))
        creator.create("ApexDualTree", deap_gp.PrimitiveTree, fitness=creator.ApexDualFitness)
    return creator.ApexDualTree if dual else creator.ApexTree


def make_toolbox(pset: deap_gp.PrimitiveSetTyped, config: EvolveConfig) -> base.Toolbox:
    tree_class = _tree_class(config.dual)
    toolbox = base.Toolbox()
    high = min(config.init_depth[1], config.max_depth)
    low = min(config.init_depth[0], high)
    toolbox.register("expr", gen_half_and_half, pset=pset, min_=low, max_=high)
    toolbox.register("individual", tools.initIterate, tree_class, toolbox.expr)
    toolbox.register("population", tools.initRepeat, list, toolbox.individual)
    toolbox.register("select", tools.selTournament, tournsize=config.tournament)
    toolbox.register("mate", cx_one_point)
    toolbox.register("expr_mut", gen_grow, min_=0, max_=2)
    toolbox.register("mutate", deap_gp.mutUniform, expr=toolbox.expr_mut, pset=pset)
    # DEAP's height is apex-gp's depth (a leaf is 0); a child over either limit is replaced by one of its parents, so
    # a tree variation returns always loads (the limits hold only if callers use the returned trees, see vary).
    toolbox.register("clone", clone_tree)
    for limit in (
        static_limit(key=lambda tree: tree.height, max_value=config.max_depth),
        static_limit(key=len, max_value=MAX_NODES),
    ):
        toolbox.decorate("mate", limit)
        toolbox.decorate("mutate", limit)
    return toolbox


def individual(text: str, pset: deap_gp.PrimitiveSetTyped, dual: bool) -> Any:
    ind = _tree_class(dual)(from_json(text, pset))
    ind.json = to_json(ind)
    ind.estimated = False
    return ind


def initial_population(toolbox: base.Toolbox, pset: Any, config: EvolveConfig, seeds: Sequence[str]) -> list[Any]:
    """Seed trees once each, mutated copies of them (round robin) up to `seed_share` of the population, the rest
    random. Without seeds: all random."""
    if not seeds:
        return toolbox.population(n=config.pop)
    share = min(config.pop, max(len(seeds), round(config.seed_share * config.pop)))
    population = [individual(text, pset, config.dual) for text in seeds[:share]]
    while len(population) < share:
        (child,) = toolbox.mutate(toolbox.clone(population[len(population) % len(seeds)]))
        population.append(child)
    return population + toolbox.population(n=config.pop - share)


def vary(population: list[Any], toolbox: base.Toolbox, config: EvolveConfig) -> list[Any]:
    """Parents (tournament, or NSGA-II's dominance/crowding tournament with --dsg), crossover, mutation."""
    select = tools.selTournamentDCD if config.dual else toolbox.select
    offspring = [toolbox.clone(ind) for ind in select(population, len(population))]
    for i in range(1, len(offspring), 2):
        if random.random() < config.cx_prob:
            # The returned children, not the arguments: the size limits replace an oversized child by a parent in
            # what they return, while the crossover has already grown the arguments in place.
            offspring[i - 1], offspring[i] = toolbox.mate(offspring[i - 1], offspring[i])
            if offspring[i] is offspring[i - 1]:  # both children replaced by the same kept parent
                offspring[i] = toolbox.clone(offspring[i])
            del offspring[i - 1].fitness.values, offspring[i].fitness.values
    for i, ind in enumerate(offspring):
        if random.random() < config.mut_prob:
            (offspring[i],) = toolbox.mutate(ind)
            del offspring[i].fitness.values
    return offspring
