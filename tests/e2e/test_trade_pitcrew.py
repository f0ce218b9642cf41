"""The Pit Crew end to end on the local venue: while `apexctl trade` runs, bundles are published into the slots' folders
as `apexctl export` publishes them. A tampered one is rejected and replaces nothing; a challenger that holds flat is
promoted over a champion that pays spread and fees on every bar; the reverse pairing is never promoted; and no
decision or order in the ledger mixes two models. Bad `[pitcrew]` values are one line and exit 2."""

from __future__ import annotations

import hashlib
import itertools
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from apexctl.forge import outputs
from apexctl.forge.export import ExportConfig, export
from tests.conftest import run_cli
from tests.support.engine_run import running_engine, stop, wait_for_count
from tests.support.venue_helpers import running_venue, unreachable_ready

# Always long: a position on every bar that the tight bracket below closes within seconds (entry and exit at the touch,
# taker fee twice), re-entered at the next bar: a certain loss of spread and fees on nearly every bar.
CHURN = {"op": "add", "args": [{"op": "mul", "args": [{"feature": "clv"}, {"const": 0.0}]}, {"const": 1.0}]}
# Always flat (signal 0): equity never moves.
FLAT = {"op": "mul", "args": [{"feature": "clv"}, {"const": 0.0}]}
# Any other tree (a manifest not seen before) for the tampered bundle.
OTHER = {"op": "mul", "args": [{"feature": "clv"}, {"const": 0.5}]}
ACCOUNTS = [
    {"name": "main", "api_key": "mainKEY00000000001", "api_secret": "mainSECRET0000000000000000000000001"},
    {"name": "second", "api_key": "secondKEY000000002", "api_secret": "secondSECRET00000000000000000000002"},
]
CAPITAL = 3000.0
MIN_DECISIONS = 10


def hall_of_fame(root: Path, name: str, tree: dict) -> Path:
    hof = root / f"hof-{name}"
    hof.mkdir(parents=True)
    document = {"schema": "apex.gp_tree", "version": 1, "features": ["clv"], "root": tree}
    (hof / "001.json").write_text(json.dumps(document))
    entry = {"rank": 1, "file": "001.json", "size": 3, "height": 2, "train": {}, "held_out": {}}
    index = {"schema": "apex.hall_of_fame", "version": 1, "symbol": "BTCUSDT", "features": ["clv"], "entries": [entry]}
    (hof / "index.json").write_text(json.dumps(index))
    return hof


def publish(root: Path, folder: Path, name: str, tree: dict) -> str:
    """Exports `tree` over the slot's folder as a user would (staging folder, atomic rename); its model id."""
    export(
        ExportConfig(
            output=folder,
            hall_of_fame=hall_of_fame(root, name, tree),
            symbol="BTCUSDT",
            slot=folder.name,
            command="test",
            force=True,
        )
    )
    return hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()


def config_text(bundles: dict[str, Path], pitcrew: str | None = None) -> str:
    if pitcrew is None:
        pitcrew = f'min_decisions = {MIN_DECISIONS}\nalpha = 0.05\nsettle = "200ms"\n'

    lines = [
        '[venue]\nkind = "local"\n',
        '[engine]\nbar = "1m"\nstale_after = "5s"\nstatus_every = "500ms"\n',
        # The slot's positions are worth about 5,000 USDT: with the default order cap (5,000) a close after a rise
        # would be cut short of the position, which the tests of what a close leaves open do not expect.
        "[limits]\nmax_leverage = 5\nmax_orders_per_minute = 1000\nmax_order_notional = 100000\n",
        # A 2 bps stop (6 bps take) closes each position within seconds; a steady win rate keeps the churner sized.
        "[rule]\nentry_threshold = 0.3\nstop_atr_mult = 0\nstop_min_bps = 2\nprior_win_rate = 0.5\n"
        "prior_trades = 100000\nmin_fraction = 0.05\n",
        f"[pitcrew]\n{pitcrew}",
    ]
    for i, (slot, bundle) in enumerate(bundles.items()):
        lines.append(
            f'[[slot]]\nname = "{slot}"\nsymbol = "BTCUSDT"\ncapital = {CAPITAL}\nbundle = "{bundle}"\n'
            f'account = "{ACCOUNTS[i]["name"]}"\n'
        )
    return "\n".join(lines)


def champion_at(swaps: list[tuple], initial: str, ts_local: int) -> str:
    """The slot's champion at wall time `ts_local` by its swaps (from, to, ts_local), oldest first."""
    champion = initial
    for _, to_model, at in swaps:
        if at <= ts_local:
            champion = to_model
    return champion


