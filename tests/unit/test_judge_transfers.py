"""`apexctl judge` measures trading, not the capital the CWO moves between slots: a slot that only received capital
has no growth, no drawdown and reaches no target by it; a slot that gave capital away and paid fees shows the fees
only; a dead slot's equity given back is no loss. The ledger is written with SQL as the engine writes it (the weights
row of a reweight at a bar's close comes before that bar's equity row), with and without `ts_local` (then the
transfers are placed by market time)."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest

from apexctl.commands.judge import _slot_line
from apexctl.forge import judge as judging
from apexctl.schemas.json_schema import validation_error
from tests.support.judge_ledger import MINUTE, SHA_A, SHA_B, SHA_C, V2_HEAD

DDL = (
    V2_HEAD
    + """
INSERT INTO runs VALUES (1, 'local', 1, 999, 'duration');
CREATE TABLE equity (id INTEGER PRIMARY KEY, slot TEXT, equity REAL, position REAL, ts_exchange INTEGER,
    ts_local INTEGER);
CREATE TABLE decisions (decision_id INTEGER PRIMARY KEY, slot TEXT, bar_ts INTEGER, equity REAL, model_id TEXT,
    ts_local INTEGER);
CREATE TABLE orders (order_link_id TEXT, tactic TEXT, purpose TEXT, mid REAL);
CREATE TABLE fills (slot TEXT, order_link_id TEXT, side TEXT, price REAL, qty REAL, fee REAL, is_maker INTEGER);
CREATE TABLE weights (id INTEGER PRIMARY KEY, slot TEXT, weight REAL, capital REAL, base REAL, ts_exchange INTEGER,
    ts_local INTEGER);
CREATE TABLE deaths (id INTEGER PRIMARY KEY, slot TEXT, symbol TEXT, model_id TEXT, reason TEXT, equity REAL,
    threshold REAL, request TEXT, ts_exchange INTEGER, ts_local INTEGER);
INSERT INTO slots VALUES ('a', 'BTCUSDT', 'main', 100, 'bundles/a', 'aaaa', 'signal', 'live'),
    ('b', 'BTCUSDT', 'main', 100, 'bundles/b', 'bbbb', 'signal', 'live'),
    ('c', 'BTCUSDT', 'main', 20, 'bundles/c', 'cccc', 'signal', 'dead');
