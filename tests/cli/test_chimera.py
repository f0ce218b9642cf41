"""`apexctl chimera`: a hidden DSG is recovered from its market, unidentified parameters are reported as such, and
user mistakes exit 2 with one line (the same-with-Ray check is in test_cluster.py, which starts Ray once)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from apexctl.errors import DataError, InputError, UsageError
from apexctl.forge import io, time_windows
from apexctl.forge import moments as mom
from apexctl.forge.cmaes import ChimeraConfig, Param, dsg_document, dsg_params, fit, load_target
from apexctl.forge.fetch import fetch_sim
from apexctl.forge.sim import MarketSim
from apexctl.schemas.chimera import ChimeraReport, chimera_report_json_schema_text
from apexctl.schemas.tables import BARS, BOOK, CHIMERA_GENERATIONS, TRADES
from tests.conftest import run_cli

#: The market the chimera must find: two parameters the moments identify (trade sizes, fundamentalist activity)
#: moved away from their defaults (8 lots, 0.2 per second).
HIDDEN = {"noise.size_lots": 16.0, "fundamentalist.rate": 0.5}
#: Stated tolerance of the recovery, relative to the hidden value. Over --seed 1..4 of this very setting the worst
#: errors seen were 6% (size) and 38% (rate, seed 1); the test runs --seed 3.
TOLERANCE = {"noise.size_lots": 0.15, "fundamentalist.rate": 0.30}
#: Searched as well, but the moments cannot see it: the sensitivity check must say so.
UNIDENTIFIED = "informed.rate"


@pytest.fixture(scope="module")
def hidden_market(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("chimera")
    dsg = folder / "hidden.json"
    dsg.write_text(json.dumps({"schema": "apex.dsg", "version": 1, "params": HIDDEN}))
    fetch_sim(MarketSim(symbols=("SOLUSDT",), dsg_path=str(dsg), seed=3, hours=0.15), str(folder / "data"))
    return folder / "data"


def _config(target: Path, out: Path, **overrides) -> ChimeraConfig:
    settings = {
        "target": str(target),
        "output": out,
        "budget": 60,
        "popsize": 10,
        "seeds": 2,
        "hours": 0.08,
        "seed": 3,
        "params": (*HIDDEN, UNIDENTIFIED),
    }
    return ChimeraConfig(**(settings | overrides))


@pytest.mark.slow
def test_hidden_dsg_is_recovered_and_the_unidentified_parameter_is_named(hidden_market, tmp_path):
    result = fit(_config(hidden_market, tmp_path / "dsg.json"))
    final = result.dsg["params"]
    for name, value in HIDDEN.items():
        assert abs(final[name] - value) <= TOLERANCE[name] * value, (name, final[name], value)
    report = result.report
    assert report["objective"]["final"] < report["objective"]["initial"] / 10
    verdict = {row["param"]: row["identified"] for row in report["identifiability"]}
    assert verdict == {"noise.size_lots": True, "fundamentalist.rate": True, UNIDENTIFIED: False}
    # Unsearched parameters keep their initial values.
    for p in report["params"]:
        if not p["searched"]:
            assert p["final"] == p["initial"], p["name"]
    assert result.generations.height == 6
    assert result.generations["evaluations"].sum() == 60


@pytest.mark.slow
def test_cli_writes_dsg_report_and_log(hidden_market, tmp_path):
    out = tmp_path / "fit" / "dsg.json"
    args = ["chimera", "--target", str(hidden_market), "--budget", "4", "--popsize", "4", "--seeds", "1"]
    args += ["--hours", "0.03", "--params", "noise.size_lots,fundamentalist.rate", "--no-sensitivity", "-o", str(out)]
    run_cli(*args, check=True)
    doc = json.loads(out.read_text())
    assert doc["schema"] == "apex.dsg"
    assert dsg_document([doc["params"][p.name] for p in dsg_params()]) == doc, "already normalized"
    report = json.loads((tmp_path / "fit" / "dsg.report.json").read_text())
    assert report["schema"] == "apex.chimera_report"
    ChimeraReport.model_validate(report)
    assert {m["name"] for m in report["moments"]} >= {"spread_mean_bps", "sign_acf_1", "depth_l5_log"}
    assert all({"target", "simulated", "error", "weight"} <= m.keys() for m in report["moments"])
    assert all({"initial", "final", "lo", "hi"} <= p.keys() for p in report["params"])
    log = io.read_table(tmp_path / "fit" / "dsg.generations.parquet", CHIMERA_GENERATIONS)
    assert log.frame.height == 1
    assert log.schema_name == "chimera_generations"


@pytest.mark.slow
def test_user_mistakes_are_one_line_errors(hidden_market, tmp_path):
    with pytest.raises(UsageError, match="--budget 3 is less than one generation"):
        fit(_config(hidden_market, tmp_path / "x.json", budget=3, popsize=4))
    with pytest.raises(UsageError, match="unknown DSG parameter"):
        fit(_config(hidden_market, tmp_path / "x.json", params=("noise.agentz", "noise.agents")))
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "trades.parquet").write_bytes((hidden_market / "trades.parquet").read_bytes())
    with pytest.raises(InputError, match=r"no book\.parquet"):
        fit(_config(tmp_path / "only", tmp_path / "x.json"))
    small = tmp_path / "small"
    small.mkdir()
    for name, schema in (("trades", TRADES), ("book", BOOK)):
        frame = io.read_table(hidden_market / f"{name}.parquet", schema).frame
        frame = frame.filter(pl.col("ts") < frame["ts"].min() + 60 * 10**9)
        io.write_table(frame, small / f"{name}.parquet", schema=schema, producer="test")
    with pytest.raises(InputError, match="too little data"):
        fit(_config(small, tmp_path / "x.json"))
    result = run_cli("chimera", "--target", str(tmp_path / "nowhere"), "--budget", "99", "-o", str(tmp_path / "x.json"))
    assert result.returncode == 2
    assert b"not a folder" in result.stderr


def test_a_target_with_bad_values_or_a_short_book_is_refused_naming_the_file(hidden_market, tmp_path):
    """chimera computes the target's statistics in Python: a NaN or negative price must stop it as it stops
    `features`, naming the file, the row and the column; a book shorter than the trades is named as the short one."""
    cases = {
        "trades": ("price", float("nan"), "expected a finite positive number"),
        "book": ("price", -1.0, "expected a finite positive number"),
    }
    for table, (column, value, expected) in cases.items():
        target = tmp_path / f"bad-{table}"
        target.mkdir()
        for name, schema in (("trades", TRADES), ("book", BOOK)):
            frame = io.read_table(hidden_market / f"{name}.parquet", schema).frame
            if name == table:
                frame = frame.with_columns(
                    pl.when(pl.int_range(pl.len()) == 5).then(value).otherwise(pl.col(column)).alias(column)
                )
            io.write_table(frame, target / f"{name}.parquet", schema=schema, producer="test")
        with pytest.raises(DataError) as error:
            fit(_config(target, tmp_path / "x.json"))
        assert str(error.value).startswith(f"{target / (table + '.parquet')}: row 5: column '{column}' holds ")
        assert expected in str(error.value)
    short = tmp_path / "short-book"
    short.mkdir()
    (short / "trades.parquet").write_bytes((hidden_market / "trades.parquet").read_bytes())
    book = io.read_table(hidden_market / "book.parquet", BOOK).frame
    io.write_table(book.head(1), short / "book.parquet", schema=BOOK, producer="test")
    with pytest.raises(InputError, match=r"book\.parquet covers 0\.0 minutes"):
        fit(_config(short, tmp_path / "x.json"))


def test_a_target_without_rows_of_a_symbol_is_refused_naming_the_folder(hidden_market, tmp_path):
    """An empty target, or one whose trades and book share no symbol, said only 'target data: no symbol has both
    trades and book rows', and a --symbol it lacks '--symbol X: not in the target data': which folder, which file?"""
    # What each case keeps of each table: "no-trades" keeps the book (SOLUSDT) and no trade.
    cases = {"empty": {"trades": 0, "book": 0}, "no-trades": {"trades": 0, "book": None}}
    for case, keep in cases.items():
        target = tmp_path / case
        target.mkdir()
        for name, schema in (("trades", TRADES), ("book", BOOK)):
            frame = io.read_table(hidden_market / f"{name}.parquet", schema).frame
            frame = frame if keep[name] is None else frame.head(keep[name])
            io.write_table(frame, target / f"{name}.parquet", schema=schema, producer="test")
        ran = run_cli("chimera", "--target", str(target), "--budget", "99", "-o", str(tmp_path / "x.json"))
        assert ran.returncode == 2
        line = ran.stderr.decode().strip()
        assert len(line.splitlines()) == 1, line
        assert line.startswith(f"apexctl: error: --target {target}: no symbol has both trades and book rows"), line
        assert f"{target / 'trades.parquet'}: no rows" in line
        assert ("book.parquet: no rows" in line) == (case == "empty")
    args = ("--target", str(hidden_market), "--symbol", "ETHUSDT", "--budget", "99", "-o", str(tmp_path / "x.json"))
    ran = run_cli("chimera", *args)
    assert ran.returncode == 2
    line = ran.stderr.decode().strip()
    assert line == f"apexctl: error: --symbol ETHUSDT: not in --target {hidden_market} (it has SOLUSDT)", line


