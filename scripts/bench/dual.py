"""Benchmark: adversarial evaluations (GP tree x seed x simulated hour in the DSG market) per second, all pairs in
parallel through `_core.sim_gp_fitness` (rayon), vs the same call on one thread (RAYON_NUM_THREADS=1, a child
process) and vs every trading (tree, seed) pair in a market of its own (`shared=False`: the evaluation before trees
shared markets; with sharing, each seed's market runs flat until a tree's rule enters, and trees share a forked market
for as long as they send the same orders), results checked equal; and the wall time of one
dual-fitness generation at --pop 50,000 when the surrogate sends 2% of it (1,000 trees) to the simulator,
extrapolated from that rate. `--generation` really runs that generation (1,000 random trees x 3 seeds x 1 h through
`apexctl.forge.dual.adversarial_fitness`, the call `evolve --dsg` makes) and times it; `--independent` times the same
trees with `shared=False` in the same run, `--baseline DIR` with another build's `_core` (DIR holds an `apexctl`
package with it, e.g. main's), results checked equal."""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time

import numpy as np
from common import arguments, best_of
from deap import gp

from apexctl import _core
from apexctl.forge import dual
from apexctl.forge import gp as forge_gp

FIELDS = ("pnl", "fees", "max_drawdown", "trades", "ruined", "truncated")


def random_trees(count: int, hours: float, features: str | None) -> tuple[list[str], list[str]]:
    """`count` random trees (genHalfAndHalf, height 2..5) over the simulator features defined within the first third
    of the span (so the trees trade instead of reading NaN), and those features."""
    usable = [name for name, bars in dual.sim_feature_warmup().items() if bars <= hours * 60 / 3]
    if features:
        usable = [name for name in features.split(",") if name in usable]
    pset = forge_gp.primitive_set(usable)
    return [forge_gp.to_json(gp.PrimitiveTree(forge_gp.gen_half_and_half(pset, 2, 5))) for _ in range(count)], usable


