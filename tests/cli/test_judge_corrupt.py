"""`apexctl judge` on a ledger with one wrong value (text, a blob or NULL where a number is needed, an infinity, a
real where a timestamp belongs, ...): exit 2, one line naming the file, table, row and column, nothing written; and
a ledger given twice is a usage error."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import run_here
from tests.support.judge_ledger import MINUTE, SHA_A, SHA_B, SHA_C, V2_HEAD

#: The version-2 columns the judge reads, with their declared types (so SQLite's type affinity applies as in a real
#: ledger: a REAL column turns '12' into 12.0 but keeps 'nan' as text) and without NOT NULL, so a NULL can be put in.
DDL = (
    V2_HEAD
    + """
CREATE TABLE equity (id INTEGER PRIMARY KEY, slot TEXT, equity REAL, position REAL, ts_exchange INTEGER);
CREATE TABLE decisions (decision_id INTEGER PRIMARY KEY, slot TEXT, bar_ts INTEGER, equity REAL, model_id TEXT);
CREATE TABLE orders (order_link_id TEXT, tactic TEXT, purpose TEXT, mid REAL);
CREATE TABLE fills (slot TEXT, order_link_id TEXT, side TEXT, price REAL, qty REAL, fee REAL, is_maker INTEGER);
CREATE TABLE weights (id INTEGER PRIMARY KEY, slot TEXT, weight REAL, capital REAL, ts_exchange INTEGER);
CREATE TABLE models (slot TEXT, model_id TEXT, bundle TEXT, label TEXT, role TEXT, detail TEXT, ts_exchange INTEGER);
CREATE TABLE shadow_equity (id INTEGER PRIMARY KEY, slot TEXT, model_id TEXT, equity REAL, decisions INTEGER,
    ts_exchange INTEGER);
CREATE TABLE swaps (id INTEGER PRIMARY KEY, slot TEXT, from_model TEXT, to_model TEXT, reason TEXT, position TEXT,
    ts_exchange INTEGER, ts_local INTEGER);
CREATE TABLE deaths (id INTEGER PRIMARY KEY, slot TEXT, symbol TEXT, model_id TEXT, reason TEXT, equity REAL,
    threshold REAL, request TEXT, ts_exchange INTEGER, ts_local INTEGER);
INSERT INTO runs VALUES (1, 'local', 5, 9, 'duration');
INSERT INTO slots VALUES ('a', 'BTCUSDT', 'main', 100, 'bundles/a', 'aaaa', 'signal', 'live'),
    ('b', 'ETHUSDT', 'main', 100, 'bundles/b', 'bbbb', 'signal', 'live');
