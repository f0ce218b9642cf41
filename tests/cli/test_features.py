"""`apexctl features` end to end, and apex-features through _core against small independent Python references."""

from __future__ import annotations

import io as stdio
import json
import math

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apexctl import _core
from apexctl.errors import DataError
from apexctl.forge import features as feature_run
from apexctl.forge import io
from apexctl.forge.features import UPDATE_LEADING, book_arrays
from apexctl.schemas import BARS, BOOK, FEATURES, TRADES
from tests.conftest import DATA as DATA_DIR
from tests.conftest import run_cli
from tests.support.market_fixture import minute_bars, synthetic_market

MINUTE = 60 * 10**9


def book_from_messages(messages: list[dict]) -> pl.DataFrame:
    """The `book` table of V5 orderbook messages (one row per level, a marker row for a message without levels)."""
    rows = []
    for m in messages:
        data = m["data"]
        levels = [(1, p, s) for p, s in data["b"]] + [(-1, p, s) for p, s in data["a"]]
        for side, price, size in levels or [(0, None, None)]:
            rows.append(
                {
                    "ts": m["ts"] * 1_000_000,
                    "symbol": data["s"],
                    "kind": m["type"],
                    "side": side,
                    "price": None if price is None else float(price),
                    "size": None if size is None else float(size),
                    "update_id": data["u"],
                    "seq": data["seq"],
                }
            )
    return pl.DataFrame(rows, schema=BOOK.polars_schema())


def trades_from_messages(messages: list[dict]) -> pl.DataFrame:
    rows = [
        {
            "ts": t["T"] * 1_000_000,
            "symbol": t["s"],
            "side": 1 if t["S"] == "Buy" else -1,
            "price": float(t["p"]),
            "size": float(t["v"]),
            "trade_id": t["i"],
        }
        for m in messages
        for t in m["data"]
    ]
    return pl.DataFrame(rows, schema=TRADES.polars_schema())


@pytest.fixture
def spot(bybit_data):
    return json.loads((bybit_data / "tardis" / "bybit_v5_spot_messages.json").read_text())


def test_update_grain_on_real_orderbook50_messages(tmp_path, spot):
    book = book_from_messages([m for m in spot if m["topic"] == "orderbook.50.BTCUSDT"])
    io.write_table(book, tmp_path / "book.parquet", schema=BOOK, producer="test")
    out = tmp_path / "f.parquet"
    result = run_cli("features", str(tmp_path / "book.parquet"), "-o", str(out), "--grain", "update")
    assert result.returncode == 0, result.stderr.decode()
    table = io.read_table(out, FEATURES)
    frame = table.frame
    assert frame.columns[: len(UPDATE_LEADING)] == UPDATE_LEADING
    assert table.metadata[io.META_SCHEMA] == {"name": "features", "version": 1}
    assert table.metadata[io.META_PARAMS]["grain"] == "update"
    assert frame.height == 2
    snap, delta = frame.row(0, named=True), frame.row(1, named=True)
    assert (snap["best_bid"], snap["best_ask"]) == (28162.57, 28162.58)
    assert snap["mid"] == pytest.approx(28162.575)
    assert snap["spread"] == pytest.approx(0.01)
    assert snap["microprice"] == pytest.approx((28162.57 * 0.506829 + 28162.58 * 0.07562) / (0.07562 + 0.506829))
    assert snap["pressure_5"] == pytest.approx((0.07562 - 0.506829) / (0.07562 + 0.506829))
    assert math.isnan(snap["ofi_l1"]), "the first snapshot has no state before it"
    # The delta adds a second bid level (0.177474) and deletes two absent levels: level 1 unchanged, level 2 +size.
    assert delta["ofi_l1"] == 0.0
    assert delta["ofi_2"] == pytest.approx(0.177474)
    assert delta["ofi_l5"] == pytest.approx(0.177474)
    assert delta["pressure_5"] == pytest.approx((0.07562 + 0.177474 - 0.506829) / (0.07562 + 0.177474 + 0.506829))
    assert delta["update_id"] == 59438061


def test_gap_is_noted_and_its_rows_are_nan(tmp_path, spot):
    messages = [m for m in spot if m["topic"] == "orderbook.50.BTCUSDT"]
    gapped = json.loads(json.dumps(messages[1]))
    gapped["data"]["u"] += 5
    book = book_from_messages([*messages, gapped])
    io.write_table(book, tmp_path / "b.parquet", schema=BOOK, producer="test")
    result = run_cli("features", str(tmp_path / "b.parquet"), "-o", "-")
    assert result.returncode == 0, result.stderr.decode()
    assert "1 book messages were out of sequence" in result.stderr.decode()
    mid = pl.read_parquet(stdio.BytesIO(result.stdout))["mid"].to_list()
    assert not math.isnan(mid[1])
    assert math.isnan(mid[2])


