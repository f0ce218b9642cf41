"""A restart into the same OUT on a venue that does not hold the ledger's positions is refused before any order: the
built-in local venue starts afresh each run, so a second run into the first's OUT found its slots' positions gone,
traded its exits into fresh shorts and mixed two unrelated markets into one ledger, with nothing said."""

from __future__ import annotations

import sqlite3

import pytest

from tests.conftest import run_cli
from tests.e2e.test_trade_watchtower import gp_bundle, write_config


@pytest.mark.slow
def test_a_restart_whose_venue_lost_the_ledgers_positions_is_refused_naming_them(tmp_path):
    long = gp_bundle(tmp_path, "long")
    config = write_config(tmp_path / "nexus.toml", [("btc-long", long, 3000.0, "main")])
    # The built-in local venue (no --venue-ready): launched by `trade`, gone when it stops.
    config.write_text(config.read_text().replace('kind = "local"\n', 'kind = "local"\nspeed = 60\nseed = 7\n'))
    out = tmp_path / "run"
    first = run_cli("trade", "--config", str(config), "--out", str(out), "--duration", "6s")
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    db = sqlite3.connect(out / "ledger.sqlite")
    held = db.execute(
        "SELECT COALESCE(SUM(CASE side WHEN 'Buy' THEN qty ELSE -qty END), 0) FROM fills WHERE slot = 'btc-long'"
    ).fetchone()[0]
    orders = db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
    db.close()
    assert held > 0, "the always-long slot holds a position after the first run"
    again = run_cli("trade", "--config", str(config), "--out", str(out), "--duration", "6s")
    stderr = again.stderr.decode().strip()
    assert again.returncode == 2, stderr[-2000:]
    assert "Traceback" not in stderr, stderr
    assert len(stderr.splitlines()) == 1, stderr
    line = stderr
    assert "account main holds 0 BTCUSDT on the exchange" in line, line
    assert f"btc-long {held}" in line, line
    assert "Use a new --out" in line, line
    db = sqlite3.connect(out / "ledger.sqlite")
    assert db.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == orders, "no order left in the refused run"
