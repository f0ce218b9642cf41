"""A stop or take-profit the exchange cancels unfilled re-arms the bracket, end to end on the local venue: with the
venue's `unfilled` fault cancelling half of the market orders without a trade, an always-long slot still closes each
position at a later print through its bracket (before the fix, the first cancelled close left the position open and
unguarded for the rest of the run), and the ledger says why each close was cancelled and that its bracket re-armed."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.support.churn import churning_slot
from tests.support.engine_run import stop, wait_for_count

UNFILLED = "seed = 5\n[unfilled]\nprobability = 0.5\n"
CLOSES = "('stop', 'take')"
# Closes cancelled unfilled and followed by another close of the slot: each one is a bracket that re-armed.
REARMED = (
    f"SELECT COUNT(*) FROM orders c WHERE c.slot = 'btc-a' AND c.purpose IN {CLOSES} AND c.status = 'Cancelled' "
    f"AND EXISTS (SELECT 1 FROM orders l WHERE l.slot = c.slot AND l.purpose IN {CLOSES} AND l.seq > c.seq)"
)
WANTED = 3


@pytest.mark.slow
def test_a_close_the_exchange_cancels_unfilled_rearms_the_bracket(tmp_path):
    with churning_slot(tmp_path, UNFILLED) as (engine, ledger, venue):
        wait_for_count(ledger, REARMED, count=WANTED, seconds=90)
        stop(engine)
    faults = [json.loads(line) for line in venue["fault_log"].read_text().splitlines()]
    struck = {f["orderLinkId"] for f in faults if f["fault"] == "unfilled"}
    db = sqlite3.connect(ledger)
    assert db.execute(REARMED).fetchone()[0] >= WANTED, "a cancelled close was never followed by another"
    closes = db.execute(
        "SELECT seq, qty, status, cum_qty, detail, order_link_id FROM orders "
        f"WHERE slot = 'btc-a' AND purpose IN {CLOSES} ORDER BY seq"
    ).fetchall()
    cancelled = [row for row in closes if row[2] == "Cancelled"]
    rearmed = [d for (d,) in db.execute("SELECT detail FROM events WHERE kind = 'bracket_rearmed'")]
    for seq, qty, _, cum_qty, detail, link in cancelled:
        assert link in struck, f"{link} was cancelled without the fault"
        assert cum_qty == 0, (seq, cum_qty)
        assert "rejectReason=" in (detail or ""), (seq, detail)
        assert "cancelType=" in detail, (seq, detail)
        assert [d for d in rearmed if d.startswith(f"btc-a {link} ended without closing the position")], (link, rearmed)
        # The next close of the slot, if the run went on long enough, closes the same whole position.
        later = [row for row in closes if row[0] > seq]
        if later:
            assert later[0][1] == pytest.approx(qty), (seq, later[0])
    # Between a cancelled close and the next one the slot entered nothing: the position it kept was closed first.
    entries = [s for (s,) in db.execute("SELECT seq FROM orders WHERE slot = 'btc-a' AND purpose = 'entry'")]
    for seq, *_ in cancelled:
        later = [row[0] for row in closes if row[0] > seq]
        if later:
            assert not [e for e in entries if seq < e < later[0]], (seq, later[0])