def generation(args: argparse.Namespace) -> None:
    """One dual-fitness generation, measured: the surrogate's share of --pop as random trees x --gen-seeds seeds x
    --gen-hours through forge.dual (the same trees for a given --seed, so a --baseline child times the same work)."""
    sent = int(args.pop * args.share)
    texts, usable = random_trees(sent, args.gen_hours, args.features)
    seeds = list(range(args.gen_seeds))
    start, cpu_start = time.perf_counter(), time.process_time()
    fit = dual.adversarial_fitness(texts, None, seeds, args.gen_hours, args.symbol)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if args.child:
        print(json.dumps({"seconds": elapsed, "cpu": cpu, "pnl": fit.pnl.tolist(), "trades": fit.trades.tolist()}))
        return
    print(
        f"dual generation: --pop {args.pop:,}, {args.share:.0%} sent = {sent:,} random trees x {args.gen_seeds} seeds "
        f"x {args.gen_hours} h of {args.symbol} (default DSG, features {', '.join(usable)}) through "
        f"apexctl.forge.dual.adversarial_fitness, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
        f"{int(fit.simulated.sum())} of {fit.simulated.size} pairs simulated, {int(fit.trades.sum())} strategy fills"
    )
    # CPU seconds (both cores) beside the wall time: this shared machine's speed drifts by 10-20% between runs.
    print(f"  this build  : {elapsed:7.1f} s  ({cpu:.1f} CPU-s; measured; target under 60 s)")
    if args.independent:
        start = time.perf_counter()
        alone = _core.sim_gp_fitness(texts, None, seeds, args.symbol, args.gen_hours, shared=False)
        alone_s = time.perf_counter() - start
        for field in FIELDS:
            assert np.array_equal(getattr(fit, field), alone[field]), f"shared and independent {field} differ"
        print(f"  independent : {alone_s:7.1f} s  (this build, shared=False: no market sharing; results checked equal)")
        print(f"  sharing     : {alone_s / elapsed:7.2f}x faster  (load average now {os.getloadavg()[0]:.1f})")
    if not args.baseline:
        return
    child = subprocess.run(
        [sys.executable, __file__, "--child", *sys.argv[1:]],
        env={**os.environ, "PYTHONPATH": os.path.abspath(args.baseline)},
        check=True,
        capture_output=True,
        text=True,
    )
    base = json.loads(child.stdout)
    assert np.array_equal(fit.pnl, np.array(base["pnl"])), "this build and the baseline differ"
    assert np.array_equal(fit.trades, np.array(base["trades"], dtype=np.uint64)), "fills differ from the baseline"
    print(
        f"  baseline    : {base['seconds']:7.1f} s  ({base['cpu']:.1f} CPU-s; {args.baseline}, same trees, results "
        "checked equal)"
    )
    print(
        f"  ratio       : {base['seconds'] / elapsed:7.2f}x faster, {base['cpu'] / cpu:.2f}x less CPU  "
        f"(load average now {os.getloadavg()[0]:.1f})"
    )


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--trees", type=int, default=8, help="random trees (genHalfAndHalf, height 2..5)")
    parser.add_argument("--seeds", type=int, default=2, help="market seeds per tree")
    parser.add_argument("--hours", type=float, default=0.5, help="simulated hours per run")
    parser.add_argument("--symbol", default="BTCUSDT")
    parser.add_argument("--pop", type=int, default=50_000, help="population of the extrapolated generation")
    parser.add_argument("--share", type=float, default=0.02, help="share of the population the surrogate sends")
    parser.add_argument("--gen-seeds", type=int, default=3, help="seeds per tree in the extrapolated generation")
    parser.add_argument("--gen-hours", type=float, default=1.0, help="simulated hours per run in that generation")
    parser.add_argument(
        "--features",
        help="comma-separated terminals (default: every simulator feature defined within the first third of the span)",
    )
    parser.add_argument(
        "--generation", action="store_true", help="run and time one real generation at --pop instead of extrapolating"
    )
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="with --generation: also time the same trees with the apexctl package in DIR (another build)",
    )
    parser.add_argument(
        "--independent",
        action="store_true",
        help="with --generation: also time the same trees with shared=False (each trading pair in its own market)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    random.seed(args.seed)
    if args.generation:
        generation(args)
        return
    texts, usable = random_trees(args.trees, args.hours, args.features)
    seeds = list(range(args.seeds))
    units = args.trees * args.seeds * args.hours

    results: dict[bool, dict] = {}

    def batch(shared: bool) -> None:
        results[shared] = _core.sim_gp_fitness(texts, None, seeds, args.symbol, args.hours, shared=shared)

    # Best of 2: the machine is shared, the least disturbed run is the closest to the code's own speed.
    elapsed = best_of(lambda: batch(True), repeats=2)
    together = results[True]
    if args.child:
        print(json.dumps({"seconds": elapsed, "pnl": together["pnl"].tolist()}))
        return
    parallel_s = elapsed
    independent_s = best_of(lambda: batch(False), repeats=2)
    for field in FIELDS:
        assert np.array_equal(together[field], results[False][field]), f"shared and independent {field} differ"
    child = subprocess.run(
        [sys.executable, __file__, "--child", *sys.argv[1:]],
        env={**os.environ, "RAYON_NUM_THREADS": "1"},
        check=True,
        capture_output=True,
        text=True,
    )
    single = json.loads(child.stdout)
    sequential_s = single["seconds"]
    assert np.array_equal(together["pnl"], np.array(single["pnl"])), "parallel and one-thread results differ"
    simulated = int(together["simulated"].sum())
    fills = int(together["trades"].sum())
    print(
        f"dual: {args.trees} random trees x {args.seeds} seeds x {args.hours} h of {args.symbol} (default DSG, "
        f"features {', '.join(usable)}), {os.cpu_count()} cores, results checked equal; {simulated} of "
        f"{together['simulated'].size} pairs simulated (the rest flat on their market), {fills} strategy fills"
    )
    parallel_rate, sequential_rate = units / parallel_s, units / sequential_s
    print(f"  parallel    : {parallel_rate:8.2f} tree-seed-hours/s  ({parallel_s:7.1f} s)")
    print(f"  one thread  : {sequential_rate:8.2f} tree-seed-hours/s  ({sequential_s:7.1f} s)")
    print(f"  ratio       : {sequential_s / parallel_s:8.2f}x faster")
    print(
        f"  independent : {units / independent_s:8.2f} tree-seed-hours/s  ({independent_s:7.1f} s; parallel, every "
        f"trading pair in a market of its own from time 0, shared=False)"
    )
    print(f"  sharing     : {independent_s / parallel_s:8.2f}x faster  (markets shared while trees send alike)")
    sent = int(args.pop * args.share)
    gen_units = sent * args.gen_seeds * args.gen_hours
    print(
        f"  generation  : --pop {args.pop:,}, {args.share:.0%} sent = {sent:,} trees x {args.gen_seeds} seeds x "
        f"{args.gen_hours} h = {gen_units:,.0f} tree-seed-hours -> {gen_units / parallel_rate / 60:,.1f} min "
        f"(extrapolated from the parallel rate on this machine)"
    )


if __name__ == "__main__":
    main()