@pytest.mark.slow
def test_the_pit_crew_rejects_a_tampered_bundle_promotes_a_better_challenger_and_never_a_worse(tmp_path):
    root = tmp_path / "forge"
    bundles = {"btc-a": tmp_path / "bundles" / "BTCUSDT" / "a", "btc-b": tmp_path / "bundles" / "BTCUSDT" / "b"}
    churner = publish(root, bundles["btc-a"], "a0", CHURN)
    flat = publish(root, bundles["btc-b"], "b0", FLAT)
    config = tmp_path / "nexus.toml"
    config.write_text(config_text(bundles))
    accounts = [{**a, "balance": str(CAPITAL * 3)} for a in ACCOUNTS]
    with running_venue(tmp_path, "--speed", "60", "--seed", "11", accounts=accounts):
        out = tmp_path / "run"
        command = [sys.executable, "-m", "apexctl", "trade", "--config", str(config)]
        # The duration is a cap: the block stops the engine once the ledger holds what the assertions need, so a
        # loaded machine (bars decided later in wall time) takes longer instead of failing.
        command += ["--venue-ready", str(tmp_path / "ready.json"), "--out", str(out), "--duration", "120s"]
        with running_engine(command) as engine:
            ledger = out / "ledger.sqlite"
            # The churning champion has traded before any challenger arrives.
            churned = "SELECT COUNT(*) FROM orders WHERE slot = 'btc-a'"
            wait_for_count(ledger, churned, count=MIN_DECISIONS, seconds=60)
            # (a) A bundle changed after its export, published into btc-a: its hash check fails.
            side = tmp_path / "side" / "a"
            other = publish(root, side, "tampered", OTHER)
            gp = side / "signal.gp.json"
            gp.write_text(gp.read_text().replace("0.5", "0.7"))
            outputs.publish(side, bundles["btc-a"], replace=True)
            wait_for_count(ledger, "SELECT COUNT(*) FROM events WHERE kind = 'bundle_rejected'", seconds=20)
            # (b) A flat challenger against the churning champion, and the reverse pairing on btc-b.
            better = publish(root, bundles["btc-a"], "a1", FLAT)
            worse = publish(root, bundles["btc-b"], "b1", CHURN)
            wait_for_count(ledger, "SELECT COUNT(*) FROM swaps WHERE slot = 'btc-a'", seconds=60)
            benched = "SELECT COALESCE(MAX(decisions), 0) FROM shadow_equity WHERE slot = 'btc-b' AND model_id = ?"
            wait_for_count(ledger, benched, worse, count=MIN_DECISIONS + 3, seconds=60)
            stop(engine)
    db = sqlite3.connect(out / "ledger.sqlite")
    rejected = [d for (d,) in db.execute("SELECT detail FROM events WHERE kind = 'bundle_rejected'")]
    assert len(rejected) == 1, rejected
    assert rejected[0].startswith("btc-a "), rejected
    assert "was changed" in rejected[0], rejected
    roles = {(slot, model): role for slot, model, role in db.execute("SELECT slot, model_id, role FROM models")}
    assert ("btc-a", other) not in roles, "the tampered bundle replaced nothing"
    assert not db.execute("SELECT 1 FROM decisions WHERE model_id = ?", (other,)).fetchall()
    swaps = {
        slot: list(db.execute("SELECT from_model, to_model, ts_local FROM swaps WHERE slot = ? ORDER BY id", (slot,)))
        for slot in bundles
    }
    assert [(f, t) for f, t, _ in swaps["btc-a"]] == [(churner, better)], swaps
    assert roles[("btc-a", better)] == "champion", roles
    assert roles[("btc-a", churner)] == "fallback", roles
    reason, position = db.execute("SELECT reason, position FROM swaps WHERE slot = 'btc-a'").fetchone()
    assert position in ("handed_over", "flat"), position
    assert "t=" in reason, reason
    # The worse challenger had its chance (at least MIN_DECISIONS bars on the bench) and stayed a challenger.
    assert swaps["btc-b"] == [], swaps
    assert roles[("btc-b", worse)] == "challenger", roles
    assert roles[("btc-b", flat)] == "champion", roles
    shadow = db.execute("SELECT MAX(decisions) FROM shadow_equity WHERE slot = 'btc-b' AND model_id = ?", (worse,))
    assert shadow.fetchone()[0] >= MIN_DECISIONS + 3
    assert db.execute("SELECT COUNT(*) FROM shadow_equity WHERE model_id = ?", (better,)).fetchone()[0] >= MIN_DECISIONS
    # No decision mixes two models: per slot the deciding model changes only across a swap between the two
    # decisions, and every order of a decision was staged while that decision's model was the champion.
    initial = {"btc-a": churner, "btc-b": flat}
    for slot in bundles:
        query = "SELECT decision_id, model_id, ts_local FROM decisions WHERE slot = ? ORDER BY decision_id"
        rows = list(db.execute(query, (slot,)))
        assert rows
        assert rows[0][1] == initial[slot]
        for (_, model, at), (_, next_model, next_at) in itertools.pairwise(rows):
            if next_model != model:
                assert any(f == model and t == next_model and at < ts < next_at for f, t, ts in swaps[slot]), (slot, at)
        for model, at in ((m, ts) for _, m, ts in rows):
            assert model == champion_at(swaps[slot], initial[slot], at), (slot, at)
        orders = db.execute(
            "SELECT d.model_id, o.ts_intent_local FROM orders o JOIN decisions d ON d.decision_id = o.decision_id "
            "WHERE o.slot = ?",
            (slot,),
        ).fetchall()
        for model, at in orders:
            assert model == champion_at(swaps[slot], initial[slot], at), (slot, at)
        if slot == "btc-a":
            assert len(orders) >= MIN_DECISIONS, "the churning champion traded"