def test_orderbook1_delta_ofi_is_the_bid_size_change(spot):
    book = book_from_messages([m for m in spot if m["topic"] == "orderbook.1.BTCUSDT"])
    arrays = _core.features_update(book_arrays(book, np.zeros(book.height, dtype=np.uint32)))
    assert arrays["ofi_l1"][1] == pytest.approx(0.166754 - 0.175231)


@st.composite
def book_streams(draw):
    """A snapshot and in-sequence deltas; prices in cents around 100.00 (bids below, asks above), sizes in lots."""
    messages = []
    for i in range(draw(st.integers(1, 12))):
        bids = draw(st.dictionaries(st.integers(9_990, 9_999), st.integers(0 if i else 1, 30), max_size=6))
        asks = draw(st.dictionaries(st.integers(10_001, 10_010), st.integers(0 if i else 1, 30), max_size=6))
        messages.append({"kind": "snapshot" if i == 0 else "delta", "u": 100 + i, "bids": bids, "asks": asks})
    return messages


def python_reference(messages):
    """Dict books; OFI per level from sorted lists, missing levels handled case by case; pressure over top n."""
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    before = None
    out = []
    for m in messages:
        if m["kind"] == "snapshot":
            bids, asks = {}, {}
        for side, levels in ((bids, m["bids"]), (asks, m["asks"])):
            for price, size in levels.items():
                if size == 0:
                    side.pop(price, None)
                else:
                    side[price] = size
        b = sorted(bids.items(), reverse=True)
        a = sorted(asks.items())
        if not b or not a:
            out.append(None)
            before = None
            continue
        row = {}
        for n in (1, 5, 10):
            vb, va = sum(q for _, q in b[:n]), sum(q for _, q in a[:n])
            row[f"pressure_{n}"] = (vb - va) / (vb + va)
        row["microprice"] = (b[0][0] * a[0][1] + a[0][0] * b[0][1]) / (a[0][1] + b[0][1]) / 100
        if before is not None:
            b0, a0 = before
            total = 0
            for m_ in range(5):
                e = 0
                nb, ob = (b[m_] if m_ < len(b) else None), (b0[m_] if m_ < len(b0) else None)
                na, oa = (a[m_] if m_ < len(a) else None), (a0[m_] if m_ < len(a0) else None)
                if nb and ob:
                    e += (nb[1] if nb[0] >= ob[0] else 0) - (ob[1] if nb[0] <= ob[0] else 0)
                else:
                    e += (nb[1] if nb else 0) - (ob[1] if ob else 0)
                if na and oa:
                    e += (oa[1] if na[0] >= oa[0] else 0) - (na[1] if na[0] <= oa[0] else 0)
                else:
                    e += (oa[1] if oa else 0) - (na[1] if na else 0)
                row[f"ofi_{m_ + 1}"] = e
                total += e
            row["ofi_l5"] = total
        before = (b, a)
        out.append(row)
    return out


def stream_columns(messages) -> dict[str, np.ndarray]:
    rows = []
    for i, m in enumerate(messages):
        levels = [(1, p, q) for p, q in m["bids"].items()] + [(-1, p, q) for p, q in m["asks"].items()]
        for side, p, q in levels or [(0, None, None)]:
            rows.append((i, 0 if m["kind"] == "snapshot" else 1, side, p, q, m["u"]))
    return {
        "ts": np.array([r[0] for r in rows], dtype=np.int64),
        "symbol": np.zeros(len(rows), dtype=np.uint32),
        "kind": np.array([r[1] for r in rows], dtype=np.uint8),
        "side": np.array([r[2] for r in rows], dtype=np.int8),
        "price": np.array([np.nan if r[3] is None else r[3] / 100 for r in rows]),
        "size": np.array([np.nan if r[4] is None else float(r[4]) for r in rows]),
        "update_id": np.array([r[5] for r in rows], dtype=np.int64),
        "seq": np.array([r[0] for r in rows], dtype=np.int64),
    }


