"""The CWO scores each slot on its own trading, end to end on the local venue: a slot that pays spread and fees on
every bar ends up with less of its account's capital than a flat one beside it (the per-bar returns it is scored on
run from one bar's close to the next, with only the capital the CWO moved taken out)."""

from __future__ import annotations

import sqlite3
import sys

import pytest

from tests.e2e.test_trade_pitcrew import ACCOUNTS, CAPITAL, CHURN, FLAT, config_text, publish
from tests.support.engine_run import running_engine, stop, wait_for_count
from tests.support.venue_helpers import running_venue

#: Reweights seen before judging the weights: enough bars that the churner's fees dominate its record.
REWEIGHTS = 12


@pytest.mark.slow
def test_a_slot_that_loses_fees_every_bar_gets_less_capital_than_a_flat_one(tmp_path):
    root = tmp_path / "forge"
    bundles = {
        "btc-churn": tmp_path / "bundles" / "BTCUSDT" / "churn",
        "btc-flat": tmp_path / "bundles" / "BTCUSDT" / "flat",
    }
    publish(root, bundles["btc-churn"], "churn", CHURN)
    publish(root, bundles["btc-flat"], "flat", FLAT)
    # Both slots on one account (the CWO splits an account's capital); a reweight every bar, scored on the last 30.
    config = config_text(bundles, 'min_decisions = 100000\nsettle = "200ms"\n').replace(
        f'account = "{ACCOUNTS[1]["name"]}"', f'account = "{ACCOUNTS[0]["name"]}"'
    )
    config += '\n[cwo]\nevery = "60s"\nlookback = 30\nshrink = 1\ntilt = 1\nfloor = 0.05\ncap = 0.95\n'
    (tmp_path / "nexus.toml").write_text(config)
    accounts = [{**a, "balance": str(CAPITAL * 3)} for a in ACCOUNTS]
    out = tmp_path / "run"
    ledger = out / "ledger.sqlite"
    with running_venue(tmp_path, "--speed", "60", "--seed", "11", accounts=accounts):
        command = [sys.executable, "-m", "apexctl", "trade", "--config", str(tmp_path / "nexus.toml")]
        command += ["--venue-ready", str(tmp_path / "ready.json"), "--out", str(out), "--duration", "120s"]
        with running_engine(command) as engine:
            wait_for_count(ledger, "SELECT COUNT(*) FROM weights WHERE slot = 'btc-churn'", count=REWEIGHTS, seconds=90)
            stop(engine)
    db = sqlite3.connect(ledger)
    fees = db.execute("SELECT COALESCE(SUM(fee), 0) FROM fills WHERE slot = 'btc-churn'").fetchone()[0]
    assert fees > 0, "the churner traded and paid fees"
    assert not db.execute("SELECT 1 FROM fills WHERE slot = 'btc-flat'").fetchall()
    last = dict(
        db.execute(
            "SELECT slot, weight FROM weights WHERE id IN (SELECT MAX(id) FROM weights GROUP BY slot)"
        ).fetchall()
    )
    assert last["btc-churn"] < last["btc-flat"], last
