"""Benchmark: one generation's variation (`vary`: selection, crossover, mutation, under the depth and size limits) at
--pop 50000, with `clone_tree` copying the individuals, against DEAP's own deep copies and `staticLimit` on the same
parents from the same random state (offspring checked equal)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
from common import arguments, timed

from apexctl.forge.evolve import EvolveConfig, make_toolbox, vary
from apexctl.forge.evolve.selection import select_nsga2
from apexctl.forge.gp import primitive_set, to_json

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.reference.variation_reference import deap_toolbox


def described(population: list) -> list[tuple]:
    return [(str(ind), ind.fitness.wvalues, ind.json, ind.estimated) for ind in population]


def main() -> None:
    parser = arguments(__doc__, repeats=3)
    parser.add_argument("--pop", type=int, default=50_000, help="population size (default 50,000)")
    parser.add_argument("--features", type=int, default=20, help="feature terminals (default 20)")
    args = parser.parse_args()
    config = EvolveConfig("-", Path("unused"), pop=args.pop, dsg="default")
    pset = primitive_set([f"f{i}" for i in range(args.features)])
    ours, theirs = make_toolbox(pset, config), deap_toolbox(pset, config)
    random.seed(args.seed)
    rng = np.random.default_rng(args.seed)
    parents = ours.population(n=config.pop)
    for ind in parents:
        ind.fitness.values = tuple(np.round(rng.normal(size=2), 2).tolist())
        ind.json, ind.estimated = to_json(ind), False
    parents = select_nsga2(parents, config.pop)  # sets the crowding distances the DCD tournament reads

    state = random.getstate()
    seconds: dict[str, list[float]] = {"clone_tree": [], "DEAP copies": []}
    results = {}
    for _ in range(args.repeats):  # turn about, each from the same random state
        for name, toolbox in (("clone_tree", ours), ("DEAP copies", theirs)):
            random.setstate(state)
            elapsed, results[name] = timed(lambda toolbox=toolbox: vary(parents, toolbox, config))
            seconds[name].append(elapsed)
    if described(results["clone_tree"]) != described(results["DEAP copies"]):
        sys.exit("the offspring differ from those bred with DEAP's copies")
    print(f"vary at --pop {args.pop:,} --dsg (dominance tournament, crossover 0.6, mutation 0.3)")
    print(f"  best of {args.repeats}, turn about, from the same parents and random state")
    for name, times in seconds.items():
        print(f"  {name:<12}: {min(times):7.2f} s")
    print(f"  ratio       : {min(seconds['DEAP copies']) / min(seconds['clone_tree']):7.2f}x faster (offspring equal)")


if __name__ == "__main__":
    main()
