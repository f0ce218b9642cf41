"""The simulator from Python: determinism, clean L2 output, batch = single runs, the DSG contract, `simulate`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apexctl import _core
from apexctl.errors import DataError
from apexctl.forge import io
from apexctl.forge.features import trade_frame
from apexctl.forge.sim import MarketSim, dsg_schema, market_tables
from apexctl.schemas import BOOK, EQUITY, FILLS, TRADES
from tests.conftest import run_cli

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "apexctl" / "schemas" / "dsg.schema.json"


def test_same_seed_is_bit_identical_and_the_book_replays_cleanly():
    a = _core.sim_run("SOLUSDT", seed=3, hours=0.1, strategy="ma_crossover:2:5")
    b = _core.sim_run("SOLUSDT", seed=3, hours=0.1, strategy="ma_crossover:2:5")
    for table in ("trades", "book", "bars", "fills"):
        for column, values in a[table].items():
            assert np.array_equal(values, b[table][column], equal_nan=True), (table, column)
    assert a["strategy"]["pnl"] == b["strategy"]["pnl"]
    c = _core.sim_run("SOLUSDT", seed=4, hours=0.1)
    assert not np.array_equal(a["trades"]["price"][:100], c["trades"]["price"][:100])
    book = a["book"]
    replay = _core.book_replay(
        {**book, "ts": book["ts_us"], "symbol": np.zeros(len(book["ts_us"]), dtype=np.uint32)},
        price_decimals=3,
        qty_decimals=1,
    )
    stats = replay["books"][0]
    assert replay["incidents"] == []
    assert stats["gaps"] == 0
    assert stats["crossed"] == 0
    assert stats["synced"]
    assert stats["snapshots"] == 1
    assert stats["deltas"] > 1000


def test_the_market_tables_come_as_the_v5_parser_gives_them_and_make_typed_frames():
    out = _core.sim_run("BTCUSDT", seed=5, hours=0.02)
    trades, book = out["trades"], out["book"]
    parsed = _core.bybit_parse_lines(b"")
    assert set(parsed["trades"]) <= set(trades)
    assert set(parsed["book"]) <= set(book)
    for table in (trades, book):
        assert np.array_equal(table["ts"], _core.SIM_EPOCH_NS + table["ts_us"] * 1000)
        assert not table["symbol"].any()
    frame = trade_frame(trades, ["BTCUSDT"])
    assert frame.columns == TRADES.column_names
    assert frame["trade_id"].to_list() == [str(i) for i in range(1, len(frame) + 1)]
    assert frame["ts"].to_list() == trades["ts"].tolist()
    no_rows = {name: column[:0] for name, column in trades.items()} | {"trade_id_offsets": np.zeros(1, np.int64)}
    assert trade_frame(no_rows, ["BTCUSDT"]).schema == frame.schema


def test_batch_matches_single_runs_and_is_columnar():
    defaults = np.array([p[3] for p in _core.dsg_params()])
    vectors = np.vstack([defaults, defaults])
    seeds = np.array([1, 2], dtype=np.uint64)
    result = _core.sim_batch("ETHUSDT", vectors, seeds, ["buy_and_hold", ""], hours=0.05)
    assert isinstance(result["pnl"], np.ndarray)
    assert result["pnl"].shape == (2,)
    single = _core.sim_run("ETHUSDT", seed=1, hours=0.05, strategy="buy_and_hold")
    assert result["pnl"][0] == single["strategy"]["pnl"]
    assert result["trades"][0] == single["trade_count"]
    assert np.isnan(result["pnl"][1]), "a job without a strategy has no PnL"
    with pytest.raises(DataError, match="same count"):
        _core.sim_batch("ETHUSDT", vectors, seeds, ["buy_and_hold"])


def test_out_of_bounds_vectors_are_clipped_into_a_valid_market():
    lo = np.array([p[1] for p in _core.dsg_params()])
    hi = np.array([p[2] for p in _core.dsg_params()])
    wild = np.vstack([lo - 1e6, hi + 1e6, np.full_like(lo, np.nan)])
    result = _core.sim_batch("SOLUSDT", wild, np.array([1, 2, 3], dtype=np.uint64), ["buy_and_hold"] * 3, hours=0.01)
    assert np.isfinite(result["pnl"]).all()


def test_dsg_schema_file_is_current_and_documents_are_checked():
    committed = json.loads(SCHEMA_FILE.read_text())
    assert committed == dsg_schema(), (
        "regenerate with: python -c 'from apexctl import _core; print(_core.dsg_json_schema())'"
    )
    names = [p[0] for p in _core.dsg_params()]
    assert set(committed["properties"]["params"]["properties"]) == set(names)
    doc = json.loads(_core.dsg_normalize('{"schema": "apex.dsg", "version": 1, "params": {"noise.agents": 12}}'))
    assert doc["params"]["noise.agents"] == 12
    assert doc["params"]["market_maker.agents"] == 3
    with pytest.raises(DataError, match=r"unknown DSG parameter 'noise\.agentz'"):
        _core.dsg_normalize('{"schema": "apex.dsg", "version": 1, "params": {"noise.agentz": 12}}')
    with pytest.raises(DataError, match="outside its bounds"):
        _core.dsg_normalize('{"schema": "apex.dsg", "version": 1, "params": {"noise.agents": -3}}')
    with pytest.raises(DataError, match="version"):
        _core.dsg_normalize('{"schema": "apex.dsg", "version": 9, "params": {}}')


def test_market_tables_have_the_real_data_schemas(tmp_path):
    frames, params = market_tables(MarketSim(symbols=("BTCUSDT", "SOLUSDT"), seed=5, hours=0.05))
    book = frames["book"]
    io.write_table(book, tmp_path / "book.parquet", schema=BOOK, producer="test")
    assert io.read_table(tmp_path / "book.parquet", BOOK).frame.height == book.height
    assert set(book["symbol"].unique()) == {"BTCUSDT", "SOLUSDT"}
    assert book["ts"].is_sorted()
    assert frames["bars"]["interval"].unique().to_list() == ["1m"]
    assert (frames["bars"]["turnover"] >= 0).all()
    assert frames["trades"]["side"].is_in([1, -1]).all()
    assert params["dsg"]["schema"] == "apex.dsg"


def test_a_run_recorded_in_pieces_is_the_run_recorded_whole():
    config = MarketSim(symbols=("BTCUSDT", "SOLUSDT"), seed=5, hours=0.05)
    whole, _ = market_tables(config)
    pieced, _ = market_tables(config, piece_hours=0.0071)  # 8 pieces, their ends off the book's 100 ms grid
    for name, frame in whole.items():
        assert pieced[name].equals(frame), name
    # 18 ms pieces of a depth-1 stream: in some, one symbol publishes no book message while another does.
    sparse = MarketSim(seed=2, hours=0.003, depth=1, cadence_ms=20)
    whole, _ = market_tables(sparse)
    pieced, _ = market_tables(sparse, piece_hours=0.000005)
    for name, frame in whole.items():
        assert pieced[name].equals(frame), name

    out = _core.sim_run("ETHUSDT", seed=3, hours=0.02)
    market = _core.SimMarket("ETHUSDT", seed=3, hours=0.02)
    pieces = [market.advance(until_us) for until_us in (0, 5_000_000, 5_000_000, 33_333_333, 10**12)]
    rest = market.finish()
    assert len(rest["trades"]["ts"]) == 0, "advancing past the horizon recorded the whole run"
    for index, table in enumerate(("trades", "book")):
        for column, values in out[table].items():
            if column != "trade_id_offsets":  # they restart in every piece; the id bytes are compared instead
                joined = np.concatenate([piece[index][column] for piece in pieces] + [rest[table][column]])
                assert np.array_equal(joined, values, equal_nan=True), (table, column)
    assert all(np.array_equal(rest["bars"][c], out["bars"][c]) for c in out["bars"])
    with pytest.raises(RuntimeError, match="finished"):
        market.advance(1)


def test_a_run_that_records_no_market_tables_trades_the_same():
    recorded = _core.sim_run("SOLUSDT", seed=4, hours=0.05, strategy="ma_crossover:2:5")
    bare = _core.sim_run("SOLUSDT", seed=4, hours=0.05, strategy="ma_crossover:2:5", record_market=False)
    assert len(bare["book"]["ts"]) == len(bare["trades"]["ts"]) == len(bare["fair_value"]["ts"]) == 0
    assert len(recorded["book"]["ts"]) > 0
    assert bare["trade_count"] == recorded["trade_count"] > 0
    for name in ("pnl", "fees", "n_fills"):
        assert bare["strategy"][name] == recorded["strategy"][name], name
    assert np.array_equal(bare["strategy"]["equity"], recorded["strategy"]["equity"])
    assert all(np.array_equal(bare["fills"][c], recorded["fills"][c]) for c in recorded["fills"])


def test_simulate_cli_writes_fills_equity_and_summary(tmp_path):
    out = tmp_path / "run"
    result = run_cli("simulate", "--strategy", "buy_and_hold", "--hours", "0.1", "--seed", "2", "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["strategy"] == "buy_and_hold"
    assert summary["fills"] >= 1
    fills = io.read_table(out / "fills.parquet", FILLS).frame
    equity = io.read_table(out / "equity.parquet", EQUITY).frame
    assert fills.height == summary["fills"]
    assert equity.height == 6, "one point per 1-minute decision"
    assert np.isclose(fills["fee"].sum(), summary["fees"])
    assert b"PnL" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "moon"], b"unknown strategy 'moon'"),
        (["--symbol", "DOGEUSDT"], b"no simulator preset for DOGEUSDT"),
        (["--dsg", "missing.json"], b"missing.json: no such DSG file"),
        (["--hours", "0"], b"'--hours': 0 is out of range: expected a finite number in (0, 168]"),
    ],
)
def test_simulate_bad_input_is_one_line_exit_2(tmp_path, args, message):
    result = run_cli("simulate", "-o", str(tmp_path / "out"), "--hours", "0.01", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.decode().strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_bad_dsg_document_names_the_file(tmp_path):
    path = tmp_path / "dsg.json"
    path.write_text('{"schema": "apex.dsg", "version": 1, "params": {"informed.agents": 1e9}}')
    result = run_cli("simulate", "-o", str(tmp_path / "out"), "--hours", "0.01", "--dsg", str(path))
    assert result.returncode == 2
    assert str(path).encode() in result.stderr
    assert b"informed.agents" in result.stderr


def test_a_repeated_key_in_a_dsg_or_a_tree_is_refused_by_every_reader(tmp_path):
    """JSON readers in Rust keep a repeated key's last value; the documents are strict (README "Inputs")."""
    dsg = tmp_path / "dsg.json"
    dsg.write_text('{"schema": "apex.dsg", "version": 1, "params": {"noise.agents": 5, "noise.agents": 300}}')
    tree = tmp_path / "tree.json"
    root = '{"op": "tanh", "args": [{"feature": "ret"}]}'
    tree.write_text(f'{{"schema": "apex.gp_tree", "version": 1, "features": ["ret"], "root": {root}, "root": {root}}}')
    for args in (
        ["simulate", "--dsg", str(dsg), "--hours", "0.01", "-o", str(tmp_path / "out")],
        ["fetch", "--source", "sim", "--dsg", str(dsg), "--hours", "0.01", "-o", str(tmp_path / "out")],
        ["venue", "--dsg", str(dsg), "--duration", "1"],
        ["simulate", "--tree", str(tree), "--hours", "0.01", "-o", str(tmp_path / "out")],
    ):
        result = run_cli(*args)
        assert result.returncode == 2, args
        stderr = result.stderr.decode()
        assert len(stderr.strip().splitlines()) == 1, stderr
        assert "appears twice in one object" in stderr, stderr
        assert str(tmp_path) in stderr, stderr
    assert not (tmp_path / "out").exists()


