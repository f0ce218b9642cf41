"""Every side-by-side benchmark `just bench` runs still runs: each script at a tiny size, so an API change in the
Forge that breaks a benchmark fails here, not in the next measuring session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench"

#: The smallest arguments that still run every part of each script (its peer or baseline included).
TINY: dict[str, list[str]] = {
    "backtest.py": ["--strategies", "20", "--bars", "500", "--subset", "2"],
    "book.py": ["--messages", "2000"],
    "causal.py": ["--rows", "400", "--features", "8", "--tau-max", "2", "--jobs", "1"],
    "chimera.py": ["--hours", "0.02", "--candidates", "2", "--seeds", "1", "--repeats", "1"],
    "dual.py": ["--trees", "2", "--seeds", "1", "--hours", "0.05", "--pop", "200", "--gen-seeds", "1"],
    "efficiency.py": ["--reps", "1", "--hours", "0.5", "--trees", "20"],
    "evolve.py": ["--pop", "200", "--hours", "1"],
    "features.py": ["--messages", "2000", "--book-hours", "0.05"],
    "fetch.py": ["--messages", "2000"],
    "gp.py": ["--trees", "5", "--rows", "300", "--pop", "20", "--gens", "1"],
    "iel.py": ["--envs", "4", "--size", "200", "--horizon-s", "6", "--interval-s", "3", "--repeats", "1"],
    "infer.py": ["--rows", "100", "--gp-nodes", "15", "--window", "4", "--history", "8"],
    "maml.py": ["--tasks", "4", "--rows", "8", "--inputs", "4", "--inner-steps", "1", "--repeats", "1"],
    "market_facts.py": ["--seeds", "1", "--hours", "0.2", "--symbols", "BTCUSDT"],
    "nexus.py": ["--seconds", "2"],
    "nsga2.py": ["--small", "300", "--large", "2000"],
    "sim.py": ["--hours", "0.05", "--jobs", "2", "--record-hours", "0.05"],
    "startup.py": ["--repeats", "1"],
    "tables.py": ["--hours", "0.05", "--repeats", "1"],
    "tree_json.py": ["--trees", "200", "--repeats", "1"],
    "tree_shape.py": ["--trees", "200", "--repeats", "1"],
    "vary.py": ["--pop", "200", "--repeats", "1"],
    "vmd.py": ["--rows", "300", "--window", "32"],
}


def test_every_benchmark_has_a_tiny_run():
    scripts = {p.name for p in BENCH.glob("*.py")} - {"common.py"}
    assert scripts == set(TINY), "give each benchmark script tiny arguments here"


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(TINY))
def test_the_benchmark_runs(script: str):
    done = subprocess.run(
        [sys.executable, script, *TINY[script]], check=False, cwd=BENCH, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    assert done.stdout.strip(), f"{script} printed nothing"
