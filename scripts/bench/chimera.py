"""Benchmark: chimera evaluations (candidate x seed simulated markets, moments included) per second: the parallel
batch the chimera runs (`cmaes.simulate_items`, one Rust simulation per thread with the GIL released) against the
same simulations in a sequential `_core.sim_run` loop; plus raw `_core.sim_batch` (summaries only, rayon) for
reference, since it cannot return the market the moments need."""

from __future__ import annotations

import json
import os

import numpy as np
from common import arguments, best_of

from apexctl import _core
from apexctl.forge import moments as mom
from apexctl.forge.cmaes import SimTemplate, dsg_document, dsg_params, dsg_vector, simulate_items


def main() -> None:
    parser = arguments(__doc__, seed=None, repeats=2)
    parser.add_argument("--hours", type=float, default=0.1, help="simulated hours per market (default 0.1)")
    parser.add_argument("--candidates", type=int, default=4, help="candidate DSGs (default 4)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per candidate (default 2)")
    parser.add_argument("--symbol", default="BTCUSDT", help="instrument preset (default BTCUSDT)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    base = dsg_vector(_core.dsg_normalize(None))
    # Candidates near the default, as a CMA-ES generation would send, kept inside each parameter's bounds (a default
    # may sit on one).
    params = dsg_params()
    lo, hi = np.array([p.lo for p in params]), np.array([p.hi for p in params])
    vectors = [np.clip(base * rng.uniform(0.8, 1.2, size=len(base)), lo, hi) for _ in range(args.candidates)]
    texts = [json.dumps(dsg_document(v)) for v in vectors]
    items = [(text, seed) for text in texts for seed in range(1, args.seeds + 1)]
    template = SimTemplate(args.symbol, args.hours)

    parallel_rows: list = []
    sequential_rows: list = []

    def batch() -> None:
        parallel_rows[:] = simulate_items(template, items)

    def loop() -> None:
        sequential_rows[:] = [
            mom.from_sim_output(
                _core.sim_run(args.symbol, dsg_json=text, seed=seed, hours=args.hours), template.moments
            )
            for text, seed in items
        ]

    parallel = best_of(batch, args.repeats)
    sequential = best_of(loop, args.repeats)
    same = all(
        np.allclose(list(a.values()), list(b.values()), equal_nan=True)
        for a, b in zip(parallel_rows, sequential_rows, strict=True)
    )
    n = len(items)
    load = os.getloadavg()[0]
    print(
        f"chimera evaluations: {args.candidates} candidates x {args.seeds} seeds = {n} markets of {args.hours:g} h "
        f"{args.symbol} with moments ({os.cpu_count()} cores, load average {load:.1f}); results equal: {same}"
    )
    print(f"  apexctl     : {n / parallel:14,.2f} evaluations/s  ({parallel:.2f} s, threads over Rust simulations)")
    print(f"  sim_run loop: {n / sequential:14,.2f} evaluations/s  ({sequential:.2f} s)")
    print(f"  ratio       : {sequential / parallel:14.2f}x faster")

    matrix = np.vstack([v for v in vectors for _ in range(args.seeds)])
    seeds = np.array([s for _ in vectors for s in range(1, args.seeds + 1)], dtype=np.uint64)
    summaries = best_of(lambda: _core.sim_batch(args.symbol, matrix, seeds, [""] * n, hours=args.hours), args.repeats)
    print(f"  sim_batch   : {n / summaries:14,.2f} markets/s   ({summaries:.2f} s; summaries only, no moments)")


if __name__ == "__main__":
    main()