PARAMS = _core.dsg_params()


@settings(max_examples=20, deadline=None, derandomize=True)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=len(PARAMS), max_size=len(PARAMS)),
    st.integers(0, 2**32),
    st.sampled_from(["BTCUSDT", "ETHUSDT", "SOLUSDT"]),
)
def test_any_dsg_vector_within_bounds_gives_a_finite_market(fractions, seed, symbol):
    lo = np.array([p[1] for p in PARAMS])
    hi = np.array([p[2] for p in PARAMS])
    vector = lo + (hi - lo) * np.array(fractions)
    result = _core.sim_batch(
        symbol, vector[None, :], np.array([seed], dtype=np.uint64), ["ma_crossover:2:4"], hours=0.02, max_events=400_000
    )
    assert np.isfinite(result["pnl"]).all()
    assert np.isfinite(result["max_drawdown"]).all()


def test_simulate_a_strategy_that_never_trades(tmp_path):
    out = tmp_path / "flat"
    result = run_cli("simulate", "--strategy", "always_flat", "--hours", "0.05", "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["pnl"], summary["fees"], summary["fills"]) == (0.0, 0.0, 0)
    assert io.read_table(out / "fills.parquet", FILLS).frame.height == 0


def _tree_file(tmp_path, root, features, name="tree.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"schema": "apex.gp_tree", "version": 1, "features": features, "root": root}))
    return path


def test_simulate_tree_trades_the_gp_strategy_like_the_builtin_it_equals(tmp_path):
    long_tree = _tree_file(tmp_path, {"const": 1.0}, [])
    common = ["--hours", "0.1", "--seed", "2"]
    gp = run_cli("simulate", "--tree", str(long_tree), *common, "-o", str(tmp_path / "gp"))
    assert gp.returncode == 0, gp.stderr.decode()
    builtin = run_cli("simulate", "--strategy", "buy_and_hold", *common, "-o", str(tmp_path / "bh"))
    assert builtin.returncode == 0, builtin.stderr.decode()
    gp_summary = json.loads((tmp_path / "gp" / "summary.json").read_text())
    bh_summary = json.loads((tmp_path / "bh" / "summary.json").read_text())
    assert gp_summary["strategy"] == "gp"
    for key in ("pnl", "fees", "fills", "max_drawdown"):
        assert gp_summary[key] == bh_summary[key], key
    gp_fills = io.read_table(tmp_path / "gp" / "fills.parquet", FILLS).frame
    bh_fills = io.read_table(tmp_path / "bh" / "fills.parquet", FILLS).frame
    assert gp_fills.drop("model_id").equals(bh_fills.drop("model_id"))


def test_a_tree_from_stdin_is_recorded_by_the_bytes_read(tmp_path):
    """`--tree -` reads stdin once: its provenance is the hash of what was read, not of a file named '-' (there
    was none, and the run failed after the simulation; with one, its hash was recorded as the tree's)."""
    tree = _tree_file(tmp_path, {"const": 1.0}, [])
    (tmp_path / "-").write_text("not the tree")
    args = ["simulate", "--hours", "0.1", "--seed", "2"]
    piped = run_cli(*args, "--tree", "-", "-o", str(tmp_path / "piped"), stdin=tree.read_bytes(), cwd=tmp_path)
    assert piped.returncode == 0, piped.stderr.decode()
    named = run_cli(*args, "--tree", str(tree), "-o", str(tmp_path / "named"))
    assert named.returncode == 0, named.stderr.decode()
    inputs = {
        name: io.read_table(tmp_path / name / "fills.parquet", FILLS).metadata[io.META_INPUTS]
        for name in ("piped", "named")
    }
    assert inputs["piped"] == {"-": io.sha256_file(tree)}, inputs
    assert inputs["named"] == {str(tree): io.sha256_file(tree)}, inputs


def test_simulate_tree_with_a_feature_the_simulator_lacks_names_the_file(tmp_path):
    tree = _tree_file(tmp_path, {"feature": "ofi_l1"}, ["ofi_l1"], name="ofi.json")
    result = run_cli("simulate", "--tree", str(tree), "--hours", "0.01", "-o", str(tmp_path / "out"))
    assert result.returncode == 2
    assert b"ofi.json" in result.stderr
    assert b"ofi_l1" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    missing = run_cli("simulate", "--tree", str(tmp_path / "none.json"), "--hours", "0.01", "-o", str(tmp_path / "o"))
    assert missing.returncode == 2
    assert b"none.json: no such file (expected a GP tree (apex.gp_tree JSON) for --tree)" in missing.stderr


def test_strategy_names_come_from_apex_sim():
    from apexctl.errors import UsageError
    from apexctl.forge.sim import STRATEGIES, check_strategy

    assert STRATEGIES == ("always_flat", "buy_and_hold", "ma_crossover", "ma_crossover:FAST:SLOW")
    assert tuple(name for name, _ in _core.sim_strategies()) == STRATEGIES
    for good in ("always_flat", "flat", "buy_and_hold", "ma_crossover", "ma_crossover:1:100000"):
        assert check_strategy(good) == good
    cases = {
        "moon": "--strategy: unknown strategy 'moon'; one of always_flat, buy_and_hold, ma_crossover, "
        "ma_crossover:FAST:SLOW",
        "ma_crossover:fast": "--strategy: 'ma_crossover:fast': write ma_crossover:FAST:SLOW with FAST and SLOW whole "
        "bar counts",
        "ma_crossover:20:5": "--strategy: ma_crossover:20:5: FAST (20) must be at least 1 and smaller than SLOW (5), "
        "at most 100000 bars (the fast mean crosses the slow one)",
        "ma_crossover:1:100001": "--strategy: ma_crossover:1:100001: FAST (1) must be at least 1 and smaller than "
        "SLOW (100001), at most 100000 bars (the fast mean crosses the slow one)",
        "ma\x1b:1": "--strategy: unknown strategy 'ma\\x1b:1'; one of always_flat, buy_and_hold, ma_crossover, "
        "ma_crossover:FAST:SLOW",
    }
    for name, message in cases.items():
        with pytest.raises(UsageError) as info:
            check_strategy(name)
        assert str(info.value) == message


def test_tables_carry_utc_time_from_the_run_epoch():
    out = _core.sim_run("SOLUSDT", seed=2, hours=0.05, strategy="buy_and_hold")
    for table in ("trades", "book", "bars", "fills", "fair_value"):
        columns = out[table]
        assert len(columns["ts"]) > 0, table
        assert np.array_equal(columns["ts"], _core.SIM_EPOCH_NS + columns["ts_us"] * 1000), table
    report = out["strategy"]
    assert np.array_equal(report["equity_ts"], _core.SIM_EPOCH_NS + report["equity_ts_us"] * 1000)
    shifted = _core.sim_run("SOLUSDT", seed=2, hours=0.05, strategy="buy_and_hold", epoch_ns=7_000_000_000)
    assert np.array_equal(shifted["trades"]["ts"], 7_000_000_000 + out["trades"]["ts_us"] * 1000)
    assert np.array_equal(shifted["trades"]["price"], out["trades"]["price"]), "the epoch only labels time"


@pytest.mark.parametrize("bar_seconds", [60, 20])
def test_bar_turnover_is_the_sum_of_price_times_size_per_bar(bar_seconds):
    """Against the Python computation it replaced (trades bucketed by bar open, price * size summed)."""
    import polars as pl

    out = _core.sim_run("ETHUSDT", seed=9, hours=0.1, bar_seconds=bar_seconds)
    t, k = out["trades"], out["bars"]
    bucket_ns = bar_seconds * 1_000_000_000
    trades = pl.DataFrame({"ts": t["ts"], "price": t["price"], "size": t["size"]})
    old = (
        trades.with_columns(bucket=pl.col("ts") - pl.col("ts") % bucket_ns)
        .group_by("bucket")
        .agg((pl.col("price") * pl.col("size")).sum().alias("turnover"))
    )
    bars = pl.DataFrame({"ts": k["ts"], "turnover": k["turnover"]})
    joined = bars.join(old, left_on="ts", right_on="bucket", how="left", suffix="_old").with_columns(
        pl.col("turnover_old").fill_null(0.0)
    )
    assert joined.height == round(0.1 * 3600 / bar_seconds)
    assert (joined["turnover"] > 0).sum() > joined.height // 2
    np.testing.assert_allclose(joined["turnover"], joined["turnover_old"], rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["simulate", "--dsg", "{missing}"], "omit --dsg to use the built-in DSG"),
        (["evolve", "--features", "{features}", "--dsg", "{missing}"], "--dsg default uses the built-in DSG"),
        (["chimera", "--target", "{data}", "--init", "{missing}"], "omit --init to start from the built-in DSG"),
    ],
    ids=["simulate", "evolve", "chimera"],
)
def test_a_missing_dsg_file_says_how_that_command_gets_the_built_in_one(tiny, tmp_path, args, hint):
    """Omitting evolve's --dsg turns dual fitness off rather than using the built-in DSG, and chimera's option is
    --init: each command's hint is its own."""
    from tests.conftest import run_here

    missing = tmp_path / "nope.json"
    filled = [a.format(missing=missing, features=tiny.features, data=tiny.data) for a in args]
    ran = run_here(*filled, "-o", str(tmp_path / "out"))
    assert ran.code == 2, ran.stderr
    assert ran.stderr.strip().endswith(f"{missing}: no such DSG file ({hint})"), ran.stderr


