"""`apexctl judge` on a real ledger (a short `apexctl trade` on the local venue): the JSON validates against
apex.judgment, the PNGs are PNGs and the HTML embeds them; deaths, swaps, weights and pending recycling requests
inserted into a copy of that ledger are judged; a held lock is exit 3; bad ledgers are one line and exit 2; the
measures against naive references."""

from __future__ import annotations

import base64
import json
import math
import re
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apexctl.forge import judge as judging
from apexctl.forge import outputs
from apexctl.forge.backtest import BacktestParams
from apexctl.schemas.json_schema import validation_error
from tests.conftest import run_cli

PNG = b"\x89PNG\r\n\x1a\n"
SHA = "ab" * 32
TREE = {"schema": "apex.gp_tree", "version": 1, "features": ["clv"], "root": {"feature": "clv"}}


@pytest.fixture(scope="module")
def traded(tmp_path_factory) -> Path:
    """A run folder of `apexctl trade`: two BTCUSDT slots for 10 s of a 60x local venue (about 10 bars each)."""
    from tests.e2e.test_trade import make_bundle

    root = tmp_path_factory.mktemp("judge-trade")
    bundles = {slot: make_bundle(root, "BTCUSDT", slot, seed) for seed, slot in enumerate(("a", "b"))}
    lines = ['[venue]\nkind = "local"\nspeed = 60\nseed = 4\n', '[engine]\nbar = "1m"\nstatus_every = "500ms"\n']
    lines.append("[rule]\nentry_threshold = 0.3\n")
    for slot, bundle in bundles.items():
        lines.append(f'[[slot]]\nname = "btc-{slot}"\nsymbol = "BTCUSDT"\ncapital = 3000\nbundle = "{bundle}"\n')
    config = root / "nexus.toml"
    config.write_text("\n".join(lines))
    out = root / "run"
    result = run_cli("trade", "--config", str(config), "--out", str(out), "--duration", "10s")
    assert result.returncode == 0, result.stderr.decode()
    return out


