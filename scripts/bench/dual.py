"""Benchmark: adversarial evaluations (GP tree x seed x simulated hour in the DSG market) per second, all pairs in
parallel through `_core.sim_gp_fitness` (rayon) vs the same pairs one call at a time, and the wall time of one
dual-fitness generation at --pop 50,000 when the surrogate sends 2% of it (1,000 trees) to the simulator."""

from __future__ import annotations

import argparse
import os
import random
import time

import numpy as np
from deap import gp

from apexctl import _core
from apexctl.forge import gp as forge_gp
from apexctl.forge.dual import sim_feature_warmup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trees", type=int, default=8, help="random trees (genHalfAndHalf, height 2..5)")
    parser.add_argument("--seeds", type=int, default=2, help="market seeds per tree")
    parser.add_argument("--hours", type=float, default=0.5, help="simulated hours per run")
    parser.add_argument("--symbol", default="BTCUSDT")
    parser.add_argument("--pop", type=int, default=50_000, help="population of the extrapolated generation")
    parser.add_argument("--share", type=float, default=0.02, help="share of the population the surrogate sends")
    parser.add_argument("--gen-seeds", type=int, default=3, help="seeds per tree in the extrapolated generation")
    parser.add_argument("--gen-hours", type=float, default=1.0, help="simulated hours per run in that generation")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    random.seed(args.seed)
    # Only features defined within the first third of the span, so the random trees trade instead of reading NaN.
    usable = [name for name, bars in sim_feature_warmup().items() if bars <= args.hours * 60 / 3]
    pset = forge_gp.primitive_set(usable)
    texts = [forge_gp.to_json(gp.PrimitiveTree(forge_gp.gen_half_and_half(pset, 2, 5))) for _ in range(args.trees)]
    seeds = list(range(args.seeds))
    units = args.trees * args.seeds * args.hours

    start = time.perf_counter()
    together = _core.sim_gp_fitness(texts, None, seeds, args.symbol, args.hours)
    parallel_s = time.perf_counter() - start
    start = time.perf_counter()
    alone = [[_core.sim_gp_fitness([t], None, [s], args.symbol, args.hours)["pnl"][0, 0] for s in seeds] for t in texts]
    sequential_s = time.perf_counter() - start
    assert np.array_equal(together["pnl"], np.array(alone)), "parallel and one-at-a-time results differ"

    fills = int(together["trades"].sum())
    print(
        f"dual: {args.trees} random trees x {args.seeds} seeds x {args.hours} h of {args.symbol} (default DSG, "
        f"features {', '.join(usable)}), {os.cpu_count()} cores, results checked equal; {fills} strategy fills"
    )
    parallel_rate, sequential_rate = units / parallel_s, units / sequential_s
    print(f"  parallel    : {parallel_rate:8.2f} tree-seed-hours/s  ({parallel_s:7.1f} s)")
    print(f"  one-by-one  : {sequential_rate:8.2f} tree-seed-hours/s  ({sequential_s:7.1f} s)")
    print(f"  ratio       : {sequential_s / parallel_s:8.2f}x faster")
    sent = int(args.pop * args.share)
    gen_units = sent * args.gen_seeds * args.gen_hours
    print(
        f"  generation  : --pop {args.pop:,}, {args.share:.0%} sent = {sent:,} trees x {args.gen_seeds} seeds x "
        f"{args.gen_hours} h = {gen_units:,.0f} tree-seed-hours -> {gen_units / parallel_rate / 60:,.1f} min "
        f"(extrapolated from the parallel rate on this machine)"
    )


if __name__ == "__main__":
    main()
