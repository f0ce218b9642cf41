"""Benchmark: evolve --dsg's NSGA-II survivor selection (`select_nsga2`, apex-pareto through _core) against DEAP's
`selNSGA2` on the same population (results checked equal), then at --pop 50000's size (100,000 parents and
offspring) against DEAP's `nd='log'` sort, the fastest DEAP offers."""

from __future__ import annotations

import copy

import numpy as np
from common import arguments, best_of, timed
from deap import base, creator, tools

from apexctl.forge.evolve.selection import select_nsga2

if not hasattr(creator, "BenchDualFitness"):
    creator.create("BenchDualFitness", base.Fitness, weights=(1.0, 1.0))
    creator.create("BenchDualTree", list, fitness=creator.BenchDualFitness)


def population(n: int, seed: int) -> list:
    """Fitnesses shaped like evolve --dsg's: a coarse backtest fitness (many ties) and a simulator PnL loosely
    following it; n entries, a tenth of them individuals listed a second time (as the same object)."""
    rng = np.random.default_rng(seed)
    distinct = n - n // 10
    fitness = np.round(rng.uniform(0.0, 4.0, distinct), 2)
    pnl = np.round(3.0 * fitness + rng.normal(0.0, 5.0, distinct), 3)
    individuals = []
    for i, pair in enumerate(zip(fitness.tolist(), pnl.tolist(), strict=True)):
        ind = creator.BenchDualTree([i])
        ind.fitness.values = pair
        individuals.append(ind)
    return individuals + individuals[: n - distinct]


def tags(chosen: list) -> list[int]:
    return [ind[0] for ind in chosen]


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--small", type=int, default=4_000, help="population both selections run on (default 4,000)")
    parser.add_argument("--large", type=int, default=100_000, help="population of the --pop 50000 step (100,000)")
    args = parser.parse_args()

    small = population(args.small, args.seed)
    k = len(small) // 2
    ours = best_of(lambda: select_nsga2(small, k))
    peer, expected = timed(lambda: tools.selNSGA2(copy.deepcopy(small), k))
    if tags(select_nsga2(small, k)) != tags(expected):
        raise SystemExit("select_nsga2 and DEAP's selNSGA2 chose differently")
    print(f"select {k:,} of {len(small):,} (same individuals chosen, in the same order)")
    print(f"  apexctl (apex-pareto)  : {ours * 1e3:10.1f} ms")
    print(f"  DEAP selNSGA2          : {peer * 1e3:10.1f} ms")
    print(f"  ratio                  : {peer / ours:10.1f}x faster")

    large = population(args.large, args.seed)
    k = len(large) // 2
    ours = best_of(lambda: select_nsga2(large, k))
    log, _ = timed(lambda: tools.selNSGA2(large, k, nd="log"))
    quadratic = peer * (len(large) / len(small)) ** 2
    print(f"select {k:,} of {len(large):,} (evolve --pop {args.large // 2:,}: parents and offspring)")
    print(f"  apexctl (apex-pareto)  : {ours * 1e3:10.1f} ms")
    note = "orders its fronts otherwise, so selects otherwise"
    print(f"  DEAP selNSGA2 nd='log' : {log * 1e3:10.1f} ms  (ratio {log / ours:.1f}x; {note})")
    print(f"  DEAP selNSGA2          : {quadratic:10.0f} s   (extrapolated from the small run as n^2)")


if __name__ == "__main__":
    main()
