"""`apexctl trade` on a bad config: every value it reads itself is checked before anything starts (one line naming the
file and the key, exit 2, no run folder), and a good one-slot config still trades on the local venue it launches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli, run_here

#: One slot on a launched 60x local venue: each case below changes one thing of it.
BASE = """[venue]
kind = "local"
speed = 60
seed = 7

[engine]
bar = "1m"
status_every = "200ms"

[[slot]]
name = "btc-a"
symbol = "BTCUSDT"
capital = 200
bundle = "bundle"
account = "main"
"""
SLOT = '("btc-a")'


def edited(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new)


def top_level(line: str) -> str:
    """BASE with `line` before its first table, where a TOML key is top-level."""
    return f"{line}\n{BASE}"


def without_slots() -> str:
    return BASE[: BASE.index("[[slot]]")]


# (case, config text, extra options, what the one line says: the key and what it accepts)
CASES = [
    ("capital string", edited("capital = 200", 'capital = "lots"'), [], f"slot[0].capital {SLOT}: expected a finite"),
    ("capital bool", edited("capital = 200", "capital = true"), [], f"slot[0].capital {SLOT}: expected a finite"),
    ("capital table", edited("capital = 200", "capital = {}"), [], f"slot[0].capital {SLOT}: expected a finite"),
    ("capital negative", edited("capital = 200", "capital = -200"), [], f"slot[0].capital {SLOT}: -200 is out of"),
    ("capital zero", edited("capital = 200", "capital = 0"), [], f"slot[0].capital {SLOT}: 0 is out of range"),
    ("capital nan", edited("capital = 200", "capital = nan"), [], f"slot[0].capital {SLOT}: nan is not a finite"),
    ("capital inf", edited("capital = 200", "capital = inf"), [], f"slot[0].capital {SLOT}: inf is not a finite"),
    ("capital huge", edited("capital = 200", "capital = 1e300"), [], f"slot[0].capital {SLOT}: 1e+300 is out of"),
    ("capital missing", edited("capital = 200\n", ""), [], f"slot[0].capital {SLOT} is missing: expected a finite"),
    ("symbol number", edited('symbol = "BTCUSDT"', "symbol = 5"), [], f"slot[0].symbol {SLOT}: expected a symbol"),
    ("symbol empty", edited('symbol = "BTCUSDT"', 'symbol = ""'), [], f"slot[0].symbol {SLOT}: expected a symbol"),
    ("symbol missing", edited('symbol = "BTCUSDT"\n', ""), [], f"slot[0].symbol {SLOT} is missing"),
    (
        "symbol unknown",
        edited("BTCUSDT", "DOGEUSDT"),
        [],
        f"slot[0].symbol {SLOT}: expected a symbol the local venue lists: BTCUSDT",
    ),
    ("symbol lower case", edited("BTCUSDT", "btcusdt"), [], f"slot[0].symbol {SLOT}: expected a symbol the local"),
    ("name number", edited('name = "btc-a"', "name = 1"), [], "slot[0].name: expected the slot's name, got 1"),
    ("name missing", edited('name = "btc-a"\n', ""), [], "slot[0].name is missing"),
    ("account number", edited('account = "main"', "account = 5"), [], f"slot[0].account {SLOT}: expected an account"),
    ("account blank", edited('account = "main"', 'account = "a b"'), [], f"slot[0].account {SLOT}: expected an acc"),
    ("slot strings", top_level('slot = ["a"]').replace("[[slot]]", "[[other]]"), [], "slot[0]: expected a table"),
    ("slot table", edited("[[slot]]", "[slot]"), [], "slot: expected an array of tables ([[slot]]), got a table"),
    ("no slot", without_slots(), [], "no [[slot]]: the engine needs at least one slot"),
    ("empty slot array", "slot = []\n" + without_slots(), [], "no [[slot]]"),
    ("venue number", top_level("venue = 5").replace("[venue]", "[other]"), [], "venue: expected a [venue] table"),
    ("empty config", "", [], "venue is missing: expected a [venue] table with kind = one of local, testnet, mainnet"),
    ("kind unknown", edited('kind = "local"', 'kind = "moon"'), [], "venue.kind: expected one of local, testnet, mai"),
    ("kind number", edited('kind = "local"', "kind = 1"), [], "venue.kind: expected one of local, testnet, mainnet"),
    ("kind missing", edited('kind = "local"\n', ""), [], "venue.kind is missing: expected one of local, testnet"),
    ("speed string", edited("speed = 60", 'speed = "fast"'), [], "venue.speed: expected a finite number in (0, 1000"),
    ("speed bool", edited("speed = 60", "speed = true"), [], "venue.speed: expected a finite number in (0, 10000]"),
    ("speed zero", edited("speed = 60", "speed = 0"), [], "venue.speed: 0 is out of range: expected a finite number"),
    ("speed nan", edited("speed = 60", "speed = nan"), [], "venue.speed: nan is not a finite number"),
    ("speed too fast", edited("speed = 60", "speed = 1e6"), [], "venue.speed: 1e+06 is out of range"),
    ("seed string", edited("seed = 7", 'seed = "abc"'), [], "venue.seed: expected a whole number from 0 to 4294967295"),
    ("seed float", edited("seed = 7", "seed = 7.0"), [], "venue.seed: expected a whole number from 0 to 4294967295"),
    ("seed negative", edited("seed = 7", "seed = -7"), [], "venue.seed: -7 is out of range: expected a whole number"),
    ("seed huge", edited("seed = 7", "seed = 4294967296"), [], "venue.seed: 4294967296 is out of range"),
    ("faults number", edited("seed = 7", "seed = 7\nfaults = 5"), [], "venue.faults: expected a file name"),
    ("faults missing file", edited("seed = 7", 'seed = 7\nfaults = "no-plan.toml"'), [], "is not a file"),
    ("ready number", edited("seed = 7", "seed = 7\nready = 5"), [], "venue.ready: expected a file name"),
    # Wrong on any venue: the engine reads the whole config whichever one --venue picks.
    ("capital on testnet", edited("capital = 200", 'capital = "lots"'), ["--venue", "testnet"], "slot[0].capital"),
    ("kind under --venue", edited('kind = "local"', 'kind = "moon"'), ["--venue", "testnet"], "venue.kind"),
]


@pytest.fixture
def no_binaries(tmp_path, monkeypatch):
    """Neither the engine nor the venue can start: a case that got past the checks fails on another line."""
    monkeypatch.setenv("APEX_NEXUS_BIN", str(tmp_path / "no-apex-nexus"))
    monkeypatch.setenv("APEX_VENUE_BIN", str(tmp_path / "no-apex-venue"))


def refused(config: Path, out: Path, *options: str) -> str:
    """The one stderr line of a run refused as bad input before it started anything."""
    result = run_here("trade", "--config", str(config), "--out", str(out), "--duration", "3s", *options)
    stderr = result.stderr.strip()
    assert result.code == 2, stderr
    assert len(stderr.splitlines()) == 1, stderr
    assert "Traceback" not in stderr, stderr
    assert stderr.startswith("apexctl: error: "), stderr
    assert not out.exists(), sorted(p.name for p in out.iterdir())
    return stderr


@pytest.mark.parametrize(("text", "options", "needle"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_a_bad_config_value_is_one_line_naming_the_file_and_the_key(tmp_path, no_binaries, text, options, needle):
    config = tmp_path / "nexus.toml"
    config.write_text(text)
    line = refused(config, tmp_path / "out", *options)
    assert line.startswith(f"apexctl: error: {config}: "), line
    assert needle in line, line


def test_a_bad_venue_option_is_named_as_the_option(tmp_path, no_binaries):
    config = tmp_path / "nexus.toml"
    config.write_text(BASE)
    line = refused(config, tmp_path / "out", "--venue", "moon")
    assert "--venue must be one of local, testnet, mainnet, got 'moon'" in line


def test_the_base_config_passes_every_check(tmp_path, no_binaries):
    """The cases fail on their one change: BASE itself (and with a fault plan beside it) reaches the engine binary."""
    for name, text in (("base", BASE), ("faults", edited("seed = 7", 'seed = 7\nfaults = "plan.toml"'))):
        config = tmp_path / f"{name}.toml"
        config.write_text(text)
        (tmp_path / "plan.toml").write_text("seed = 1\n")
        line = refused(config, tmp_path / f"out-{name}")
        assert f"APEX_NEXUS_BIN={tmp_path / 'no-apex-nexus'} is not an executable file" in line, line


@pytest.mark.slow
def test_a_good_config_trades_on_the_venue_it_launches(tmp_path):
    from tests.e2e.test_trade import make_bundle

    bundle = make_bundle(tmp_path, "BTCUSDT", "a", seed=0)
    config = tmp_path / "nexus.toml"
    config.write_text(edited('bundle = "bundle"', f"bundle = {json.dumps(str(bundle))}"))
    out = tmp_path / "run"
    result = run_cli("trade", "--config", str(config), "--out", str(out), "--duration", "3s")
    assert result.returncode == 0, result.stderr.decode() + (out / "nexus.log").read_text(errors="replace")
    assert (out / "ledger.sqlite").is_file()
    assert (
        f"wrote the run's ledger (decisions, orders, fills, equity) to {out / 'ledger.sqlite'}"
        in result.stderr.decode()
    )
    accounts = json.loads((out / "venue-accounts.json").read_text())
    assert [(a["name"], a["balance"]) for a in accounts] == [("main", "200.00000000")]


def test_what_only_the_engine_checks_is_refused_before_a_venue_starts(tmp_path):
    """A missing bundle or an unknown engine key: `apex-nexus --check` runs before OUT is made or a venue launched."""
    for name, text, needle in (
        ("bundle", BASE, f"slot btc-a: bundle {tmp_path / 'bundle'}: "),
        ("key", edited('bar = "1m"', 'bar = "1m"\nbogus = 1'), "unknown field `bogus`"),
    ):
        config = tmp_path / f"{name}.toml"
        config.write_text(text)
        line = refused(config, tmp_path / f"out-{name}")
        assert needle in line, line


@pytest.mark.slow
def test_an_engine_refusal_after_the_checks_reads_as_an_apexctl_error(tmp_path):
    """A ready file the engine refuses (a venue off loopback) is found only when the engine starts: its line is
    still `apexctl: error: ...`, exit 2, as every refusal."""
    from tests.e2e.test_trade import make_bundle

    bundle = make_bundle(tmp_path, "BTCUSDT", "a", seed=0)
    config = tmp_path / "nexus.toml"
    config.write_text(edited('bundle = "bundle"', f"bundle = {json.dumps(str(bundle))}"))
    ready = tmp_path / "ready.json"
    ready.write_text(json.dumps({"rest": "http://10.1.2.3:8600", "ws_public": "ws://10.1.2.3:8601", "accounts": []}))
    result = run_here("trade", "--config", str(config), "--out", str(tmp_path / "run"), "--venue-ready", str(ready))
    assert result.code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("apexctl: error: "), lines


def test_mainnet_needs_only_the_keys_of_the_accounts_its_slots_use(tmp_path, no_binaries, monkeypatch):
    """A mainnet config whose one slot trades account `desk` needs BYBIT_API_KEY_DESK, not `main`'s keys: the
    engine's check names the variables per account, and apexctl does not ask for keys no slot uses."""
    for variable in ("BYBIT_API_KEY", "BYBIT_API_SECRET"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("BYBIT_API_KEY_DESK", "k")
    monkeypatch.setenv("BYBIT_API_SECRET_DESK", "s")
    config = tmp_path / "nexus.toml"
    config.write_text(edited('kind = "local"', 'kind = "mainnet"').replace('account = "main"', 'account = "desk"'))
    line = refused(config, tmp_path / "out", "--i-understand-mainnet")
    assert f"APEX_NEXUS_BIN={tmp_path / 'no-apex-nexus'} is not an executable file" in line, line


@pytest.mark.parametrize(
    ("duration", "needle"),
    [
        ("7d", None),
        ("1d", None),
        ("5", None),
        ("1.5s", None),
        ("8d", "--duration '8d' is longer than the longest accepted run, 7d"),
        ("-1", '--duration: "-1" is not a duration'),
        ("5 weeks", "unknown unit"),
    ],
)
def test_duration_takes_days_up_to_a_week(tmp_path, no_binaries, duration, needle):
    config = tmp_path / "nexus.toml"
    config.write_text(BASE)
    result = run_here("trade", "--config", str(config), "--out", str(tmp_path / "out"), "--duration", duration)
    assert result.code == 2, result.stderr
    expected = needle or f"APEX_NEXUS_BIN={tmp_path / 'no-apex-nexus'} is not an executable file"
    assert expected in result.stderr, result.stderr


@pytest.mark.slow
def test_a_venue_that_cannot_be_reached_leaves_no_pid_file_and_closes_the_run(tmp_path):
    """The engine took the run folder and opened its ledger, then found no venue: it exits 1 and leaves the folder
    free (no nexus.pid) with its run row closed as `error` (NULL is kept for a crash)."""
    import socket
    import sqlite3

    from tests.e2e.test_trade import make_bundle

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bundle = make_bundle(tmp_path, "BTCUSDT", "a", seed=0)
    config = tmp_path / "nexus.toml"
    config.write_text(edited('bundle = "bundle"', f"bundle = {json.dumps(str(bundle))}"))
    ready = tmp_path / "ready.json"
    urls = {"rest": f"http://127.0.0.1:{port}", "ws_public": f"ws://127.0.0.1:{port}/public"}
    account = {"name": "main", "api_key": "k" * 18, "api_secret": "s" * 36}
    ready.write_text(json.dumps({**urls, "ws_private": f"ws://127.0.0.1:{port}/private", "accounts": [account]}))
    out = tmp_path / "run"
    result = run_here("trade", "--config", str(config), "--out", str(out), "--venue-ready", str(ready))
    assert result.code == 1, result.stderr
    assert not (out / "nexus.pid").exists()
    with sqlite3.connect(out / "ledger.sqlite") as db:
        assert db.execute("SELECT exit FROM runs").fetchall() == [("error",)]
        assert db.execute("SELECT COUNT(*) FROM runs WHERE ended_local IS NULL").fetchone() == (0,)


def test_a_run_folder_in_a_bundle_or_held_by_another_engine_is_refused_before_a_venue_starts(tmp_path):
    """`--out` inside a slot's bundle would write logs and a ledger into an input (which then fails its manifest
    check); a folder another engine runs in is exit 3. Both are found by `apex-nexus --check`, before a venue is
    launched or anything written."""
    import os

    from tests.e2e.test_trade import make_bundle

    bundle = make_bundle(tmp_path, "BTCUSDT", "a", seed=0)
    config = tmp_path / "nexus.toml"
    config.write_text(edited('bundle = "bundle"', f"bundle = {json.dumps(str(bundle))}"))
    files = sorted(p.name for p in bundle.iterdir())
    for out in (bundle, bundle / "run"):
        result = run_here("trade", "--config", str(config), "--out", str(out), "--duration", "3s")
        assert result.code == 2, result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert f"--out {out} is inside slot btc-a's bundle folder {bundle}" in result.stderr
        assert sorted(p.name for p in bundle.iterdir()) == files, "the bundle is an input: nothing is written in it"
    held = tmp_path / "held"
    held.mkdir()
    (held / "nexus.pid").write_text(f"{os.getpid()}\n")  # a live process that is not the engine
    result = run_here("trade", "--config", str(config), "--out", str(held), "--duration", "3s")
    assert result.code == 3, result.stderr
    assert (
        result.stderr.strip()
        == f"apexctl: error: {held / 'nexus.pid'}: another engine (pid {os.getpid()}) is running in this folder"
    )
    assert sorted(p.name for p in held.iterdir()) == ["nexus.pid"], "no venue launched, no keys or logs written"


def test_a_run_folder_that_cannot_be_written_is_named_as_the_option(tmp_path, no_binaries):
    """`--out` under a file: the option is named before anything runs, as every command's output is."""
    config = tmp_path / "nexus.toml"
    config.write_text(BASE)
    (tmp_path / "file.json").write_text("{}")
    out = tmp_path / "file.json" / "run"
    line = refused(config, out)
    assert line == f"apexctl: error: --out {out / 'nexus.log'}: {tmp_path / 'file.json'} is not a folder"


def bundle_on(root: Path, name: str, feature: str, bars: dict) -> Path:
    """A one-tree bundle reading `feature`, whose hall of fame says it learned from `bars`."""
    from apexctl.forge.export import ExportConfig, export

    hall = root / f"hall-{name}"
    hall.mkdir()
    tree = {"schema": "apex.gp_tree", "version": 1, "features": [feature], "root": {"feature": feature}}
    (hall / "001.json").write_text(json.dumps(tree))
    entry = {"rank": 1, "file": "001.json", "size": 1, "height": 1, "train": {}, "held_out": {}}
    index = {"schema": "apex.hall_of_fame", "version": 1, "symbol": "BTCUSDT", "features": [feature], "bars": bars}
    (hall / "index.json").write_text(json.dumps(index | {"entries": [entry]}))
    out = root / "bundles" / name
    export(ExportConfig(output=out, hall_of_fame=hall, slot=name, command="test"))
    return out


def test_a_bundle_made_on_other_bars_is_refused_before_a_venue_starts(tmp_path, monkeypatch):
    """The engine computes one set of bar features: a tree evolved on 5m bars, or on rv over another window than
    the other slots' trees, would read other numbers live than it learned from."""
    options = {"rv_bars": 30, "vmd_modes": 3, "vmd_window": 64}
    five = bundle_on(tmp_path, "five", "clv", {"bar_seconds": 300, "options": options})
    config = tmp_path / "five.toml"
    config.write_text(edited('bundle = "bundle"', f"bundle = {json.dumps(str(five))}"))
    line = refused(config, tmp_path / "out-five")
    assert line == (
        f"apexctl: error: slot btc-a: bundle {five}: was made on 5m bars (rv_bars 30, vmd_modes 3, vmd_window 64); "
        'engine.bar is 1m: set engine.bar = "5m" in the config, or give a bundle made on 1m bars'
    )
    rv10 = bundle_on(tmp_path, "rv10", "rv", {"bar_seconds": 60, "options": options | {"rv_bars": 10}})
    rv30 = bundle_on(tmp_path, "rv30", "rv_5m", {"bar_seconds": 60, "options": options})
    second = BASE.replace('name = "btc-a"', 'name = "btc-b"').split("[[slot]]")[1]
    config = tmp_path / "rv.toml"
    config.write_text(
        edited('bundle = "bundle"', f"bundle = {json.dumps(str(rv10))}")
        + "\n[[slot]]"
        + second.replace('bundle = "bundle"', f"bundle = {json.dumps(str(rv30))}")
    )
    line = refused(config, tmp_path / "out-rv")
    assert f"slot btc-b: bundle {rv30}: was made on 1m bars (rv_bars 30, " in line, line
    assert (
        "it reads rv, which the engine computes over 10 bars (set by slot btc-a's bundle): export every slot's" in line
    )
    # The same bundles pass the engine's checks where the bars agree: the next step, launching the venue, fails.
    monkeypatch.setenv("APEX_VENUE_BIN", str(tmp_path / "no-apex-venue"))
    config.write_text(
        edited('bar = "1m"', 'bar = "5m"').replace('bundle = "bundle"', f"bundle = {json.dumps(str(five))}")
    )
    result = run_here("trade", "--config", str(config), "--out", str(tmp_path / "out-ok"), "--duration", "3s")
    assert result.code == 2, result.stderr
    assert f"APEX_VENUE_BIN={tmp_path / 'no-apex-venue'} is not an executable file" in result.stderr