@settings(max_examples=150, deadline=None)
@given(book_streams())
def test_ofi_and_pressure_match_python_reference(messages):
    got = _core.features_update(stream_columns(messages), price_decimals=2, qty_decimals=0)
    expected = python_reference(messages)
    for i, row in enumerate(expected):
        if row is None:
            assert math.isnan(got["mid"][i])
            assert math.isnan(got["pressure_5"][i])
            continue
        for name, value in row.items():
            assert got[name][i] == pytest.approx(value, rel=1e-12, abs=1e-12), (i, name)
        if "ofi_l5" not in row:
            assert math.isnan(got["ofi_l5"][i])


def synthetic_trades(n: int = 400, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    ts = 1_700_000_000 * 10**9 + np.cumsum(rng.integers(0, 4 * 10**9, n))
    return pl.DataFrame(
        {
            "ts": ts,
            "symbol": rng.choice(["BTCUSDT", "ETHUSDT"], n),
            "side": rng.choice([1, -1], n).astype(np.int8),
            "price": np.round(100 + rng.normal(0, 1, n).cumsum() * 0.1, 1),
            "size": rng.integers(1, 1000, n) / 1000,
            "trade_id": [str(i) for i in range(n)],
        },
        schema=TRADES.polars_schema(),
    )


def test_trade_grain_tfi_matches_quadratic_reference(tmp_path):
    trades = synthetic_trades(150)
    io.write_table(trades, tmp_path / "t.parquet", schema=TRADES, producer="test")
    out = tmp_path / "f.parquet"
    result = run_cli(
        "features", str(tmp_path / "t.parquet"), "-o", str(out), "--grain", "trade", "--tfi-windows", "5s,1m"
    )
    assert result.returncode == 0, result.stderr.decode()
    frame = io.read_table(out, FEATURES).frame
    assert frame.columns == ["ts", "symbol", "signed_volume", "tfi_5s", "tfi_1m"]
    rows = trades.rows(named=True)
    for i, r in enumerate(rows):
        for name, w in (("tfi_5s", 5 * 10**9), ("tfi_1m", MINUTE)):
            window = [x for x in rows[: i + 1] if x["symbol"] == r["symbol"] and x["ts"] > r["ts"] - w]
            expected = sum(x["side"] * x["size"] for x in window) / sum(x["size"] for x in window)
            assert frame[name][i] == pytest.approx(expected, abs=1e-12)
        assert frame["signed_volume"][i] == r["side"] * r["size"]


@pytest.mark.parametrize("piece_rows", [1, 7, 64])
def test_trade_grain_written_a_piece_at_a_time_is_the_grain_computed_whole(tmp_path, monkeypatch, piece_rows):
    trades = synthetic_trades(150)
    io.write_table(trades, tmp_path / "t.parquet", schema=TRADES, producer="test")
    config = feature_run.FeatureConfig(grain=feature_run.Grain.trade, tfi_windows=("5s", "1m"))
    feature_run.run([str(tmp_path / "t.parquet")], str(tmp_path / "whole.parquet"), config)
    monkeypatch.setattr(feature_run, "_TRADE_PIECE_ROWS", piece_rows)
    written = feature_run.run([str(tmp_path / "t.parquet")], str(tmp_path / "pieces.parquet"), config)
    assert (written.rows, written.columns) == (150, 5)
    pieces = io.read_table(tmp_path / "pieces.parquet", FEATURES).frame
    assert pieces.equals(io.read_table(tmp_path / "whole.parquet", FEATURES).frame, null_equal=True)
    assert pq.ParquetFile(tmp_path / "pieces.parquet").metadata.num_row_groups == -(-150 // piece_rows)


def test_bar_grain_from_trades_with_book_and_mtfa(tmp_path, spot):
    trades = synthetic_trades()
    io.write_table(trades, tmp_path / "t.parquet", schema=TRADES, producer="test")
    out = tmp_path / "f.parquet"
    result = run_cli("features", str(tmp_path / "t.parquet"), "-o", str(out), "--grain", "1m", "--rv-bars", "5")
    assert result.returncode == 0, result.stderr.decode()
    frame = io.read_table(out, FEATURES).frame
    assert frame.columns[:3] == ["ts", "symbol", "interval"]
    assert {"clv_5m", "ret_5m", "rv_5m", "close_15m", "rv_1h"} <= set(frame.columns)
    assert (frame["ts"] % MINUTE == 0).all()
    reference = minute_bars(trades).rename({"ts": "bar"})
    joined = reference.join(frame, left_on=["symbol", "bar"], right_on=["symbol", "ts"], suffix="_got")
    assert joined.height == reference.height
    for c in ("open", "high", "low", "close", "volume"):
        assert np.allclose(joined[c].to_numpy(), joined[f"{c}_got"].to_numpy())
    assert (joined["n"].cast(pl.Float64) == joined["n_trades"]).all()
    clv = ((joined["close"] - joined["low"]) - (joined["high"] - joined["close"])) / (joined["high"] - joined["low"])
    clv = clv.fill_nan(0.0).fill_null(0.0)
    assert np.allclose(clv.to_numpy(), joined["clv"].to_numpy())
    # MTFA: the 5m columns on a row equal the 5m bar that closed at or before the row's close.
    five = run_cli("features", str(tmp_path / "t.parquet"), "-o", "-", "--grain", "5m", "--rv-bars", "5")
    bars5 = pl.read_parquet(stdio.BytesIO(five.stdout))
    row = frame.filter(pl.col("symbol") == "BTCUSDT").row(12, named=True)
    close_time = row["ts"] + MINUTE
    last_closed = close_time - close_time % (5 * MINUTE) - 5 * MINUTE
    ref5 = bars5.filter((pl.col("symbol") == "BTCUSDT") & (pl.col("ts") == last_closed)).row(0, named=True)
    assert (row["close_5m"], row["clv_5m"]) == (ref5["close"], ref5["clv"])
    no_mtfa = run_cli("features", str(tmp_path / "t.parquet"), "-o", "-", "--grain", "1m", "--no-mtfa")
    assert "clv_5m" not in pl.read_parquet(stdio.BytesIO(no_mtfa.stdout)).columns


def test_bar_grain_with_book_aggregates_and_klines(tmp_path, spot):
    book = book_from_messages([m for m in spot if m["topic"] == "orderbook.50.BTCUSDT"])
    trades = trades_from_messages([m for m in spot if m["topic"] == "publicTrade.BTCUSDT"])
    io.write_table(book, tmp_path / "b.parquet", schema=BOOK, producer="test")
    io.write_table(trades, tmp_path / "t.parquet", schema=TRADES, producer="test")
    paths = [str(tmp_path / "b.parquet"), str(tmp_path / "t.parquet")]
    result = run_cli("features", *paths, "-o", str(tmp_path / "f.parquet"), "--grain", "1m")
    assert result.returncode == 0, result.stderr.decode()
    frame = io.read_table(tmp_path / "f.parquet", FEATURES).frame
    assert {"ofi_l1_sum", "ofi_l5_sum", "pressure_5_last", "spread_bps_mean"} <= set(frame.columns)
    assert frame["ofi_l5_sum"][0] == pytest.approx(0.177474)
    klines = pl.DataFrame(
        {
            "ts": [0, MINUTE, 2 * MINUTE, 5 * MINUTE],
            "symbol": ["SOLUSDT"] * 4,
            "interval": ["1"] * 4,
            "open": [10.0, 11.0, 12.0, 13.0],
            "high": [11.0, 13.0, 12.5, 14.0],
            "low": [9.0, 10.5, 11.0, 12.0],
            "close": [11.0, 12.0, 11.5, 13.5],
            "volume": [1.0, 2.0, 3.0, 4.0],
            "turnover": [10.0, 20.0, 30.0, 40.0],
        },
        schema=BARS.polars_schema(),
    )
    io.write_table(klines, tmp_path / "k.parquet", schema=BARS, producer="test")
    result = run_cli("features", str(tmp_path / "k.parquet"), "-o", "-", "--grain", "5m")
    assert result.returncode == 0, result.stderr.decode()
    bars = pl.read_parquet(stdio.BytesIO(result.stdout))
    assert bars["ts"].to_list() == [0, 5 * MINUTE]
    assert bars["high"].to_list() == [13.0, 14.0]
    assert bars["close"].to_list() == [11.5, 13.5]
    assert bars["ret"][1] == pytest.approx(math.log(13.5 / 11.5))


def test_stdin_to_stdout(tmp_path, spot):
    book = book_from_messages([m for m in spot if m["topic"] == "orderbook.50.BTCUSDT"])
    io.write_table(book, tmp_path / "b.parquet", schema=BOOK, producer="test")
    result = run_cli("features", "-", "-o", "-", stdin=(tmp_path / "b.parquet").read_bytes())
    assert result.returncode == 0, result.stderr.decode()
    assert pl.read_parquet(stdio.BytesIO(result.stdout)).height == 2


def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path):
    trades = synthetic_trades(20)
    io.write_table(trades, tmp_path / "t.parquet", schema=TRADES, producer="test")
    io.write_table(trades.select("ts", "symbol"), tmp_path / "feat.parquet", schema=FEATURES, producer="test")
    bad = trades.with_columns(price=pl.when(pl.col("trade_id") == "7").then(float("nan")).otherwise(pl.col("price")))
    io.write_table(bad, tmp_path / "nan.parquet", schema=TRADES, producer="test")
    out = tmp_path / "out.parquet"
    cases = [
        ((str(tmp_path / "t.parquet"),), "needs a 'book' table"),
        ((str(tmp_path / "missing.parquet"),), "no such file"),
        ((str(tmp_path / "feat.parquet"),), "holds a 'features' table"),
        ((str(tmp_path / "nan.parquet"), "--grain", "1m"), "row 7: column 'price' holds NaN"),
    ]
    for args, message in cases:
        result = run_cli("features", *args, "-o", str(out))
        stderr = result.stderr.decode()
        assert result.returncode == 2, stderr
        assert message in stderr, stderr
        assert len(stderr.strip().splitlines()) == 1, stderr
        assert not out.exists()
        assert not list(tmp_path.glob(".out.parquet.*"))


def test_two_spellings_of_one_tfi_window_exit_2_naming_both(tmp_path):
    io.write_table(synthetic_trades(20), tmp_path / "t.parquet", schema=TRADES, producer="test")
    out = tmp_path / "out.parquet"
    for windows, message in (
        ("500ms,90s,60s,1h,1d,3600s", "--tfi-windows: 1h and 3600s are the same window"),
        ("1s, 1000ms", "--tfi-windows: 1s and 1000ms are the same window"),
        ("1m,5s,60s", "--tfi-windows: 1m and 60s are the same window"),
    ):
        result = run_cli(
            "features", str(tmp_path / "t.parquet"), "-o", str(out), "--grain", "trade", "--tfi-windows", windows
        )
        stderr = result.stderr.decode()
        assert result.returncode == 2, stderr
        assert stderr.strip().splitlines() == [f"apexctl: error: {message}"], stderr
        assert not out.exists()
    # Distinct durations keep one column each, in the order given.
    result = run_cli(
        "features",
        str(tmp_path / "t.parquet"),
        "-o",
        str(out),
        "--grain",
        "trade",
        "--tfi-windows",
        "90s,500ms,1h,1d,36h",
    )
    assert result.returncode == 0, result.stderr.decode()
    assert io.read_table(out, FEATURES).frame.columns[3:] == ["tfi_90s", "tfi_500ms", "tfi_1h", "tfi_1d", "tfi_36h"]


def test_binding_errors_are_data_errors():
    book = stream_columns([{"kind": "snapshot", "u": 1, "bids": {100: 1}, "asks": {101: 1}}])
    book["price"][0] = np.nan
    with pytest.raises(DataError, match="row 0: column 'price'"):
        _core.features_update(book)
    trades = {"ts": np.array([1]), "symbol": np.zeros(1, np.uint32), "side": np.ones(1, np.int8)}
    with pytest.raises(DataError, match="TFI windows must be positive"):
        _core.TradeFeatureStream(windows_ns=[0], size_decimals=0)
    stream = _core.TradeFeatureStream(windows_ns=[1], size_decimals=0)
    with pytest.raises(DataError, match="row 0: column 'size'"):
        stream.push(trades | {"price": np.ones(1), "size": np.full(1, np.nan)})


def test_tick_size_from_recorded_instrument_info(tmp_path, spot):
    book = book_from_messages([m for m in spot if m["topic"] == "orderbook.50.BTCUSDT"])
    extra = {io.META_INSTRUMENTS: {"BTCUSDT": {"tick_size": "0.005", "qty_step": "0.000001"}}}
    io.write_table(book, tmp_path / "b.parquet", schema=BOOK, producer="test", extra=extra)
    result = run_cli("features", str(tmp_path / "b.parquet"), "-o", "-")
    assert result.returncode == 0, result.stderr.decode()
    frame = pl.read_parquet(stdio.BytesIO(result.stdout))
    assert frame["spread_ticks"].to_list() == [2.0, 2.0]
    assert frame["spread_bps"][0] == pytest.approx(0.01 / 28162.575 * 1e4)


def test_vmd_columns_are_rolling_vmd_of_each_symbols_closes(tmp_path):
    trades = synthetic_trades(900, seed=5)
    io.write_table(trades, tmp_path / "t.parquet", schema=TRADES, producer="test")
    args = ["features", str(tmp_path / "t.parquet"), "-o", "-", "--grain", "1m", "--no-mtfa"]
    result = run_cli(*args, "--vmd-modes", "2", "--vmd-window", "8")
    assert result.returncode == 0, result.stderr.decode()
    frame = pl.read_parquet(stdio.BytesIO(result.stdout))
    assert {"vmd_1", "vmd_2"} <= set(frame.columns)
    assert "vmd_3" not in frame.columns
    for symbol in ("BTCUSDT", "ETHUSDT"):
        rows = frame.filter(pl.col("symbol") == symbol).sort("ts")
        expected = _core.vmd_rolling(rows["close"].to_numpy(), modes=2, window=8)
        got = rows.select("vmd_1", "vmd_2").to_numpy()
        assert np.array_equal(np.isnan(expected), np.isnan(got))
        assert np.allclose(expected[7:], got[7:], rtol=0, atol=1e-12)
        assert np.isnan(got[:7]).all()
        assert np.isfinite(got[7:]).all()
    # A row's modes depend only on its own window: dropping later trades changes no earlier row.
    cut = trades.filter(pl.col("ts") < trades["ts"][600])
    io.write_table(cut, tmp_path / "cut.parquet", schema=TRADES, producer="test")
    early = run_cli(
        "features",
        str(tmp_path / "cut.parquet"),
        "-o",
        "-",
        "--grain",
        "1m",
        "--no-mtfa",
        "--vmd-modes",
        "2",
        "--vmd-window",
        "8",
    )
    early_frame = pl.read_parquet(stdio.BytesIO(early.stdout))
    last_full = early_frame["ts"].max() - MINUTE
    a = frame.filter(pl.col("ts") < last_full).sort("symbol", "ts").select("vmd_1", "vmd_2").to_numpy()
    b = early_frame.filter(pl.col("ts") < last_full).sort("symbol", "ts").select("vmd_1", "vmd_2").to_numpy()
    assert np.array_equal(a, b, equal_nan=True)
    off = run_cli(*args, "--vmd-modes", "0")
    assert "vmd_1" not in pl.read_parquet(stdio.BytesIO(off.stdout)).columns
    bad = run_cli(*args, "--vmd-modes", "3", "--vmd-window", "4")
    assert bad.returncode == 2
    assert b"--vmd-window" in bad.stderr


PINNED = DATA_DIR / "features_pinned"
#: name -> (input tables of the synthetic market, options); the expected outputs were written by `apexctl features`
#: when VMD was still joined in Python, so this pins that computing everything in Rust changed no value.
PINNED_CASES = {
    "trades_book_1m": (
        ("trades", "book"),
        ("--grain", "1m", "--rv-bars", "5", "--vmd-modes", "2", "--vmd-window", "8"),
    ),
    "trades_book_15m": (("trades", "book"), ("--grain", "15m", "--vmd-modes", "2", "--vmd-window", "4")),
    "trades_1m_no_mtfa": (("trades",), ("--grain", "1m", "--no-mtfa")),
    "klines_5m": (("klines",), ("--grain", "5m", "--rv-bars", "3", "--vmd-modes", "1", "--vmd-window", "4")),
}


def _bits(frame: pl.DataFrame) -> dict[str, list]:
    """Every column as exact values: floats by their bit patterns, so NaN == NaN and -0.0 != 0.0."""
    return {
        name: (
            frame[name].to_numpy().view(np.int64).tolist() if frame[name].dtype == pl.Float64 else frame[name].to_list()
        )
        for name in frame.columns
    }


@pytest.mark.parametrize("case", sorted(PINNED_CASES))
def test_bar_features_are_bit_identical_to_the_pinned_output(tmp_path, case):
    trades, book, klines = synthetic_market()
    tables = {"trades": (trades, TRADES), "book": (book, BOOK), "klines": (klines, BARS)}
    inputs, options = PINNED_CASES[case]
    paths = []
    for name in inputs:
        frame, schema = tables[name]
        io.write_table(frame, tmp_path / f"{name}.parquet", schema=schema, producer="test")
        paths.append(str(tmp_path / f"{name}.parquet"))
    result = run_cli("features", *paths, "-o", str(tmp_path / "out.parquet"), *options)
    assert result.returncode == 0, result.stderr.decode()
    got = io.read_table(tmp_path / "out.parquet", FEATURES).frame
    expected = pl.read_parquet(PINNED / f"{case}.parquet")
    assert got.schema == expected.schema
    assert _bits(got) == _bits(expected)
