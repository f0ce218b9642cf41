"""Benchmark: GP node evaluations per second, Rust batch (apex-gp through apexctl._core) vs DEAP gp.compile on NumPy:
random trees, then an evolved population whose shared subtrees the batch evaluates once. `--baseline FILE` loads
another build's `_core` library (e.g. main's `apexctl/_core.abi3.so`, copied aside) into the same process and times it
interleaved with this build's, results checked bit-equal. Each timed sample loops a call until it holds at least
SAMPLE_CPU of process CPU, and the median and best of several samples are printed."""

from __future__ import annotations

import importlib.util
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
from common import arguments, best_of, report
from deap import gp

from apexctl import _core
from apexctl.forge import gp as forge_gp
from apexctl.forge.evolve import EvolveConfig, make_toolbox, vary

NAMES = ["ofi_l1", "pressure", "ret_1", "ret_5", "spread", "vol"]


# Process CPU a timed sample spends at least: one call on the random trees is ~30 ms of CPU, too short to time alone
# on a shared machine (a scheduler tick or another build's burst is a large part of it), so a sample loops the call.
SAMPLE_CPU = 0.3


@dataclass
class Timing:
    """Per-call times of a call looped `loops` times inside each of several samples (each at least SAMPLE_CPU of
    process CPU): process CPU over all threads (the rate per core, whatever else the machine runs) and wall."""

    loops: int
    cpu: list[float]
    wall: list[float]

    @property
    def best_cpu(self) -> float:
        return min(self.cpu)

    @property
    def median_cpu(self) -> float:
        return float(np.median(self.cpu))

    @property
    def best_wall(self) -> float:
        return min(self.wall)

    def rates(self, count: float) -> str:
        """`count` per CPU-second at the median and best sample."""
        return (
            f"median {count / self.median_cpu:14,.0f}, best {count / self.best_cpu:,.0f} per CPU-second "
            f"({len(self.cpu)} samples x {self.loops} calls, median {self.median_cpu * 1e3:.1f} ms CPU a call)"
        )


def loops_for(fn: Callable[[], object]) -> int:
    """How many calls of `fn` make a sample of at least SAMPLE_CPU process CPU (after one warm-up call)."""
    fn()
    cpu = time.process_time()
    fn()
    one = max(time.process_time() - cpu, 1e-4)
    return max(1, math.ceil(SAMPLE_CPU / one))


def sampled(fns: list[Callable[[], object]], samples: list[int]) -> list[Timing]:
    """Timings of each of `fns` over `samples[i]` samples, taken turn about (fn 0, fn 1, ..., fn 0, ...) so that all
    see the same machine load; a function with fewer samples drops out of the later rounds."""
    loops = [loops_for(fn) for fn in fns]
    cpu: list[list[float]] = [[] for _ in fns]
    wall: list[list[float]] = [[] for _ in fns]
    for round_ in range(max(samples)):
        for i, fn in enumerate(fns):
            if round_ >= samples[i]:
                continue
            w, c = time.perf_counter(), time.process_time()
            for _ in range(loops[i]):
                fn()
            cpu[i].append((time.process_time() - c) / loops[i])
            wall[i].append((time.perf_counter() - w) / loops[i])
    return [Timing(n, c, w) for n, c, w in zip(loops, cpu, wall, strict=True)]


def evolved(pset: gp.PrimitiveSetTyped, pop: int, gens: int, rows: int, seed: int) -> list[str]:
    """The distinct trees of a population after `gens` generations of `apexctl evolve`'s selection and variation
    (its toolbox and `vary`), scored by |correlation| of the signal with a planted next-row target."""
    random.seed(seed)
    rng = np.random.default_rng(seed)
    columns = [rng.standard_normal(rows) for _ in NAMES]
    target = np.roll(np.tanh(columns[2] - 0.5 * columns[3]) + 0.3 * rng.standard_normal(rows), -1)
    config = EvolveConfig(features="-", output=Path("-"), pop=pop, gens=gens, seed=seed)
    toolbox = make_toolbox(pset, config)
    population = toolbox.population(n=pop)

    def score(individuals: list) -> None:
        texts = [forge_gp.to_json(ind) for ind in individuals]
        signals = _core.gp_evaluate(texts, NAMES, columns)
        for ind, signal in zip(individuals, signals, strict=True):
            spread = signal[:-1].std()
            corr = 0.0 if spread == 0 else abs(float(np.corrcoef(signal[:-1], target[:-1])[0, 1]))
            ind.fitness.values = (corr if np.isfinite(corr) else 0.0,)

    score(population)
    for _ in range(gens):
        population = vary(population, toolbox, config)
        score([ind for ind in population if not ind.fitness.valid])
    return list(dict.fromkeys(forge_gp.to_json(ind) for ind in population))


