"""The variation toolbox as DEAP builds it: `copy.deepcopy` as the clone and DEAP's `staticLimit` (which deep-copies
the parents) on crossover and mutation; what `clone_tree` and `static_limit` must breed the same offspring as."""

from __future__ import annotations

import copy

from deap import base
from deap import gp as deap_gp

from apexctl.forge.evolve import EvolveConfig, make_toolbox
from apexctl.forge.evolve.variation import cx_one_point
from apexctl.forge.gp import MAX_NODES


def deap_toolbox(pset: deap_gp.PrimitiveSetTyped, config: EvolveConfig) -> base.Toolbox:
    toolbox = make_toolbox(pset, config)
    toolbox.register("clone", copy.deepcopy)
    toolbox.register("mate", cx_one_point)
    toolbox.register("mutate", deap_gp.mutUniform, expr=toolbox.expr_mut, pset=pset)
    for limit in (
        deap_gp.staticLimit(key=lambda tree: tree.height, max_value=config.max_depth),
        deap_gp.staticLimit(key=len, max_value=MAX_NODES),
    ):
        toolbox.decorate("mate", limit)
        toolbox.decorate("mutate", limit)
    return toolbox
