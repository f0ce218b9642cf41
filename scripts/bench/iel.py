"""Benchmark: IEL execution-environment steps per second (a decision plus the simulated market up to the next one),
a batch of N environments stepped in parallel (rayon, GIL released) against the same episodes one env at a time."""

from __future__ import annotations

import os

import numpy as np
from common import arguments, best_of, report

from apexctl import _core


def main() -> None:
    parser = arguments(__doc__, seed=None, repeats=3)
    parser.add_argument("--envs", type=int, default=64, help="environments in the batch (default 64)")
    parser.add_argument("--size", type=int, default=2000, help="parent size in lots (default 2000)")
    parser.add_argument("--horizon-s", type=float, default=30.0, help="execution horizon, s (default 30)")
    parser.add_argument("--interval-s", type=float, default=3.0, help="decision interval, s (default 3)")
    args = parser.parse_args()
    settings = {"size_lots": args.size, "horizon_s": args.horizon_s, "interval_s": args.interval_s}
    seeds = list(range(1, args.envs + 1))
    rng = np.random.default_rng(0)

    batch = _core.ExecEnv("BTCUSDT", args.envs, **settings)
    actions = rng.integers(0, 4, size=(batch.steps, args.envs))

    def batched() -> None:
        batch.reset(seeds)
        for row in actions:
            batch.step(row)

    singles = [_core.ExecEnv("BTCUSDT", 1, **settings) for _ in seeds]

    def one_at_a_time() -> None:
        for i, (env, seed) in enumerate(zip(singles, seeds, strict=True)):
            env.reset([seed])
            for row in actions:
                env.step(row[i : i + 1])

    steps = args.envs * batch.steps
    parallel = best_of(batched, args.repeats)
    sequential = best_of(one_at_a_time, args.repeats)
    print(
        f"{args.envs} episodes x {batch.steps} decisions (parent {args.size} lots BTCUSDT, {args.horizon_s:g} s, "
        f"15 s warm-up each, random actions), {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
        "resets included"
    )
    report("ExecEnv batch step (rayon) vs one env at a time", "steps", steps, parallel, sequential, "one by one")


if __name__ == "__main__":
    main()
