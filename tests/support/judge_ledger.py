"""What the judge's hand-written version-2 ledgers share: the market-time unit, model ids, and the tables every
ledger starts with (meta, runs, slots), declared with their types so SQLite's type affinity applies as in a real
ledger."""

from __future__ import annotations

MINUTE = 60_000_000_000
SHA_A, SHA_B, SHA_C = "aa" * 32, "bb" * 32, "cc" * 32

V2_HEAD = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
INSERT INTO meta VALUES ('schema', 'apex.ledger'), ('version', '2');
CREATE TABLE runs (run_id INTEGER PRIMARY KEY, venue TEXT, started_local INTEGER, ended_local INTEGER, exit TEXT);
CREATE TABLE slots (slot TEXT, symbol TEXT, account TEXT, capital REAL, bundle TEXT, bundle_sha256 TEXT, model TEXT,
    state TEXT);
"""