def test_options_that_act_only_with_another_are_noted_when_ignored(tiny, tmp_path):
    """`--rv-bars` without `--tree`, `--strategy` beside `--tree`, `--sim-seeds` without `--dsg`: the run goes on
    (the option changes nothing) and says so, instead of ignoring it without a word."""
    from tests.conftest import run_here

    cases = [
        (
            ["simulate", "--hours", "0.02", "--rv-bars", "5"],
            "note: --rv-bars: only used with --tree, which is not given",
        ),
        (
            ["simulate", "--hours", "0.02", "--tree", str(tiny.tree), "--strategy", "buy_and_hold"],
            "note: --strategy is ignored: --tree trades the tree instead",
        ),
        (
            ["evolve", "--features", str(tiny.features), "--pop", "8", "--gens", "1", "--sim-seeds", "3"],
            "note: --sim-seeds: only used with --dsg, which is not given; ignored",
        ),
    ]
    for number, (args, note) in enumerate(cases):
        ran = run_here(*args, "-o", str(tmp_path / str(number)))
        assert ran.code == 0, ran.stderr
        assert note in ran.stderr, ran.stderr
    quiet = run_here(
        "simulate", "--hours", "0.02", "--tree", str(tiny.tree), "--rv-bars", "5", "-o", str(tmp_path / "q")
    )
    assert quiet.code == 0, quiet.stderr
    assert "note:" not in quiet.stderr