def load_baseline(path: str) -> ModuleType:
    """Another build's `_core` extension from its library file, as a module of its own beside this build's."""
    spec = importlib.util.spec_from_file_location("apexctl._core", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"--baseline {path}: not a Python extension module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def interleaved(texts: list[str], columns: list[np.ndarray], baseline: ModuleType, samples: int = 7) -> list[Timing]:
    """This build's and the baseline's `gp_evaluate_into`, sampled turn about (see `sampled`), results checked
    bit-equal first."""
    out = np.empty((len(texts), len(columns[0])))
    theirs = np.empty_like(out)
    _core.gp_evaluate_into(texts, NAMES, columns, out)
    baseline.gp_evaluate_into(texts, NAMES, columns, theirs)
    assert np.array_equal(out.view(np.uint64), theirs.view(np.uint64)), "this build and the baseline disagree"
    return sampled(
        [
            lambda: _core.gp_evaluate_into(texts, NAMES, columns, out),
            lambda: baseline.gp_evaluate_into(texts, NAMES, columns, theirs),
        ],
        [samples, samples],
    )


def compare(
    title: str,
    texts: list[str],
    trees: list,
    pset: gp.PrimitiveSetTyped,
    columns: list[np.ndarray],
    baseline: ModuleType | None = None,
) -> None:
    rows = len(columns[0])
    sharing = _core.gp_sharing(texts, NAMES)
    node_evals = sharing["tree_nodes"] * rows

    # One output array reused from call to call, as evolve can from generation to generation: `gp_evaluate` allocates
    # (and the C library zero-fills) trees x rows values on every call.
    out = np.empty((len(texts), rows))

    def ours() -> np.ndarray:
        _core.gp_evaluate_into(texts, NAMES, columns, out)
        return out

    def allocating() -> np.ndarray:
        return _core.gp_evaluate(texts, NAMES, columns)

    def unshared() -> np.ndarray:
        return _core.gp_evaluate(texts, NAMES, columns, share=False)

    def peer() -> list[np.ndarray]:
        return [forge_gp.reference_evaluate(tree, pset, columns) for tree in trees]

    got = ours().copy()
    assert np.array_equal(got.view(np.uint64), np.stack(peer()).view(np.uint64)), "Rust and DEAP disagree"
    assert np.array_equal(got.view(np.uint64), unshared().view(np.uint64))
    assert np.array_equal(got.view(np.uint64), allocating().view(np.uint64))
    # Ours, the allocating call and the unshared one sampled turn about; ours gets the most samples (its median and
    # best are the headline figures).
    timing, allocating_t, unshared_t = sampled([ours, allocating, unshared], [7, 3, 3])
    ours_s = timing.best_wall
    peer_s = best_of(peer, repeats=1)
    name = (
        f"{title}: {len(texts)} trees x {rows:,} rows, {sharing['tree_nodes']:,} tree nodes, "
        f"{sharing['distinct_operations']:,} distinct operations once shared ({node_evals:,} node evaluations), "
        "checked bit-equal to DEAP"
    )
    report(name, "node-evals", node_evals, ours_s, peer_s, "deap+numpy")
    executed = sharing["distinct_operations"] * rows
    print(f"  per core    : {timing.rates(node_evals)}; gp_evaluate_into a reused array")
    print(f"  allocating  : {allocating_t.rates(node_evals)}; gp_evaluate, a new array per call")
    print(
        f"  executed    : {executed / timing.median_cpu:14,.0f} operations per CPU-second at the median, "
        f"{executed / ours_s:,.0f}/s wall ({executed:,} = distinct operations x rows: shared subtrees once, leaves "
        "and folded constants not counted; the node-evals above count every tree node of every tree, as DEAP "
        "evaluates them)"
    )
    print(
        f"  not shared  : {unshared_t.rates(node_evals)}; sharing {unshared_t.median_cpu / timing.median_cpu:.2f}x "
        "less CPU"
    )
    if baseline is not None:
        mine, theirs = interleaved(texts, columns, baseline)
        print(f"  this build  : {mine.rates(node_evals)}, turn about with --baseline")
        print(
            f"  baseline    : {theirs.rates(node_evals)}; this build {theirs.median_cpu / mine.median_cpu:.2f}x at the "
            f"median, {theirs.best_cpu / mine.best_cpu:.2f}x best (results bit-equal)"
        )


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--trees", type=int, default=200, help="random trees (genHalfAndHalf, height 2..6)")
    parser.add_argument("--rows", type=int, default=20_000, help="rows of each feature column")
    parser.add_argument("--pop", type=int, default=2_000, help="population of the evolved scenario (0: skip it)")
    parser.add_argument("--gens", type=int, default=10, help="generations evolved before the evolved scenario")
    parser.add_argument("--baseline", metavar="FILE", help="another build's _core library, timed turn about")
    args = parser.parse_args()
    baseline = load_baseline(args.baseline) if args.baseline else None
    random.seed(args.seed)
    rng = np.random.default_rng(args.seed)
    columns = [rng.standard_normal(args.rows) for _ in NAMES]
    pset = forge_gp.primitive_set(NAMES)
    trees = [gp.PrimitiveTree(forge_gp.gen_half_and_half(pset, 2, 6)) for _ in range(args.trees)]
    compare("gp random trees", [forge_gp.to_json(tree) for tree in trees], trees, pset, columns, baseline)
    if args.pop:
        texts = evolved(pset, args.pop, args.gens, 2_000, args.seed)
        print()
        compare(
            f"gp evolved population (--pop {args.pop}, {args.gens} generations of evolve's variation)",
            texts,
            [forge_gp.from_json(text, pset) for text in texts],
            pset,
            columns,
            baseline,
        )


if __name__ == "__main__":
    main()