@pytest.mark.slow
def test_a_restart_keeps_the_ledgers_champion_and_benches_the_challenger_left_in_the_folder(tmp_path):
    root = tmp_path / "forge"
    folder = tmp_path / "bundles" / "BTCUSDT" / "a"
    champion = publish(root, folder, "a0", FLAT)
    config = tmp_path / "nexus.toml"
    # No promotion within the runs: the challenger stays a challenger.
    config.write_text(config_text({"btc-a": folder}, 'min_decisions = 100000\nsettle = "200ms"\n'))
    accounts = [{**a, "balance": str(CAPITAL * 3)} for a in ACCOUNTS]
    out = tmp_path / "run"
    ledger = out / "ledger.sqlite"
    with running_venue(tmp_path, "--speed", "60", "--seed", "5", accounts=accounts):
        command = [sys.executable, "-m", "apexctl", "trade", "--config", str(config)]
        command += ["--venue-ready", str(tmp_path / "ready.json"), "--out", str(out)]
        with running_engine([*command, "--duration", "60s"]) as engine:
            wait_for_count(ledger, "SELECT COUNT(*) FROM decisions", count=2)
            challenger = publish(root, folder, "a1", CHURN)
            wait_for_count(ledger, "SELECT COUNT(*) FROM models WHERE model_id = ?", challenger)
            stop(engine)
        with sqlite3.connect(ledger) as db:
            roles = dict(db.execute("SELECT model_id, role FROM models WHERE slot = 'btc-a'").fetchall())
            first_run = db.execute("SELECT MAX(decision_id) FROM decisions").fetchone()[0]
        assert roles == {champion: "champion", challenger: "challenger"}, roles
        assert (out / "models" / champion / "manifest.json").is_file(), "a copy of the champion is kept"
        assert (out / "models" / challenger / "manifest.json").is_file(), "and of the challenger"
        # The folder now holds the challenger; the restarted engine trades the ledger's champion from its copy.
        restarted = subprocess.run([*command, "--duration", "6s"], check=False, capture_output=True, timeout=60)
        assert restarted.returncode == 0, restarted.stderr.decode()[-2000:]
    with sqlite3.connect(ledger) as db:
        after = db.execute("SELECT DISTINCT model_id FROM decisions WHERE decision_id > ?", (first_run,)).fetchall()
        roles = dict(db.execute("SELECT model_id, role FROM models WHERE slot = 'btc-a'").fetchall())
        restored = [d for (d,) in db.execute("SELECT detail FROM events WHERE kind = 'champion_restored'")]
    assert after == [(champion,)], after
    assert roles == {champion: "champion", challenger: "challenger"}, roles
    assert len(restored) == 1, restored
    assert restored[0].startswith(f"btc-a {champion[:12]}"), restored


def test_pitcrew_values_out_of_range_are_one_line_and_exit_2(tmp_path):
    """Through the whole CLI for three keys; the config module's unit test covers every key and bound."""
    folder = tmp_path / "bundles" / "BTCUSDT" / "a"
    publish(tmp_path / "forge", folder, "a", FLAT)
    ready = unreachable_ready(tmp_path / "ready.json")
    for setting, key in [
        ("min_decisions = 1", "pitcrew.min_decisions"),
        ("alpha = 0.5", "pitcrew.alpha"),
        ('watch = "fsevents"', "pitcrew.watch"),
    ]:
        config = tmp_path / "nexus.toml"
        config.write_text(config_text({"btc-a": folder}, pitcrew=setting + "\n"))
        result = run_cli("trade", "--config", str(config), "--venue-ready", str(ready), "--out", str(tmp_path / "out"))
        stderr = result.stderr.decode().strip()
        assert result.returncode == 2, (setting, stderr)
        assert len(stderr.splitlines()) == 1, (setting, stderr)
        assert key in stderr, (setting, stderr)
        assert "Traceback" not in stderr, (setting, stderr)
