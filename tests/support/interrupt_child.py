"""Child process of test_harden's Ctrl-C test: runs each named long Rust call and reports how fast SIGINT stopped it.

Prints `go NAME` before a call, then `stopped NAME SECONDS` when a KeyboardInterrupt ended it (or `finished NAME`).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from apexctl import _core

ROWS = 100_000
COLUMNS = [np.random.default_rng(0).normal(size=ROWS) for _ in range(2)]


def tree(window: int) -> str:
    root = {"op": "ts_rank", "args": [{"feature": "a"}, {"window": window}]}
    return f'{{"schema": "apex.gp_tree", "version": 1, "features": ["a"], "root": {root}}}'.replace("'", '"')


CLV = '{"schema": "apex.gp_tree", "version": 1, "features": ["clv"], "root": {"feature": "clv"}}'
DEFAULT_DSG = np.array([p[3] for p in _core.dsg_params()])
CALLS = {
    "sim_run": lambda: _core.sim_run("BTCUSDT", hours=150.0),
    "sim_batch": lambda: _core.sim_batch(
        "BTCUSDT", np.tile(DEFAULT_DSG, (2, 1)), np.array([1, 2], dtype=np.uint64), ["", ""], hours=150.0
    ),
    "sim_gp_fitness": lambda: _core.sim_gp_fitness([CLV] * 4, None, [1, 2], "BTCUSDT", 150.0),
    "gp_evaluate": lambda: _core.gp_evaluate([tree(744 + i) for i in range(256)], ["a", "b"], COLUMNS),
    "exec_env": lambda: _core.ExecEnv("BTCUSDT", 2, horizon_s=3000.0, interval_s=3000.0, warmup_s=86_400.0).reset(
        [1, 2]
    ),
    "vmd_rolling": lambda: _core.vmd_rolling(
        np.cumsum(np.random.default_rng(1).normal(size=200_000)), modes=3, window=512
    ),
}

for name in sys.argv[1:]:
    print("go", name, flush=True)
    started = time.monotonic()
    try:
        CALLS[name]()
        print("finished", name, flush=True)
    except KeyboardInterrupt:
        print("stopped", name, time.monotonic() - started, flush=True)