def test_a_hall_of_fame_tree_trades_on_the_bars_its_index_records(tmp_path):
    """evolve records the bars of its table beside the trees; simulate --tree takes them (given options win, with a
    note), so the tree reads rv as it learned it and decides once per bar of that length."""
    from tests.conftest import run_here

    hall = tmp_path / "hall_of_fame"
    hall.mkdir()
    tree = _tree_file(hall, {"feature": "rv"}, ["rv"], name="001.json")
    bars = {"bar_seconds": 300, "options": {"rv_bars": 10, "vmd_modes": 3, "vmd_window": 16}}
    index = {"schema": "apex.hall_of_fame", "version": 1, "symbol": "BTCUSDT", "features": ["rv"], "bars": bars}
    (hall / "index.json").write_text(json.dumps(index | {"entries": []}))
    ran = run_here("simulate", "--tree", str(tree), "--hours", "1", "-o", str(tmp_path / "five"))
    assert ran.code == 0, ran.stderr
    assert (
        f"note: the tree trades on 5m bars, as {hall / 'index.json'} records; features with rv_bars 10, " in ran.stderr
    )
    equity = io.read_table(tmp_path / "five" / "equity.parquet", EQUITY)
    assert equity.frame.height == 12, "one decision per 5m bar"
    assert equity.metadata["apex.params"] | bars["options"] == equity.metadata["apex.params"]
    assert equity.metadata["apex.params"]["bar_seconds"] == 300
    ran = run_here("simulate", "--tree", str(tree), "--hours", "1", "--rv-bars", "20", "-o", str(tmp_path / "rv20"))
    assert ran.code == 0, ran.stderr
    assert f"note: --rv-bars 20 differs from the 10 the tree was evolved with ({hall / 'index.json'})" in ran.stderr
    assert io.read_table(tmp_path / "rv20" / "fills.parquet", FILLS).metadata["apex.params"]["rv_bars"] == 20
    index["bars"]["bar_seconds"] = 7
    (hall / "index.json").write_text(json.dumps(index | {"entries": []}))
    ran = run_here("simulate", "--tree", str(tree), "--hours", "1", "-o", str(tmp_path / "bad"))
    assert ran.code == 2, ran.stderr
    assert ran.stderr.startswith(f'apexctl: error: {hall / "index.json"}: "bars": bar_seconds must be'), ran.stderr
    assert not (tmp_path / "bad").exists()