def test_normalized_coordinates_round_trip_and_respect_bounds():
    for p in dsg_params():
        for u in (0.0, 0.25, 0.5, 1.0, -1.0, 2.0):
            value = p.from_unit(u)
            assert p.lo <= value <= p.hi, p.name
            if not p.integer and 0 <= u <= 1:
                assert np.isclose(p.to_unit(value), u, atol=1e-9), p.name
    wide = Param("x", 0.1, 1000.0, 1.0, False, "")
    assert wide.log_scale
    assert np.isclose(wide.from_unit(0.5), 10.0)
    count = Param("n", 0.0, 40.0, 3.0, True, "")
    assert count.from_unit(0.51) == 20.0


def test_report_schema_file_is_current():
    committed = (Path(__file__).resolve().parents[2] / "apexctl" / "schemas" / "chimera_report.schema.json").read_text()
    assert committed == chimera_report_json_schema_text(), (
        "apexctl/schemas/chimera_report.schema.json is stale: run "
        "`python -m apexctl.schemas.chimera > apexctl/schemas/chimera_report.schema.json`"
    )


def test_one_searched_parameter_is_refused_and_help_says_at_least_2(tmp_path):
    (tmp_path / "target").mkdir()
    args = ("chimera", "--target", str(tmp_path / "target"), "--budget", "4", "--popsize", "4")
    result = run_cli(*args, "--params", "noise.market_rate", "-o", str(tmp_path / "x.json"))
    assert result.returncode == 2
    assert b"search at least 2 parameters" in result.stderr
    assert len(result.stderr.decode().strip().splitlines()) == 1
    assert not (tmp_path / "x.json").exists()
    help_text = " ".join(run_cli("chimera", "--help", check=True).stdout.decode().split())
    assert "least 2" in help_text
    twice = run_cli(*args, "--params", "noise.market_rate,noise.market_rate", "-o", str(tmp_path / "x.json"))
    assert twice.returncode == 2
    assert twice.stderr.decode().strip() == (
        "apexctl: error: --params: noise.market_rate given more than once; name each parameter once"
    )