INSERT INTO orders VALUES ('o1', 'aggressive', 'entry', 100.0), ('o2', 'passive', 'exit', 101.0);
INSERT INTO fills VALUES ('a', 'o1', 'Buy', 100.5, 2, 0.11, 0), ('a', 'o2', 'Sell', 100.9, 2, 0.05, 1);
"""
)


def make_ledger(path: Path) -> Path:
    """A small version-2 ledger: two slots of four bars and a stop snapshot each; slot a died and was refilled (an
    answered death, so nothing is pending), a challenger with shadow equity, two reweights."""
    with sqlite3.connect(path) as db:
        db.executescript(DDL)
        for slot, model in (("a", "aaaa"), ("b", "bbbb")):
            for i, value in enumerate((100.0, 120.0, 90.0, 130.0)):
                db.execute("INSERT INTO equity VALUES (NULL, ?, ?, 0, ?)", (slot, value, i * MINUTE))
                db.execute("INSERT INTO decisions VALUES (NULL, ?, ?, ?, ?)", (slot, i * MINUTE, value, model))
            db.execute("INSERT INTO equity VALUES (NULL, ?, 131.0, 0, NULL)", (slot,))
            db.execute("INSERT INTO weights VALUES (NULL, ?, 0.5, 100, ?)", (slot, MINUTE))
        db.execute("INSERT INTO models VALUES ('a', ?, 'bundles/c', 'challenger c', 'challenger', NULL, 0)", (SHA_C,))
        db.executemany(
            "INSERT INTO shadow_equity VALUES (NULL, 'a', ?, ?, ?, ?)",
            [(SHA_C, 100.0 + i, i + 1, i * MINUTE) for i in range(3)],
        )
        db.execute(
            "INSERT INTO deaths VALUES (NULL, 'a', 'BTCUSDT', ?, 'equity too low', 1.0, 5.0, NULL, ?, 1)",
            (SHA_A, MINUTE),
        )
        db.execute("INSERT INTO swaps VALUES (NULL, 'a', NULL, ?, 'refill', 'flat', ?, 2)", (SHA_B, 2 * MINUTE))
    return path


def judge(ledger: Path, out: Path, *more: str):
    return run_here("judge", str(ledger), *more, "-o", str(out / "judgment.json"), "--report", str(out / "report"))


def test_the_undamaged_ledger_is_judged(tmp_path):
    ledger = make_ledger(tmp_path / "ledger.sqlite")
    ran = judge(ledger, tmp_path / "out")
    assert ran.code == 0, ran.stderr
    assert (tmp_path / "out" / "judgment.json").is_file()
    assert (tmp_path / "out" / "report" / "report.html").is_file()


#: (the damage, the table, the row (rowid), the column, what the message says of the value)
DAMAGES = [
    # The bad-input sweep's findings: text in a REAL column, in the capital, and an infinity (SQLite stores 9e999 so).
    ("UPDATE equity SET equity = 'nan' WHERE id = 3", "equity", 3, "equity", "got 'nan'"),
    ("UPDATE equity SET equity = 'abc' WHERE id = 7", "equity", 7, "equity", "got 'abc'"),
    ("UPDATE slots SET capital = 'lots' WHERE slot = 'b'", "slots", 2, "capital", "got 'lots'"),
    ("UPDATE equity SET equity = 9e999", "equity", 1, "equity", "got inf"),
    ("UPDATE equity SET equity = -9e999 WHERE id = 5", "equity", 5, "equity", "got -inf"),
    # A number beyond any amount (the plots fail near 1e308), a blob, NULL where the measures need a value.
    ("UPDATE decisions SET equity = 1.7e308 WHERE decision_id = 2", "decisions", 2, "equity", "got 1.7e+308"),
    ("UPDATE fills SET price = x'00ff' WHERE rowid = 2", "fills", 2, "price", "got a blob of 2 byte(s)"),
    ("UPDATE fills SET qty = NULL WHERE rowid = 1", "fills", 1, "qty", "got NULL"),
    ("UPDATE fills SET side = 'buy' WHERE rowid = 1", "fills", 1, "side", "one of 'Buy', 'Sell', got 'buy'"),
    ("UPDATE orders SET mid = 'n/a' WHERE rowid = 2", "orders", 2, "mid", "or NULL, got 'n/a'"),
    # Timestamps and counts must be integers; text columns text (a TEXT column turns a number into text, not a blob).
    ("UPDATE decisions SET bar_ts = 1.5 WHERE decision_id = 6", "decisions", 6, "bar_ts", "got 1.5"),
    ("UPDATE equity SET ts_exchange = 'soon' WHERE id = 2", "equity", 2, "ts_exchange", "got 'soon'"),
    ("UPDATE runs SET started_local = 'yesterday'", "runs", 1, "started_local", "got 'yesterday'"),
    ("UPDATE shadow_equity SET decisions = 'x' WHERE id = 3", "shadow_equity", 3, "decisions", "got 'x'"),
    ("UPDATE swaps SET ts_local = NULL", "swaps", 1, "ts_local", "got NULL"),
    ("UPDATE deaths SET threshold = 'abc'", "deaths", 1, "threshold", "got 'abc'"),
    ("UPDATE weights SET weight = 1e31 WHERE id = 2", "weights", 2, "weight", "got 1e+31"),
    ("UPDATE models SET model_id = x'41'", "models", 1, "model_id", "must be text, got a blob of 1 byte(s)"),
    ("UPDATE slots SET bundle_sha256 = NULL WHERE slot = 'a'", "slots", 1, "bundle_sha256", "got NULL"),
    ("UPDATE slots SET state = 'zombie' WHERE slot = 'a'", "slots", 1, "state", "got 'zombie'"),
]


@pytest.mark.parametrize(("damage", "table", "row", "column", "words"), DAMAGES, ids=[d[0] for d in DAMAGES])
def test_a_wrong_value_is_one_line_naming_table_row_and_column_and_nothing_is_written(
    tmp_path, damage, table, row, column, words
):
    (tmp_path / "run").mkdir()
    ledger = make_ledger(tmp_path / "run" / "ledger.sqlite")
    with sqlite3.connect(ledger) as db:
        assert db.execute(damage).rowcount >= 1
    out = tmp_path / "out"
    ran = judge(ledger, out)
    assert ran.code == 2, ran.stderr
    assert "Traceback" not in ran.stderr
    (line,) = ran.stderr.strip().splitlines()
    assert line.startswith(f"apexctl: error: {ledger}: table {table}, row {row}: {column} must be "), line
    assert words in line, line
    # Nothing written: no JSON, no report or recycle folder, no temporary file or staging folder left behind.
    assert not out.exists() or not list(out.iterdir())
    assert sorted(p.name for p in (tmp_path / "run").iterdir() if not p.name.startswith("ledger.sqlite")) == []


def test_a_missing_column_with_rows_is_named(tmp_path):
    ledger = make_ledger(tmp_path / "ledger.sqlite")
    with sqlite3.connect(ledger) as db:
        db.execute("ALTER TABLE fills DROP COLUMN fee")
    ran = judge(ledger, tmp_path / "out")
    assert ran.code == 2, ran.stderr
    (line,) = ran.stderr.strip().splitlines()
    assert line == f"apexctl: error: {ledger}: table fills has rows but no fee column"


@pytest.mark.parametrize("value", ["x'32'", "2.5", "'two'"])
def test_a_version_that_is_no_whole_number_is_refused(tmp_path, value):
    ledger = make_ledger(tmp_path / "ledger.sqlite")
    with sqlite3.connect(ledger) as db:  # meta.value is TEXT: 2.5 is kept as the text '2.5'
        db.execute(f"UPDATE meta SET value = {value} WHERE key = 'version'")
    ran = judge(ledger, tmp_path / "out")
    assert ran.code == 2, ran.stderr
    (line,) = ran.stderr.strip().splitlines()
    assert line.startswith(f"apexctl: error: {ledger}: ledger version "), line
    assert line.endswith("is not a number"), line


def test_a_ledger_given_twice_is_a_usage_error(tmp_path):
    ledger = make_ledger(tmp_path / "ledger.sqlite")
    (tmp_path / "link.sqlite").symlink_to(ledger)
    for again, says in ((ledger, "ledger given twice;"), (tmp_path / "link.sqlite", f"the same file as {ledger}")):
        ran = judge(ledger, tmp_path / "out", str(again))
        assert ran.code == 2, ran.stderr
        (line,) = ran.stderr.strip().splitlines()
        assert line.startswith(f"apexctl: error: {again}: ledger given twice"), line
        assert says in line, line
        assert not (tmp_path / "out").exists()
