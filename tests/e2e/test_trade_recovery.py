"""Private updates that never reach the engine are read back from the REST history within seconds, end to end on the
local venue, with a third of the private order and execution messages lost on the way (`[private_loss]`): an
always-long slot's lost fills are booked (source `recover`) and its lost order ends taken while it runs, so it keeps
trading instead of waiting out the minute `OPEN_ENTRY_LIMIT` allows, and the ledger equals the venue at the end; the
lost end of a passive entry is read back too."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.e2e.test_trade import SYMBOLS, http, make_bundle, venue_accounts, venue_executions, venue_state
from tests.e2e.test_trade_pitcrew import ACCOUNTS
from tests.e2e.test_trade_protection import write_config
from tests.support.churn import churning_slot
from tests.support.engine_run import running_engine, stop, stop_and_wait, wait_for_count
from tests.support.venue_helpers import running_venue

LOSS = "seed = 5\n[private_loss]\nprobability = 0.33\n"
BOOKED = "SELECT COUNT(*) FROM fills WHERE source = 'recover'"
RECOVERIES = "SELECT detail FROM events WHERE kind = 'private_recovery'"


def check_ledger(ledger: Path, executions: set[str], venue_qty: float) -> list[str]:
    """Nothing waited out the minute, and the ledger's fills and position equal the venue's; the recoveries' details."""
    db = sqlite3.connect(ledger)
    events = dict(db.execute("SELECT kind, COUNT(*) FROM events GROUP BY kind"))
    assert "open_entry_expired" not in events, events
    assert "unbooked_expired" not in events, events
    assert "unbooked_expired" not in events, events
    fills = db.execute("SELECT exec_id, side, qty FROM fills WHERE slot = 'btc-a'").fetchall()
    assert {e for e, _, _ in fills} == executions, (len(fills), len(executions))
    position = sum(qty if side == "Buy" else -qty for _, side, qty in fills)
    assert abs(position - venue_qty) < 1e-9, (position, venue_qty)
    return [d for (d,) in db.execute(RECOVERIES)]


@pytest.mark.slow
def test_private_messages_lost_on_the_way_are_read_back_while_the_engine_runs(tmp_path):
    ended = "SELECT COUNT(*) FROM order_events WHERE detail = 'recovered'"
    with churning_slot(tmp_path, LOSS) as (engine, ledger, venue):
        wait_for_count(ledger, BOOKED, count=2, seconds=90)
        wait_for_count(ledger, ended, count=2, seconds=30)
        stop_and_wait(engine)
        executions, venue_qty = venue_state(http(venue, ACCOUNTS[0]), "BTCUSDT")
    lost = [json.loads(line) for line in venue["fault_log"].read_text().splitlines()]
    assert {f["topic"] for f in lost if f["fault"] == "private_loss"} == {"order", "execution"}, lost
    recoveries = check_ledger(ledger, executions, venue_qty)
    db = sqlite3.connect(ledger)
    assert db.execute(BOOKED).fetchone()[0] >= 2, recoveries
    assert db.execute(ended).fetchone()[0] >= 2, recoveries


@pytest.mark.slow
def test_the_lost_end_of_a_cancelled_passive_entry_is_read_back(tmp_path):
    """Slots whose IEL policies post passive entries, cancelled at the next bar if not filled: when the message of
    how one ended is lost (the cancel then answers "order not exists or too late"), the engine asks the REST history
    and the slot's next entry does not wait out the minute; fills lost while later ones were booked are found too."""
    bundles = {symbol: make_bundle(tmp_path / "forge", symbol, "a", seed) for seed, symbol in enumerate(SYMBOLS)}
    config = write_config(tmp_path / "nexus.toml", bundles, ACCOUNTS[0]["name"], "10s")
    (tmp_path / "faults.toml").write_text(LOSS)
    passive = (
        "SELECT COUNT(*) FROM order_events e JOIN orders o USING (order_link_id) "
        "WHERE e.detail = 'recovered' AND o.tactic LIKE 'passive%'"
    )
    args = ("--speed", "60", "--seed", "4", "--faults", str(tmp_path / "faults.toml"))
    with running_venue(tmp_path, *args, accounts=venue_accounts()) as venue:
        command = [sys.executable, "-m", "apexctl", "trade", "--config", str(config)]
        command += ["--venue-ready", str(tmp_path / "ready.json"), "--out", str(tmp_path / "run"), "--duration", "120s"]
        ledger = tmp_path / "run" / "ledger.sqlite"
        with running_engine(command) as engine:
            wait_for_count(ledger, passive, seconds=90)
            stop(engine)
        executions = set(venue_executions(http(venue, ACCOUNTS[0])))
    db = sqlite3.connect(ledger)
    assert {e for (e,) in db.execute("SELECT exec_id FROM fills")} == executions
    recoveries = [d for (d,) in db.execute(RECOVERIES)]
    assert db.execute(passive).fetchone()[0] >= 1, recoveries
    events = dict(db.execute("SELECT kind, COUNT(*) FROM events GROUP BY kind"))
    assert "open_entry_expired" not in events, events
    assert "unbooked_expired" not in events, events