"""
)

#: Equity at the close of bars 0..3 (None: no row, the slot was dead), then the stop snapshot. The CWO's pass at the
#: close of bar 2 (market time 3 minutes) moves 110 into a (flat throughout: 100 -> 210) and 20 out of b (which pays
#: fees every bar); the pass at the close of bar 3 takes the dead slot c's 20 back.
EQUITY = {
    "a": [100.0, 100.0, 210.0, 210.0, 210.0],
    "b": [99.9, 99.8, 79.7, 79.6, 79.6],
    "c": [20.0, 20.0, None, None, 0.0],
}
#: (slot, weight, capital, base, market time, after which bar's equity the engine wrote it)
WEIGHTS = [
    ("a", 100 / 220, 100.0, 100.0, None, -1),  # the start's configured split: nothing moves
    ("b", 100 / 220, 100.0, 100.0, None, -1),
    ("c", 20 / 220, 20.0, 20.0, None, -1),
    ("c", 0.0, 0.0, 20.0, 2 * MINUTE, 1),  # c dies: weight 0, its capital released at the next pass
    ("a", 210 / 289.8, 210.0, 210.0, 3 * MINUTE, 1),
    ("b", 79.8 / 289.8, 79.8, 80.0, 3 * MINUTE, 1),
    ("c", 0.0, 0.0, 0.0, 4 * MINUTE, 2),
]


def transfers_ledger(path: Path, *, local_clock: bool) -> Path:
    """The ledger above; without `local_clock` no row has ts_local (the judge places transfers by market time)."""
    with sqlite3.connect(path) as db:
        db.executescript(DDL)
        clock = (lambda after: 10 * after + 8) if local_clock else (lambda after: None)
        for slot, weight, capital, base, ts, after in WEIGHTS:
            db.execute(
                "INSERT INTO weights VALUES (NULL, ?, ?, ?, ?, ?, ?)",
                (slot, weight, capital, base, ts, clock(after)),
            )
        for slot, values in EQUITY.items():
            model = {"a": SHA_A, "b": SHA_B, "c": SHA_C}[slot]
            *bars, stop = values
            for i, value in enumerate(bars):
                if value is None:
                    continue
                written = 10 * i + 7 if local_clock else None
                db.execute("INSERT INTO equity VALUES (NULL, ?, ?, 0, ?, ?)", (slot, value, i * MINUTE, written))
                db.execute(
                    "INSERT INTO decisions VALUES (NULL, ?, ?, ?, ?, ?)", (slot, i * MINUTE, value, model, written)
                )
            db.execute("INSERT INTO equity VALUES (NULL, ?, ?, 0, NULL, ?)", (slot, stop, 100 if local_clock else None))
        db.execute(
            "INSERT INTO deaths VALUES (NULL, 'c', 'BTCUSDT', ?, 'equity too low', 20.0, 25.0, NULL, ?, 1)",
            (SHA_C, 2 * MINUTE),
        )
    return path


@pytest.mark.parametrize("local_clock", [True, False], ids=["ts_local", "market-time"])
def test_capital_moved_by_the_cwo_is_no_growth_no_drawdown_and_no_target(tmp_path, local_clock):
    ledger = transfers_ledger(tmp_path / "ledger.sqlite", local_clock=local_clock)
    document = judging.judge([ledger]).document
    assert validation_error(document, "judgment") is None
    slots = {s["slot"]: s for s in document["ledgers"][0]["slots"]}
    a, b, c = slots["a"], slots["b"], slots["c"]

    # a never traded: 110 moved in is no growth, and lifting its equity above the target (2 x 100) reaches nothing.
    assert a["equity"]["final"] == 210.0  # the money it holds
    assert a["equity"]["log_growth"] == pytest.approx(0.0, abs=1e-12)
    assert a["equity"]["max_drawdown"] == pytest.approx(0.0, abs=1e-12)
    assert a["target"]["equity"] == 200.0
    assert a["ttt"]["reached"] is False
    assert a["ttt"]["seconds"] is None
    assert a["ttt"]["fraction_reached"] == pytest.approx(0.5)
    assert a["equity"]["trading_final"] == pytest.approx(100.0)
    assert a["equity"]["transferred"] == pytest.approx(110.0)
    assert a["equity"]["transfers"] == 1
    (model,) = a["models"]
    assert model["live"]["log_growth"] == pytest.approx(0.0, abs=1e-12)
    assert model["live"]["max_drawdown"] == pytest.approx(0.0, abs=1e-12)
    assert model["live"]["ttt"]["reached"] is False
    assert model["live"]["final"] == 210.0

    # b lost by fees and gave 20 away: its growth is the fees' alone, ln(99.9/100 * 99.8/99.9 * 79.7/79.8 * ...).
    fees_only = math.log(99.9 / 100) + math.log(99.8 / 99.9) + math.log(79.7 / 79.8) + math.log(79.6 / 79.7)
    assert b["equity"]["log_growth"] < 0
    assert b["equity"]["log_growth"] == pytest.approx(fees_only, rel=1e-9)
    assert b["equity"]["max_drawdown"] == pytest.approx(1 - math.exp(fees_only), rel=1e-9)
    assert b["equity"]["final"] == 79.6
    assert b["equity"]["transferred"] == pytest.approx(-20.0)
    (model,) = b["models"]
    assert model["live"]["log_growth"] == pytest.approx(fees_only, rel=1e-9)

    # c died with 20 and gave it back: no loss, and its figures agree (the money it holds is 0).
    assert c["state"] == "dead"
    assert c["equity"]["final"] == 0.0
    assert c["equity"]["log_growth"] == pytest.approx(0.0, abs=1e-12)
    assert c["equity"]["max_drawdown"] == pytest.approx(0.0, abs=1e-12)
    assert c["equity"]["trading_final"] == pytest.approx(20.0)
    assert c["equity"]["min"] == c["equity"]["max"] == pytest.approx(20.0)
    assert c["equity"]["transferred"] == pytest.approx(-20.0)

    # The summary line shows the money held and says what the CWO moved.
    assert "equity 210.00 (+110.00 moved by the CWO), log growth +0.0000, max drawdown 0.0 %, 50 % of target" in (
        _slot_line(a)
    )


def test_growth_without_transfers_is_the_equity_itself():
    points = [(i * MINUTE, None, v) for i, v in enumerate((100.0, 150.0, 210.0, 90.0))]
    assert judging.trading_equity(points, [], 100.0, 60.0) == [100.0, 150.0, 210.0, 90.0]


def test_a_transfer_in_the_middle_of_trading_keeps_the_steps_trading_return():
    """100 -> 110 trading, +1000 moved in at the third bar's close (so the third bar's equity holds it), then
    1110 -> 1000 trading (watchtower.rs's case): the index multiplies the trading returns only."""
    points = [(0, None, 100.0), (MINUTE, None, 110.0), (2 * MINUTE, None, 1110.0), (3 * MINUTE, None, 1000.0)]
    moved = [judging.Transfer(1000.0, 3 * MINUTE, None)]
    values = judging.trading_equity(points, moved, 100.0, 60.0)
    assert values[:3] == [100.0, 110.0, 110.0]
    assert math.log(values[-1] / 100.0) == pytest.approx(math.log(1.1) + math.log(1000 / 1110))