def copy_ledger(source: Path, target: Path) -> Path:
    """A consistent copy of a (WAL) ledger through SQLite's backup API."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


def judge_cli(*args: str):
    result = run_cli("judge", *args)
    return result.returncode, result.stderr.decode()


@pytest.mark.slow
def test_judge_a_real_ledger_writes_json_pngs_and_a_self_contained_report(traded, tmp_path):
    ledger = traded / "ledger.sqlite"
    report = tmp_path / "report"
    code, err = judge_cli(str(ledger), "-o", str(tmp_path / "judgment.json"), "--report", str(report))
    assert code == 0, err
    document = json.loads((tmp_path / "judgment.json").read_text())
    assert validation_error(document, "judgment") is None
    assert json.loads((report / "judgment.json").read_text())["ledgers"] == document["ledgers"]
    assert document["assumptions"]["target_multiple"] == BacktestParams().target_multiple
    (judged,) = document["ledgers"]
    assert judged["version"] == 2
    slots = {s["slot"]: s for s in judged["slots"]}
    assert set(slots) == {"btc-a", "btc-b"}
    db = sqlite3.connect(ledger)
    for name, slot in slots.items():
        last = db.execute("SELECT equity FROM equity WHERE slot = ? ORDER BY id DESC LIMIT 1", (name,)).fetchone()[0]
        assert slot["equity"]["final"] == pytest.approx(last)
        assert slot["equity"]["points"] >= 5
        assert slot["target"]["equity"] == pytest.approx(3000 * BacktestParams().target_multiple)
        assert slot["ttt"]["fraction_reached"] == pytest.approx(slot["equity"]["max"] / slot["target"]["equity"])
        (model,) = slot["models"]
        sha = db.execute("SELECT bundle_sha256 FROM slots WHERE slot = ?", (name,)).fetchone()[0]
        assert model["model_id"] == sha
        assert model["role"] == "champion"
        decisions = db.execute("SELECT COUNT(*) FROM decisions WHERE slot = ?", (name,)).fetchone()[0]
        assert model["live"]["decisions"] == decisions
        # The test bundles' hall of fame has no held-out scores: the estimate is null and says why.
        assert model["forge_estimate"]["seconds"] is None
        assert "no held-out backtest TTT" in model["forge_estimate"]["note"]
    fills = db.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
    assert fills > 0
    assert sum(s["slippage"]["all"]["fills"] for s in slots.values()) == fills
    assert sum(s["fees"]["taker"]["fills"] + s["fees"]["maker"]["fills"] for s in slots.values()) == fills
    pngs = sorted(report.glob("*.png"))
    assert {p.name for p in pngs} == {"equity-btc-a.png", "equity-btc-b.png", "weights.png", "slippage.png"}
    page = (report / "report.html").read_text()
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(embedded) == len(pngs)
    assert {base64.b64decode(e) for e in embedded} == {p.read_bytes() for p in pngs}
    assert all(p.read_bytes().startswith(PNG) for p in pngs)
    assert not re.search(r'(src|href)="(?!data:)', page), "the report must not load anything from outside"
    assert not list((report / "recycle").iterdir())


def add_crucible_rows(ledger: Path, outbox: Path) -> dict[str, Path]:
    """Deaths, a swap, weights, a challenger and its shadow equity, as the lead's engine writes them: btc-a died and
    was refilled (answered), btc-b died twice with no refill (pending: one request valid, one gone)."""
    db = sqlite3.connect(ledger)
    ts = [row[0] for row in db.execute("SELECT DISTINCT ts_exchange FROM equity WHERE ts_exchange IS NOT NULL")]
    first, last = min(ts), max(ts)
    outbox.mkdir(parents=True, exist_ok=True)
    valid = outbox / f"recycle-btc-b-{last}.json"
    request = {
        "schema": "apex.recycle", "version": 1, "slot": "btc-b", "symbol": "BTCUSDT", "reason": "equity 1.2 < 5.0",
        "time": judging.iso(last), "ts_exchange": last, "ledger": str(ledger), "run_id": 1, "equity": 1.2,
        "threshold": 5.0,
        "dna": {"model_id": SHA, "bundle": "bundles/b", "gp_tree": TREE,
                "record": {"growth": 0.1, "decisions": 12, "source": "live"}},
    }  # fmt: skip
    valid.write_text(json.dumps(request))
    gone = outbox / "recycle-btc-b-gone.json"
    with db:
        db.executemany(
            "INSERT INTO deaths (slot, symbol, model_id, reason, equity, threshold, request, ts_exchange, ts_local) "
            "VALUES (?, 'BTCUSDT', ?, 'equity below the minimum order', 1.0, 5.0, ?, ?, 1)",
            [("btc-a", SHA, str(outbox / "a.json"), first), ("btc-b", SHA, str(gone), first + 1),
             ("btc-b", SHA, f"outbox/{valid.name}", last)],
        )  # fmt: skip
        db.execute(
            "INSERT INTO swaps (slot, from_model, to_model, reason, position, ts_exchange, ts_local) "
            "VALUES ('btc-a', NULL, ?, 'refill', 'flat', ?, 2)",
            (SHA, first + 60_000_000_000),
        )
        db.execute(
            "INSERT INTO models (slot, model_id, bundle, label, gp_tree, role, detail, ts_exchange, ts_local) "
            "VALUES ('btc-a', ?, 'bundles/c', 'challenger c', ?, 'challenger', NULL, ?, 3)",
            (SHA, json.dumps(TREE), first),
        )
        db.executemany(
            "INSERT INTO shadow_equity (slot, model_id, equity, position, decisions, ts_exchange, ts_local) "
            "VALUES ('btc-a', ?, ?, 0, ?, ?, 4)",
            [(SHA, 3000.0 + 10 * i, i + 1, first + i * 60_000_000_000) for i in range(4)],
        )
        db.executemany(
            "INSERT INTO weights (slot, weight, capital, ts_exchange, ts_local) VALUES (?, ?, ?, ?, 5)",
            [(slot, w, 6000 * w, t) for t in (first, last) for slot, w in (("btc-a", 0.6), ("btc-b", 0.4))],
        )
        db.execute("UPDATE slots SET state = 'dead' WHERE slot = 'btc-b'")
    return {"valid": valid, "gone": gone}


@pytest.mark.slow
def test_deaths_swaps_weights_and_pending_requests(traded, tmp_path):
    run = tmp_path / "run"
    ledger = copy_ledger(traded / "ledger.sqlite", run / "ledger.sqlite")
    with sqlite3.connect(ledger) as db:  # the engine records each slot's starting weight
        weights = dict(db.execute("SELECT slot, COUNT(*) FROM weights GROUP BY slot").fetchall())
    files = add_crucible_rows(ledger, run / "outbox")
    report = tmp_path / "report"
    code, err = judge_cli(str(ledger), "-o", str(tmp_path / "j.json"), "--report", str(report))
    assert code == judging.EXIT_PENDING, err
    assert "2 recycling request(s) pending" in err
    document = json.loads((tmp_path / "j.json").read_text())
    assert validation_error(document, "judgment") is None
    slots = {s["slot"]: s for s in document["ledgers"][0]["slots"]}
    a, b = slots["btc-a"], slots["btc-b"]
    assert [d["pending"] for d in a["deaths"]] == [False]
    assert [d["pending"] for d in b["deaths"]] == [True, True]
    assert b["state"] == "dead"
    assert [s["reason"] for s in a["swaps"]] == ["refill"]
    assert a["weights"]["count"] == weights.get("btc-a", 0) + 2
    assert a["weights"]["last"] == {"weight": 0.6, "capital": 3600.0}
    challenger = next(m for m in a["models"] if m["model_id"] == SHA)
    assert challenger["role"] == "challenger"
    assert challenger["live"] is None
    assert challenger["shadow"]["decisions"] == 4
    assert challenger["shadow"]["log_growth"] == pytest.approx(math.log(3030 / 3000))
    pending = {Path(p["path"]).name: p for p in document["pending_recycle"]}
    assert pending[files["gone"].name]["status"] == "missing"
    assert "gone" in pending[files["gone"].name]["error"]
    ok = pending[files["valid"].name]
    assert ok["status"] == "ok"
    assert ok["request"]["dna"]["gp_tree"] == TREE
    copy = report / "recycle" / files["valid"].name
    assert ok["copied_to"] == str(copy)
    assert json.loads(copy.read_text()) == json.loads(files["valid"].read_text())
    assert [p.name for p in (report / "recycle").iterdir()] == [files["valid"].name]
    assert (report / "weights.png").read_bytes().startswith(PNG)
    # The copied request is what evolve consumes (see test_evolve's recycle test); an invalid one is reported.
    files["valid"].write_text(json.dumps({"schema": "apex.recycle", "version": 1}))
    code, _ = judge_cli(str(ledger), "-o", str(tmp_path / "j2.json"))
    assert code == judging.EXIT_PENDING
    again = {Path(p["path"]).name: p for p in json.loads((tmp_path / "j2.json").read_text())["pending_recycle"]}
    assert again[files["valid"].name]["status"] == "invalid"
    assert "'slot' is a required property" in again[files["valid"].name]["error"]


@pytest.mark.slow
def test_a_held_lock_is_exit_3_and_bad_ledgers_are_exit_2(traded, tmp_path):
    ledger = traded / "ledger.sqlite"
    report = tmp_path / "report"
    with outputs.lock(report, busy=True):
        code, err = judge_cli(str(ledger), "-o", str(tmp_path / "j.json"), "--report", str(report))
    assert code == judging.EXIT_LOCKED, err
    assert "another apexctl run holds its lock" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "j.json").exists()
    assert not report.exists()
    text = tmp_path / "notes.sqlite"
    text.write_text("not a database\n")
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE things (x)")
    newer = copy_ledger(ledger, tmp_path / "newer" / "ledger.sqlite")
    with sqlite3.connect(newer) as db:
        db.execute("UPDATE meta SET value = '3' WHERE key = 'version'")
    corrupt = tmp_path / "corrupt.sqlite"
    data = bytearray(copy_ledger(ledger, tmp_path / "c" / "ledger.sqlite").read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)
    corrupt.write_bytes(bytes(data))
    for bad, words in (
        (text, "not a SQLite file"),
        (other, "not an apex.ledger ledger"),
        (newer, "version 3 (newer than this apexctl"),
        (tmp_path / "missing.sqlite", "no such ledger file"),
        (corrupt, "ledger"),
    ):
        code, err = judge_cli(str(ledger), str(bad), "-o", str(tmp_path / "bad.json"), "--report", str(report))
        assert code == 2, (bad, err)
        (line,) = err.strip().splitlines()
        assert line.startswith(f"apexctl: error: {bad}: "), line
        assert words in line, line
        assert not (tmp_path / "bad.json").exists()
        assert not report.exists()


def version_1_ledger(ledger: Path) -> Path:
    """A ledger in the version-1 DDL (no Crucible tables, no model_id/state/mid) with one slot and four bars."""
    with sqlite3.connect(ledger) as db:
        db.executescript(
            """
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            INSERT INTO meta VALUES ('schema', 'apex.ledger'), ('version', '1');
            CREATE TABLE runs (run_id INTEGER PRIMARY KEY, pid INTEGER, venue TEXT, config_sha256 TEXT,
                started_local INTEGER, ended_local INTEGER, exit TEXT);
            INSERT INTO runs VALUES (1, 10, 'local', 'x', 5, 9, 'duration');
            CREATE TABLE slots (slot TEXT PRIMARY KEY, symbol TEXT, account TEXT, capital REAL, bundle TEXT,
                bundle_sha256 TEXT, model TEXT);
            INSERT INTO slots VALUES ('s', 'BTCUSDT', 'main', 100, 'nowhere', 'cd', 'signal');
            CREATE TABLE decisions (decision_id INTEGER PRIMARY KEY, run_id INTEGER, slot TEXT, symbol TEXT,
                bar_ts INTEGER, equity REAL, ts_exchange INTEGER, ts_local INTEGER);
            CREATE TABLE equity (id INTEGER PRIMARY KEY, slot TEXT, equity REAL, cash REAL, unrealized REAL,
                position REAL, mark REAL, ts_exchange INTEGER, ts_local INTEGER);
            CREATE TABLE orders (order_link_id TEXT, slot TEXT, tactic TEXT, purpose TEXT, side TEXT);
            CREATE TABLE fills (exec_id TEXT, order_link_id TEXT, slot TEXT, side TEXT, price REAL, qty REAL,
                fee REAL, is_maker INTEGER);
            CREATE TABLE weights (id INTEGER PRIMARY KEY, slot TEXT, weight REAL, capital REAL, ts_exchange INTEGER,
                ts_local INTEGER);
            INSERT INTO orders VALUES ('o1', 's', 'aggressive', 'entry', 'Buy');
            INSERT INTO fills VALUES ('e1', 'o1', 's', 'Buy', 100.5, 2, 0.11, 0);
            """
        )
        minute = 60_000_000_000
        for i, value in enumerate((100, 150, 210, 90)):
            db.execute("INSERT INTO decisions VALUES (NULL, 1, 's', 'BTCUSDT', ?, ?, ?, 1)", (i * minute, value, i))
            db.execute("INSERT INTO equity VALUES (NULL, 's', ?, 0, 0, 0, 0, ?, 1)", (value, i * minute))
    return ledger


def test_a_version_1_ledger_reports_empty_crucible_tables(tmp_path):
    ledger = version_1_ledger(tmp_path / "v1.sqlite")
    result = judging.judge([ledger])
    assert validation_error(result.document, "judgment") is None
    (slot,) = result.document["ledgers"][0]["slots"]
    assert slot["state"] == "live"
    assert slot["deaths"] == slot["swaps"] == []
    assert slot["weights"]["count"] == 0
    assert slot["ttt"] == {"reached": True, "seconds": 2 * 60 + 60, "fraction_reached": 210 / 200}
    assert slot["equity"]["max_drawdown"] == pytest.approx(1 - 90 / 210)
    assert slot["slippage"]["fills_without_mid"] == 1
    assert slot["fees"]["taker"]["rate"] == pytest.approx(0.11 / 201)
    (model,) = slot["models"]
    assert model["model_id"] == "cd"
    assert model["live"]["decisions"] == 4
    assert "no bundle manifest" in model["forge_estimate"]["note"]


def _reference_drawdown(values: list[float], start: float) -> float:
    curve = [start, *values]
    return max((1 - curve[j] / max(curve[: j + 1]) for j in range(len(curve)) if max(curve[: j + 1]) > 0), default=0.0)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    values=st.lists(st.floats(0.0, 1e6, allow_nan=False), max_size=30),
    start=st.floats(1.0, 1e6, allow_nan=False),
)
def test_max_drawdown_against_a_quadratic_reference(values, start):
    assert judging.max_drawdown(values, start) == pytest.approx(_reference_drawdown(values, start), abs=1e-12)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    side=st.sampled_from(["Buy", "Sell"]),
    mid=st.floats(1e-3, 1e6),
    move=st.floats(-0.05, 0.05),
)
def test_slippage_is_positive_when_the_price_is_worse(side, mid, move):
    price = mid * (1 + move)
    bps = judging.slippage_bps(side, price, mid)
    worse = price > mid if side == "Buy" else price < mid
    if price != mid:
        assert (bps > 0) == worse
    assert abs(bps) == pytest.approx(abs(price - mid) / mid * 1e4, rel=1e-9, abs=1e-9)


@pytest.mark.slow
def test_an_earlier_report_is_replaced_whole_and_any_other_folder_refused(tmp_path):
    """A rerun replaces its report folder as a whole (a request no longer pending is not left in recycle/); a
    folder that is not an earlier report is never replaced."""
    ledger = tmp_path / "l.sqlite"
    with sqlite3.connect(ledger) as db:
        db.executescript(
            """
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            INSERT INTO meta VALUES ('schema', 'apex.ledger'), ('version', '1');
            CREATE TABLE slots (slot TEXT, symbol TEXT, account TEXT, capital REAL, bundle TEXT, bundle_sha256 TEXT,
                model TEXT);
            CREATE TABLE decisions (decision_id INTEGER PRIMARY KEY, slot TEXT, bar_ts INTEGER, equity REAL);
            CREATE TABLE equity (id INTEGER PRIMARY KEY, slot TEXT, equity REAL, position REAL, ts_exchange INTEGER);
            CREATE TABLE orders (order_link_id TEXT, tactic TEXT, purpose TEXT);
            CREATE TABLE fills (slot TEXT, order_link_id TEXT, side TEXT, price REAL, qty REAL, fee REAL,
                is_maker INTEGER);
            """
        )
    report = tmp_path / "report"
    for _ in range(2):
        code, err = judge_cli(str(ledger), "-o", str(tmp_path / "j.json"), "--report", str(report))
        assert code == 0, err
        assert not list((report / "recycle").iterdir())
        (report / "recycle" / "answered-long-ago.json").write_text("{}")
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_text("meow")
    code, err = judge_cli(str(ledger), "-o", str(tmp_path / "j.json"), "--report", str(other))
    assert code == 2
    assert "an earlier judge report" in err
    assert [p.name for p in other.iterdir()] == ["cat.jpg"]


def test_the_judgment_schema_is_a_valid_schema():
    import jsonschema

    from apexctl.schemas.json_schema import schema

    for name in ("judgment", "recycle"):
        jsonschema.Draft202012Validator.check_schema(schema(name))


def test_the_forge_estimate_is_the_models_own_manifests_held_out_ttt(tmp_path):
    from apexctl.forge import io

    bundle = tmp_path / "run" / "bundles" / "a"
    bundle.mkdir(parents=True)
    ledger = tmp_path / "run" / "ledger.sqlite"

    def manifest(held_out: dict) -> str:
        info = {"rank": 1, "held_out": held_out}
        models = [{"name": "iel", "info": {}}, {"name": "signal", "info": info}]
        (bundle / "manifest.json").write_text(json.dumps({"schema": "apex.bundle", "models": models}))
        return io.sha256_file(bundle / "manifest.json")

    model = manifest({"ttt_seconds": 5400.0, "reached": 1.0, "fitness": 2.4})
    # The engine records the folder as configured: relative paths are resolved against the run folder.
    found = judging.forge_estimate("bundles/a", model, ledger)
    assert (found["seconds"], found["reached"], found["fitness"], found["note"]) == (5400.0, True, 2.4, None)
    assert "models[name=signal].info.held_out" in found["source"]
    refilled = judging.forge_estimate(str(bundle), "0" * 64, ledger)
    assert refilled["seconds"] is None
    assert "now holds another model" in refilled["note"]
    never = manifest({"ttt_seconds": None, "reached": 0.0, "fitness": 0.7})
    found = judging.forge_estimate(str(bundle), never, ledger)
    assert (found["seconds"], found["reached"]) == (None, False)
    assert found["note"] == "the held-out backtest never reached the target"
    assert "no bundle manifest" in judging.forge_estimate(str(tmp_path / "gone"), never, ledger)["note"]


def test_a_ledger_being_written_is_read_at_its_last_commit(tmp_path):
    """WAL: the engine holds a write transaction open; the judge reads the last committed state, never waits."""
    ledger = version_1_ledger(tmp_path / "v1.sqlite")
    writer = sqlite3.connect(ledger, isolation_level=None)
    writer.execute("PRAGMA journal_mode = WAL")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO equity VALUES (NULL, 's', 1000, 0, 0, 0, 0, ?, 1)", (4 * 60_000_000_000,))
    try:
        (slot,) = judging.judge([ledger]).document["ledgers"][0]["slots"]
        assert slot["equity"]["final"] == 90
        writer.execute("COMMIT")
        (slot,) = judging.judge([ledger]).document["ledgers"][0]["slots"]
        assert slot["equity"]["final"] == 1000
    finally:
        writer.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("damage", "table", "column", "words"),
    [
        ("UPDATE equity SET equity = 'nan' WHERE id = 17", "equity", "equity", "row 17: equity must be a finite"),
        ("UPDATE slots SET capital = 'lots'", "slots", "capital", "got 'lots'"),
        ("UPDATE equity SET equity = 9e999", "equity", "equity", "got inf"),
    ],
)
def test_a_wrong_value_in_a_real_ledger_is_exit_2_and_leaves_the_earlier_outputs(
    traded, tmp_path, damage, table, column, words
):
    """The bad-input sweep's findings on a real ledger: one line naming the file, table, row and column; the JSON
    and the report of an earlier run stay as they were (the infinity once crashed after publishing both)."""
    ledger = copy_ledger(traded / "ledger.sqlite", tmp_path / "run" / "ledger.sqlite")
    output, report = tmp_path / "j.json", tmp_path / "report"
    code, err = judge_cli(str(ledger), "-o", str(output), "--report", str(report))
    assert code == 0, err
    before = {p.relative_to(tmp_path): p.read_bytes() for p in [output, *report.rglob("*")] if p.is_file()}
    with sqlite3.connect(ledger) as db:
        assert db.execute(damage).rowcount >= 1
    code, err = judge_cli(str(ledger), "-o", str(output), "--report", str(report))
    assert code == 2, err
    assert "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert line.startswith(f"apexctl: error: {ledger}: table {table}, row "), line
    assert f": {column} must be " in line, line
    assert words in line, line
    after = {p.relative_to(tmp_path): p.read_bytes() for p in [output, *report.rglob("*")] if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.json", "report", "run"]
