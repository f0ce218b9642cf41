"""A model that fails to run, end to end on the local venue: a champion whose signal or IEL policy fails falls back to
the champion it replaced (ledger rows, and the fallback decides the bar or picks the order's tactic: the order still
leaves); without a fallback the engine stops with one line naming the slot and model; a challenger whose IEL policy
fails is retired as one whose signal fails. The failing models pass the engine's bundle check (sample rows in
[-1, 1]) and fail on live rows (see tests/support/failing_bundle.py)."""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.e2e.test_trade_pitcrew import ACCOUNTS, CAPITAL, CHURN, FLAT, config_text
from tests.support.engine_run import running_engine, stop, wait_for_count
from tests.support.failing_bundle import gp_entry, onnx_bytes, onnx_entry, publish_bundle
from tests.support.venue_helpers import running_venue

#: Bars a promoted challenger's sequence signal stays NaN (flat) before its model first runs: it must be promoted
#: before then (a flat challenger beats a churning champion in 4 to 7 bars at MIN_DECISIONS in runs so far).
WINDOW = 24
MIN_DECISIONS = 3
PITCREW = f'min_decisions = {MIN_DECISIONS}\nalpha = 0.05\nsettle = "200ms"\n'
#: Bars per second of the venue (a 1m bar in 0.5 s).
SPEED = "120"
#: The venue's accounts, funded for the slots' capital.
FUNDED = [{**a, "balance": str(CAPITAL * 3)} for a in ACCOUNTS]


def signal(*, value: float, fails: bool, window: int = WINDOW) -> tuple[dict, bytes]:
    """An ONNX signal of `value` (NaN, so flat, before `window` rows) that fails on live rows when `fails`."""
    return onnx_entry("signal", window=window, outputs_=1), onnx_bytes(
        window=window, outputs_=1, value=value, fails=fails
    )


def failing_iel() -> tuple[dict, bytes]:
    """An IEL policy that fails on every live entry."""
    return onnx_entry("iel", window=1, outputs_=4), onnx_bytes(window=1, outputs_=4, value=0.0, fails=True)


def trade_command(tmp_path: Path, config: Path, out: Path, duration: str) -> list[str]:
    command = [sys.executable, "-m", "apexctl", "trade", "--config", str(config)]
    return [*command, "--venue-ready", str(tmp_path / "ready.json"), "--out", str(out), "--duration", duration]


def write_config(tmp_path: Path, bundles: dict[str, Path]) -> Path:
    config = tmp_path / "nexus.toml"
    config.write_text(config_text(bundles, PITCREW))
    return config


@contextlib.contextmanager
def trading(tmp_path: Path, bundles: dict[str, Path], *, seed: str) -> Iterator[Path]:
    """The engine trading `bundles` on the local venue, from its second decision on: its ledger. The block waits for
    what it needs; the engine is stopped (SIGTERM, its normal stop) when the block ends, or at a 120 s cap."""
    out = tmp_path / "run"
    ledger = out / "ledger.sqlite"
    with (
        running_venue(tmp_path, "--speed", SPEED, "--seed", seed, accounts=FUNDED),
        running_engine(trade_command(tmp_path, write_config(tmp_path, bundles), out, "120s")) as engine,
    ):
        wait_for_count(ledger, "SELECT COUNT(*) FROM decisions", count=2)
        yield ledger
        stop(engine)


