"""One always-long slot (btc-a, the pit-crew test's churning tree) trading on a local venue that injects a fault plan:
the setup of the engine tests that watch how a slot lives through what the venue does to its orders."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.test_trade_pitcrew import ACCOUNTS, CAPITAL, CHURN, config_text, publish
from tests.support.engine_run import running_engine
from tests.support.venue_helpers import running_venue


@contextmanager
def churning_slot(tmp_path: Path, faults: str) -> Iterator[tuple[subprocess.Popen, Path, dict]]:
    """Runs the venue (speed 60, seed 11, the plan `faults`) and `apexctl trade` on it (at most 120 s); yields the
    engine, its ledger and the venue's ready document (with its fault log). Stop the engine with
    `engine_run.stop` once the ledger holds what the test needs; the block then checks that it ended with exit 0."""
    folder = tmp_path / "bundles" / "BTCUSDT" / "a"
    publish(tmp_path / "forge", folder, "churn", CHURN)
    (tmp_path / "nexus.toml").write_text(config_text({"btc-a": folder}, 'min_decisions = 100000\nsettle = "200ms"\n'))
    (tmp_path / "faults.toml").write_text(faults)
    accounts = [{**a, "balance": str(CAPITAL * 3)} for a in ACCOUNTS]
    out = tmp_path / "run"
    args = ("--speed", "60", "--seed", "11", "--faults", str(tmp_path / "faults.toml"))
    with running_venue(tmp_path, *args, accounts=accounts) as venue:
        command = [sys.executable, "-m", "apexctl", "trade", "--config", str(tmp_path / "nexus.toml")]
        command += ["--venue-ready", str(tmp_path / "ready.json"), "--out", str(out), "--duration", "120s"]
        with running_engine(command) as engine:
            yield engine, out / "ledger.sqlite", venue
