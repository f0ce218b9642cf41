"""`apexctl trade` end to end: six slots (two per symbol, two accounts) trade exported bundles on the local venue for a
bounded accelerated run; the ledger's fills equal the venue's executions per account, every slot's virtual position
sums to the account's position; kill -9 at random moments and restarts lose and duplicate nothing; bad input is one
line and exit 2 before anything connects."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from pybit import unified_trading

from apexctl import _core
from apexctl.forge.export import ExportConfig, export
from apexctl.forge.nets import ModelCard, build, save_model
from apexctl.forge.trade import find_binary
from tests.conftest import run_cli
from tests.support.venue_helpers import running_venue, unreachable_ready

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
# The execution environment's observation and actions: what the engine's IEL step feeds and reads.
_ENV = _core.ExecEnv("BTCUSDT", 1, parallel=False)
OBSERVATION = list(_ENV.observation_names)
IEL_ACTIONS = list(_ENV.action_names)
# Two trees per symbol that take positions often: the bar's close location and its opposite.
TREES = {
    "a": {"op": "mul", "args": [{"feature": "clv"}, {"const": 3.0}]},
    "b": {"op": "mul", "args": [{"feature": "clv"}, {"const": -3.0}]},
}
ACCOUNTS = [
    {"name": "main", "api_key": "mainKEY00000000001", "api_secret": "mainSECRET0000000000000000000000001"},
    {"name": "second", "api_key": "secondKEY000000002", "api_secret": "secondSECRET00000000000000000000002"},
]
CAPITAL = 3000.0
# Every fault the venue injects, often enough that a 30-second run meets each kind (the draws are seeded).
FAULTS = """seed = 3
[drop]
probability = 0.001
[skip]
every_s = 3.0
[duplicate]
probability = 0.002
[disconnect]
every_s = 6.0
[restart]
every_s = 8.0
[latency_spike]
every_s = 7.0
duration_ms = 300
[reject]
probability = 0.05
[unfilled]
probability = 0.05
[partial]
probability = 0.05
[execution_lag]
delay_ms = 200
[trade_lag]
delay_ms = 10
[rate_limit_burst]
every_s = 5.0
duration_ms = 800
"""


def make_bundle(root: Path, symbol: str, slot: str, seed: int) -> Path:
    tree = {"schema": "apex.gp_tree", "version": 1, "features": ["clv"], "root": TREES[slot]}
    hof = root / f"hof-{symbol}-{slot}"
    hof.mkdir(parents=True)
    (hof / "001.json").write_text(json.dumps(tree))
    entry = {"rank": 1, "file": "001.json", "size": 3, "height": 2, "train": {}, "held_out": {}}
    index = {"schema": "apex.hall_of_fame", "version": 1, "symbol": symbol, "features": ["clv"], "entries": [entry]}
    (hof / "index.json").write_text(json.dumps(index))
    card = ModelCard(
        "mlp", {"inputs": len(OBSERVATION), "hidden": [8], "outputs": 4}, OBSERVATION, "iel", outputs=IEL_ACTIONS
    )
    torch.manual_seed(seed)
    iel = root / f"iel-{symbol}-{slot}.pt"
    save_model(iel, build(card), card)
    output = root / "bundles" / symbol / slot
    export(ExportConfig(output=output, hall_of_fame=hof, iel=iel, symbol=symbol, slot=slot, command="test"))
    return output


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[tuple[str, str], Path]:
    root = tmp_path_factory.mktemp("trade-bundles")
    return {
        (symbol, slot): make_bundle(root, symbol, slot, seed)
        for seed, (symbol, slot) in enumerate((s, k) for s in SYMBOLS for k in ("a", "b"))
    }


def write_config(path: Path, bundles: dict, **engine: str) -> Path:
    lines = ['[venue]\nkind = "local"\n', '[engine]\nbar = "1m"\nstale_after = "5s"\nstatus_every = "500ms"']
    lines += [f'{k} = "{v}"' for k, v in engine.items()]
    lines.append("\n[rule]\nentry_threshold = 0.3\n")
    for i, ((symbol, slot), bundle) in enumerate(sorted(bundles.items())):
        account = ACCOUNTS[i % 2]["name"]
        lines.append(
            f'[[slot]]\nname = "{symbol[:3].lower()}-{slot}"\nsymbol = "{symbol}"\ncapital = {CAPITAL}\n'
            f'bundle = "{bundle}"\naccount = "{account}"\n'
        )
    path.write_text("\n".join(lines))
    return path


def venue_accounts() -> list[dict]:
    return [{**a, "balance": str(CAPITAL * 3)} for a in ACCOUNTS]


def http(venue: dict, account: dict) -> unified_trading.HTTP:
    session = unified_trading.HTTP(testnet=False, api_key=account["api_key"], api_secret=account["api_secret"])
    session.endpoint = venue["rest"]
    return session


def venue_executions(session: unified_trading.HTTP) -> dict[str, dict]:
    found: dict[str, dict] = {}
    cursor = None
    for _ in range(200):
        page = session.get_executions(category="linear", limit=100, **({"cursor": cursor} if cursor else {}))["result"]
        for item in page["list"]:
            if item.get("execType", "Trade") == "Trade":
                found[item["execId"]] = item
        cursor = page.get("nextPageCursor")
        if not cursor or not page["list"]:
            break
    return found


def venue_state(session: unified_trading.HTTP, symbol: str) -> tuple[set[str], float]:
    """The ids of an account's executions and its signed position on `symbol`, read as one state: the position
    counts when the executions listed just before and just after it are the same."""
    before = set(venue_executions(session))
    for _ in range(20):
        positions = session.get_positions(category="linear", symbol=symbol)["result"]["list"]
        after = set(venue_executions(session))
        if after == before:
            return after, sum(float(p["size"]) * (-1 if p["side"] == "Sell" else 1) for p in positions)
        before = after
    raise AssertionError(f"the venue's executions kept changing while its {symbol} position was read")


def check_books(ledger: Path, venue: dict) -> dict:
    """Ledger fills == venue executions per account; sum of slot positions == account position per symbol."""
    db = sqlite3.connect(ledger)
    slots = {name: (symbol, account) for name, symbol, account in db.execute("SELECT slot, symbol, account FROM slots")}
    fills = list(db.execute("SELECT exec_id, slot, side, qty FROM fills"))
    links = [row[0] for row in db.execute("SELECT order_link_id FROM orders")]
    assert len(links) == len(set(links))
    totals = {"fills": len(fills), "orders": len(links)}
    for account in ACCOUNTS:
        session = http(venue, account)
        executions = venue_executions(session)
        mine = {e for e, slot, _, _ in fills if slots[slot][1] == account["name"]}
        assert mine == set(executions), f"{account['name']}: ledger {len(mine)} vs venue {len(executions)} fills"
        positions = session.get_positions(category="linear", settleCoin="USDT")["result"]["list"]
        for symbol in SYMBOLS:
            venue_qty = sum(
                float(p["size"]) * (-1 if p["side"] == "Sell" else 1) for p in positions if p["symbol"] == symbol
            )
            slot_qty = sum(
                float(qty) * (1 if side == "Buy" else -1)
                for _, slot, side, qty in fills
                if slots[slot] == (symbol, account["name"])
            )
            assert abs(venue_qty - slot_qty) < 1e-6, f"{account['name']} {symbol}: {venue_qty} vs slots {slot_qty}"
    db.close()
    return totals


@pytest.mark.slow
def test_six_slots_trade_and_the_ledger_equals_the_venue(bundles, tmp_path):
    config = write_config(tmp_path / "nexus.toml", bundles)
    with running_venue(tmp_path, "--speed", "60", "--seed", "4", accounts=venue_accounts()) as venue:
        ready = tmp_path / "ready.json"
        out = tmp_path / "run"
        result = run_cli(
            "trade", "--config", str(config), "--venue-ready", str(ready), "--out", str(out), "--duration", "25s"
        )
        assert result.returncode == 0, result.stderr.decode()
        assert not (out / "nexus.pid").exists()
        status = json.loads((out / "status.json").read_text())
        assert status["state"] == "stopped"
        assert status["bars"] >= 3 * 15
        # Each staged order's wait in the queue is one part of its frame-to-staged latency.
        staged, queued = status["decision_us"], status["queue_us"]
        assert queued["count"] == staged["count"] > 0
        assert queued["max"] <= staged["max"]
        totals = check_books(out / "ledger.sqlite", venue)
        assert totals["fills"] > 0, totals
        db = sqlite3.connect(out / "ledger.sqlite")
        decisions = dict(db.execute("SELECT slot, COUNT(*) FROM decisions GROUP BY slot"))
        assert len(decisions) == 6
        assert min(decisions.values()) >= 15
        # Every order's intent was written before it was acknowledged (its first event is the intent).
        first = db.execute(
            "SELECT COUNT(*) FROM orders o WHERE (SELECT event FROM order_events e WHERE e.order_link_id = "
            "o.order_link_id ORDER BY e.rowid LIMIT 1) != 'intent'"
        ).fetchone()[0]
        assert first == 0


@pytest.mark.slow
def test_kill_9_and_restart_lose_and_duplicate_nothing(bundles, tmp_path):
    iterations = int(os.environ.get("NEXUS_CRASHES", "20"))
    config = write_config(tmp_path / "nexus.toml", bundles)
    rng = random.Random(12)
    binary = str(find_binary())
    env = {**os.environ}
    from apexctl import _ort

    _ort.use_wheel_library()
    env.update(os.environ)
    with running_venue(tmp_path, "--speed", "60", "--seed", "5", accounts=venue_accounts()) as venue:
        out = tmp_path / "run"
        args = [binary, "--config", str(config), "--venue-ready", str(tmp_path / "ready.json"), "--out", str(out)]
        for _ in range(iterations):
            engine = subprocess.Popen(args, stderr=subprocess.DEVNULL, env=env)
            time.sleep(rng.uniform(1.5, 5.0))
            engine.send_signal(signal.SIGKILL)
            engine.wait()
        # The last run stops cleanly after reconciling what the killed ones left.
        result = subprocess.run([*args, "--duration", "6s"], capture_output=True, env=env, check=False)
        assert result.returncode == 0, result.stderr.decode()[-2000:]
        totals = check_books(out / "ledger.sqlite", venue)
        assert totals["fills"] > 0
        db = sqlite3.connect(out / "ledger.sqlite")
        runs = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        assert runs == iterations + 1


def intervals(events: list[tuple[str, str, int]], down: str, up: str) -> dict[str, list[tuple[int, int]]]:
    """Per key (the part of `detail` before ':'), the local-time spans from a `down` event to the next `up` one."""
    spans: dict[str, list[tuple[int, int]]] = {}
    opened: dict[str, int] = {}
    for kind, detail, ts in events:
        key = detail.split(":")[0]
        if kind == down:
            opened.setdefault(key, ts)
        elif kind == up and key in opened:
            spans.setdefault(key, []).append((opened.pop(key), ts))
    for key, start in opened.items():
        spans.setdefault(key, []).append((start, 2**63))
    return spans


@pytest.mark.slow
def test_under_the_venues_faults_no_order_is_sent_blind_and_the_engine_recovers(bundles, tmp_path):
    faults = tmp_path / "faults.toml"
    faults.write_text(FAULTS)
    config = write_config(tmp_path / "nexus.toml", bundles)
    args = ("--speed", "60", "--seed", "6", "--faults", str(faults))
    with running_venue(tmp_path, *args, accounts=venue_accounts()) as venue:
        out = tmp_path / "run"
        ready = str(tmp_path / "ready.json")
        result = run_cli(
            "trade", "--config", str(config), "--venue-ready", ready, "--out", str(out), "--duration", "30s"
        )
        assert result.returncode == 0, result.stderr.decode()
        log = [json.loads(line) for line in venue["fault_log"].read_text().splitlines()]
        assert {"skip", "disconnect", "restart", "reject", "latency_spike", "rate_limit_burst"} <= {
            f["fault"] for f in log
        }
        # Whatever the faults did, the ledger's fills are the venue's executions and the slots sum to the accounts.
        totals = check_books(out / "ledger.sqlite", venue)
        assert totals["orders"] > 0
    db = sqlite3.connect(out / "ledger.sqlite")
    events = list(db.execute("SELECT kind, detail, ts_local FROM events ORDER BY id"))
    unsynced = intervals(events, "book_unsynced", "book_synced")
    private_down = intervals(events, "private_down", "private_up")
    accounts = dict(db.execute("SELECT slot, account FROM slots"))
    # Every book-breaking fault on the engine's topic (a skipped update id) was noticed within 2 s of its injection.
    skips = [f for f in log if f["fault"] == "skip" and f["topic"].startswith("orderbook.50.")]
    assert skips, "the run met no skip on the engine's book topic; raise skip's rate"
    for fault in skips:
        symbol, t_ns = fault["topic"].split(".")[-1], fault["t_ms"] * 1_000_000
        assert any(a <= t_ns + 2_000_000_000 and b >= t_ns for a, b in unsynced.get(symbol, [])), fault
    # No order left while its symbol's book or its account's private stream was down.
    orders = list(db.execute("SELECT order_link_id, slot, symbol, ts_intent_local, book_update_id FROM orders"))
    for link, slot, symbol, ts, update_id in orders:
        assert not any(a <= ts < b for a, b in unsynced.get(symbol, [])), (link, "book unsynced")
        assert not any(a <= ts < b for a, b in private_down.get(accounts[slot], [])), (link, "private down")
        assert update_id is not None, link
        assert update_id > 0, link
    # And it recovered: every symbol's slots kept deciding to the end, and the run stopped cleanly.
    last_bar = dict(db.execute("SELECT symbol, MAX(bar_ts) FROM decisions GROUP BY symbol"))
    first_bar = dict(db.execute("SELECT symbol, MIN(bar_ts) FROM decisions GROUP BY symbol"))
    for symbol in SYMBOLS:
        assert (last_bar[symbol] - first_bar[symbol]) / 60e9 >= 15, symbol
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "stopped"


def run_recorded(bundles: dict, tmp_path: Path, faults: str | None, **engine: str) -> Path:
    """The BTC slots trading 12 s at 60x with the public stream recorded, the venue injecting `faults` (a faults
    file's text) when given: the run's folder."""
    btc = {key: path for key, path in bundles.items() if key[0] == "BTCUSDT"}
    config = write_config(tmp_path / "nexus.toml", btc, record_public="true", **engine)
    config.write_text(config.read_text().replace('record_public = "true"', "record_public = true"))
    args = ["--speed", "60", "--seed", "8"]
    if faults is not None:
        (tmp_path / "faults.toml").write_text(faults)
        args += ["--faults", str(tmp_path / "faults.toml")]
    with running_venue(tmp_path, *args, accounts=venue_accounts()):
        out = tmp_path / "run"
        ready = str(tmp_path / "ready.json")
        result = run_cli(
            "trade", "--config", str(config), "--venue-ready", ready, "--out", str(out), "--duration", "12s"
        )
        assert result.returncode == 0, result.stderr.decode()
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    ("faults", "engine"),
    [
        (None, {}),
        ("[trade_lag]\ndelay_ms = 50\n", {"reorder_window": "8s"}),
        ("seed = 3\n[drop]\nprobability = 0.01\n", {}),
    ],
    ids=["in-order", "trades-3s-behind-the-book-within-the-window", "deltas-dropped"],
)
def test_the_engines_feature_rows_equal_apexctl_features_on_its_recording(bundles, tmp_path, faults, engine):
    """The public frames the engine received, recorded as they came, give through `apexctl fetch` + `apexctl
    features` exactly the feature rows the engine booked for each closed bar (bit for bit, every column), also when
    the trade stream runs behind the book stream by less than the reorder window, and when the venue drops book
    deltas (the engine's books wait for the snapshot its resubscription brings, as the batch features do)."""
    out = run_recorded(bundles, tmp_path, faults, **engine)
    recording = out / "public.jsonl"
    for kind in ("book", "trades"):
        fetched = run_cli("fetch", str(recording), "--kind", kind, "-o", str(tmp_path / f"{kind}.parquet"))
        assert fetched.returncode == 0, fetched.stderr.decode()
    bars = tmp_path / "bars.parquet"
    made = run_cli(
        "features", str(tmp_path / "trades.parquet"), str(tmp_path / "book.parquet"), "--grain", "1m", "-o", str(bars)
    )
    assert made.returncode == 0, made.stderr.decode()
    batch = pl.read_parquet(bars)
    db = sqlite3.connect(out / "ledger.sqlite")
    late = list(db.execute("SELECT detail FROM events WHERE kind = 'late_public'"))
    assert not late, f"the engine fed events after their bar closed: {late}"
    resynced = list(db.execute("SELECT detail FROM events WHERE kind = 'features_resynced'"))
    assert not resynced, f"the engine's event channel dropped book messages: {resynced}"
    if faults and "[drop]" in faults:
        gaps = db.execute("SELECT COUNT(*) FROM events WHERE kind = 'book_unsynced'").fetchone()[0]
        assert gaps > 0, "the drop fault made no gap in the engine's book stream"
    names = json.loads(db.execute("SELECT value FROM meta WHERE key = 'bar_columns.BTCUSDT'").fetchone()[0])
    live = list(db.execute("SELECT ts_exchange, features FROM bars WHERE symbol = 'BTCUSDT' ORDER BY ts_exchange"))
    assert len(live) >= 6, len(live)
    ts_column = batch["ts"].cast(pl.Int64) if batch["ts"].dtype != pl.Int64 else batch["ts"]
    by_ts = {int(ts): i for i, ts in enumerate(ts_column.to_list())}
    compared = 0
    for ts, features in live:
        row = by_ts.get(ts)
        assert row is not None, f"bar {ts} is not in the batch features"
        for name, value in zip(names, json.loads(features), strict=True):
            expected = batch[name][row]
            expected = None if expected is None or not np.isfinite(expected) else float(expected)
            assert value == expected, (ts, name, value, expected)
            compared += 1
    assert compared >= 6 * 20


@pytest.mark.slow
def test_trades_further_behind_than_the_reorder_window_are_reported_late(bundles, tmp_path):
    """Trades 6 s of exchange time behind the book stream, against the default 1 s window: their bars have closed when
    they come, and the ledger says so (a `late_public` event naming the window) rather than silently differing from
    `apexctl features` on the recording."""
    out = run_recorded(bundles, tmp_path, "[trade_lag]\ndelay_ms = 100\n")
    db = sqlite3.connect(out / "ledger.sqlite")
    late = [detail for (detail,) in db.execute("SELECT detail FROM events WHERE kind = 'late_public'")]
    assert late, "no late_public event"
    assert all(d.startswith("BTCUSDT: ") and "engine.reorder_window 1000 ms" in d for d in late), late
    assert db.execute("SELECT COUNT(*) FROM bars WHERE symbol = 'BTCUSDT'").fetchone()[0] >= 6


def test_bad_input_is_one_line_and_exit_2_before_any_connection(bundles, tmp_path):
    good = write_config(tmp_path / "good.toml", bundles)
    ready = unreachable_ready(tmp_path / "ready.json")
    tampered = tmp_path / "tampered"
    source = bundles[("BTCUSDT", "a")]
    tampered.mkdir()
    for f in source.iterdir():
        (tampered / f.name).write_bytes(f.read_bytes())
    (tampered / "signal.gp.json").write_text((tampered / "signal.gp.json").read_text().replace("3.0", "4.0"))
    text = good.read_text()
    cases = {
        "field": text.replace("stale_after", "stale_aftr"),
        "protection window": text.replace('stale_after = "5s"', 'stale_after = "5s"\ndisconnect_protection = "2s"'),
        "missing bundle": text.replace(str(source), str(tmp_path / "nowhere")),
        "tampered": text.replace(str(source), str(tampered)),
        "keys": text,
    }
    for name, body in cases.items():
        config = tmp_path / f"{name.replace(' ', '-')}.toml"
        config.write_text(body)
        out = tmp_path / f"out-{name.replace(' ', '-')}"
        result = run_cli("trade", "--config", str(config), "--venue-ready", str(ready), "--out", str(out))
        stderr = result.stderr.decode().strip()
        assert result.returncode == 2, (name, stderr)
        assert len(stderr.splitlines()) == 1, (name, stderr)
        assert "Traceback" not in stderr, (name, stderr)
        assert not (out / "ledger.sqlite").exists(), name
    refused = run_cli("trade", "--config", str(good), "--venue", "mainnet", "--out", str(tmp_path / "m"))
    assert refused.returncode == 2
    assert "mainnet" in refused.stderr.decode()
    assert sys.executable