def test_a_target_read_a_time_window_at_a_time_has_the_moments_of_it_read_whole(tmp_path, monkeypatch):
    """The target's book is read a time window of row groups at a time and only the chosen symbol's rows are kept,
    its statistics gathered window by window (a week of several symbols' book does not fit in memory): the moments
    are those of the whole tables to the bit, and a bad price in a late row group of the other symbol is still named
    by its file row."""
    monkeypatch.setattr(time_windows, "WINDOW_ROWS", 5_000)
    data = tmp_path / "data"
    fetch_sim(MarketSim(symbols=("BTCUSDT", "SOLUSDT"), seed=5, hours=0.15), str(data))
    book_file = io.open_table(data / "book.parquet", BOOK)
    book = book_file.table().frame
    with io.table_pieces(data / "book.parquet", schema=BOOK, producer="test", params={"depth": 50}) as write:
        for start in range(0, book.height, 3_000):
            write(book.slice(start, 3_000))
    book_file = io.open_table(data / "book.parquet", BOOK)
    assert book_file.parquet.metadata.num_row_groups > 5
    assert len(time_windows.survey([(0, book_file)]).cuts()) > 5
    config = mom.MomentConfig()
    target = load_target(str(data), "SOLUSDT", config)
    trades = io.read_table(data / "trades.parquet", TRADES).frame
    bars = io.read_table(data / "bars.parquet", BARS).frame
    _, whole = mom.for_symbol(trades, book, bars, "SOLUSDT", config, 50)
    assert target.book_depth == 50
    assert json.dumps(target.moments, sort_keys=True) == json.dumps(whole, sort_keys=True)
    bad_row = int((book["symbol"] == "BTCUSDT").arg_true()[-3])
    book = book.with_columns(pl.when(pl.int_range(pl.len()) == bad_row).then(-1.0).otherwise("price").alias("price"))
    with io.table_pieces(data / "book.parquet", schema=BOOK, producer="test") as write:
        for start in range(0, book.height, 3_000):
            write(book.slice(start, 3_000))
    with pytest.raises(DataError, match=rf"book\.parquet: row {bad_row}: column 'price' holds -1\.0"):
        load_target(str(data), "SOLUSDT", config)