@pytest.mark.slow
def test_a_champion_whose_signal_or_iel_fails_falls_back_to_the_champion_it_replaced(tmp_path):
    bundles = {"btc-a": tmp_path / "bundles" / "BTCUSDT" / "a", "btc-b": tmp_path / "bundles" / "BTCUSDT" / "b"}
    churner = {slot: publish_bundle(folder, [gp_entry(CHURN)], tag=slot) for slot, folder in bundles.items()}
    with trading(tmp_path, bundles, seed="11") as ledger:
        # btc-a: flat until its signal first runs, then it fails. btc-b: flat, then always long, and its IEL
        # fails on its first entry.
        failing = {
            "btc-a": publish_bundle(bundles["btc-a"], [signal(value=0.0, fails=True)], tag="a-fails"),
            "btc-b": publish_bundle(bundles["btc-b"], [signal(value=1.0, fails=False), failing_iel()], tag="b"),
        }
        wait_for_count(ledger, "SELECT COUNT(*) FROM events WHERE kind = 'model_fallback'", count=2, seconds=60)
        # And the fallback has decided a bar after the failed model's last one, in both slots.
        after = (
            "SELECT COUNT(DISTINCT d.slot) FROM decisions d JOIN models m ON m.model_id = d.model_id "
            "AND m.slot = d.slot WHERE m.role = 'champion' AND d.decision_id > (SELECT MAX(f.decision_id) "
            "FROM decisions f JOIN models r ON r.model_id = f.model_id AND r.slot = f.slot WHERE r.role = 'retired' "
            "AND f.slot = d.slot)"
        )
        wait_for_count(ledger, after, count=2, seconds=30)
    db = sqlite3.connect(ledger)
    fallbacks = {d.split(":")[0]: d for (d,) in db.execute("SELECT detail FROM events WHERE kind = 'model_fallback'")}
    roles = db.execute("SELECT slot, model_id, role, detail FROM models").fetchall()
    assert set(fallbacks) == set(bundles), (fallbacks, roles)
    for slot in bundles:
        failed, fallback = failing[slot], churner[slot]
        detail = fallbacks[slot]
        assert detail.startswith(f"{slot}: {failed[:12]} failed ("), detail
        assert detail.endswith(f"{fallback[:12]} decides"), detail
        roles = dict(db.execute("SELECT model_id, role FROM models WHERE slot = ?", (slot,)).fetchall())
        assert roles == {failed: "retired", fallback: "champion"}, (slot, roles)
        (why,) = db.execute("SELECT detail FROM models WHERE model_id = ?", (failed,)).fetchone()
        assert why.startswith("failed to run: "), why
        swaps = db.execute("SELECT from_model, to_model, reason FROM swaps WHERE slot = ? ORDER BY id", (slot,))
        swaps = swaps.fetchall()
        assert [(f, t) for f, t, _ in swaps] == [(fallback, failed), (failed, fallback)], (slot, swaps)
        assert swaps[1][2] == "fallback", swaps
        # The fallback decides from the failing bar on.
        query = "SELECT model_id FROM decisions WHERE slot = ? ORDER BY decision_id"
        models = [m for (m,) in db.execute(query, (slot,))]
        last_failed = max(i for i, m in enumerate(models) if m == failed)
        assert set(models[last_failed + 1 :]) == {fallback}, (slot, models)
        assert len(models) > last_failed + 1, "the fallback decided bars after the fall back"
    # btc-a's signal failed: the fallback decided that bar (the failed model never decided a non-flat bar).
    assert "model:" in fallbacks["btc-a"], fallbacks
    kinds = db.execute("SELECT DISTINCT kind FROM decisions WHERE model_id = ?", (failing["btc-a"],)).fetchall()
    assert not {kind for (kind,) in kinds} & {"enter", "reverse"}, kinds
    # btc-b's IEL failed on the entry its signal decided: the fallback (no IEL) picked the tactic and the order left.
    assert "iel:" in fallbacks["btc-b"], fallbacks
    # (When the churner's position was still open at the swap, the same decision also closed it: an exit order, always
    # aggressive, which no IEL policy picks.)
    orders = db.execute(
        "SELECT o.purpose, o.tactic, o.order_id FROM orders o JOIN decisions d ON d.decision_id = o.decision_id "
        "WHERE d.model_id = ?",
        (failing["btc-b"],),
    ).fetchall()
    entries = [(tactic, order_id) for purpose, tactic, order_id in orders if purpose == "entry"]
    assert len(entries) == 1, orders
    tactic, order_id = entries[0]
    assert tactic == "aggressive", orders
    assert order_id, "the venue acknowledged the order"


@pytest.mark.slow
def test_a_challenger_whose_iel_fails_is_retired(tmp_path):
    folder = tmp_path / "bundles" / "BTCUSDT" / "a"
    champion = publish_bundle(folder, [gp_entry(FLAT)], tag="flat")
    with trading(tmp_path, {"btc-a": folder}, seed="5") as ledger:
        # Long on every bar: its first entry runs its IEL policy, which fails.
        challenger = publish_bundle(folder, [gp_entry(CHURN), failing_iel()], tag="churn-iel")
        wait_for_count(ledger, "SELECT COUNT(*) FROM models WHERE role = 'retired'", seconds=30)
    db = sqlite3.connect(ledger)
    roles = {m: (r, d) for m, r, d in db.execute("SELECT model_id, role, detail FROM models WHERE slot = 'btc-a'")}
    assert roles[champion][0] == "champion", roles
    role, detail = roles[challenger]
    assert role == "retired", roles
    assert detail.startswith("failed to run: iel: "), detail
    assert not db.execute("SELECT 1 FROM swaps").fetchall()
    assert not db.execute("SELECT 1 FROM events WHERE kind = 'model_fallback'").fetchall()


@pytest.mark.slow
@pytest.mark.parametrize("failing", ["signal", "iel"])
def test_a_champion_that_fails_without_a_fallback_stops_the_engine_with_one_line(tmp_path, failing):
    folder = tmp_path / "bundles" / "BTCUSDT" / "a"
    # Its signal fails on the first bar, or (always long) its IEL policy on the first entry.
    models = [signal(value=1.0, fails=True, window=1)] if failing == "signal" else [gp_entry(CHURN), failing_iel()]
    champion = publish_bundle(folder, models, tag=failing)
    config = write_config(tmp_path, {"btc-a": folder})
    with running_venue(tmp_path, "--speed", SPEED, "--seed", "5", accounts=FUNDED):
        # A long run: stopping well before its end is stopping at the failure, however slow the machine starts it.
        args = trade_command(tmp_path, config, tmp_path / "run", "60s")[3:]
        started = time.monotonic()
        result = run_cli(*args)
    stderr = result.stderr.decode().strip()
    assert result.returncode == 1, stderr
    assert time.monotonic() - started < 45, "it stopped at the failure, not at the end of the run"
    assert len(stderr.splitlines()) == 1, stderr
    assert f"slot btc-a: model {champion[:12]} failed to run: " in stderr, stderr
    assert ("model: " if failing == "signal" else "iel: ") in stderr, stderr
    assert "Traceback" not in stderr, stderr
