"""An entry still on its way holds back the slot's next one, end to end on the local venue: with the venue's answers
delayed past the next bar (latency spikes of 1.5 s against 1 s bars), an always-long slot never holds more than one
entry's quantity (it held two, about twice its leverage, when the second entry was sized as if the first had not been
sent), and the held-back entries are in the ledger as `withheld` events."""

from __future__ import annotations

import sqlite3

import pytest

from tests.support.churn import churning_slot
from tests.support.engine_run import stop, wait_for_count

SPIKES = "seed = 3\n[latency_spike]\nevery_s = 2.0\nduration_ms = 1500\n"


@pytest.mark.slow
def test_a_slot_never_holds_two_entries_while_the_first_is_unanswered(tmp_path):
    with churning_slot(tmp_path, SPIKES) as (engine, ledger, _):
        held_back = "SELECT COUNT(*) FROM events WHERE kind = 'withheld' AND detail LIKE '%may still fill%'"
        wait_for_count(ledger, held_back, count=3, seconds=60)
        wait_for_count(ledger, "SELECT COUNT(*) FROM orders WHERE purpose = 'entry'", count=10, seconds=60)
        stop(engine)
    db = sqlite3.connect(ledger)
    entries = [q for (q,) in db.execute("SELECT qty FROM orders WHERE slot = 'btc-a' AND purpose = 'entry'")]
    assert entries, "the slot entered"
    fills = db.execute("SELECT side, qty FROM fills WHERE slot = 'btc-a' ORDER BY ts_exchange, rowid").fetchall()
    position, largest = 0.0, 0.0
    for side, qty in fills:
        position += qty if side == "Buy" else -qty
        largest = max(largest, abs(position))
    assert largest <= max(entries) + 1e-9, (largest, max(entries), fills)
    assert db.execute(held_back).fetchone()[0] >= 3
    assert len(entries) >= 10, entries
