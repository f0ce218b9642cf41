"""Bad rows and metadata in the tables commands read: one error line naming the file and the row or key, exit 2,
nothing written, never a traceback nor an allocation sized by a stray timestamp."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from apexctl.forge import features, io
from apexctl.schemas import BARS, BOOK, FEATURES, TRADES
from tests.cli.test_evolve import bars_with_signal
from tests.conftest import run_here

MINUTE = 60 * 10**9
#: 2025-09-01 00:00 UTC, in nanoseconds.
START = 1_756_684_800 * 10**9
DERIV_HEADER = "timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional"


def one_error(ran) -> str:
    """The run failed with exit 2 and printed exactly one line, an error; that line."""
    assert ran.code == 2, ran.stderr
    assert "Traceback" not in ran.stderr
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1, ran.stderr
    assert lines[0].startswith("apexctl: error: "), ran.stderr
    return lines[0]


def trades(ts: list[int] | np.ndarray, symbol: str = "BTCUSDT", first_id: int = 0) -> pl.DataFrame:
    n = len(ts)
    return pl.DataFrame(
        {
            "ts": np.asarray(ts, dtype=np.int64),
            "symbol": [symbol] * n,
            "side": np.where(np.arange(n) % 2 == 0, 1, -1).astype(np.int8),
            "price": 100.0 + np.arange(n, dtype=np.float64) % 7,
            "size": np.full(n, 0.5),
            "trade_id": [f"t{first_id + i}" for i in range(n)],
        }
    )


def set_row(frame: pl.DataFrame, column: str, row: int, value: object) -> pl.DataFrame:
    """`frame` with `column` holding `value` at `row`."""
    return frame.with_columns(frame[column].clone().scatter(row, value))


def write_trades(path: Path, frame: pl.DataFrame) -> Path:
    io.write_table(frame, path, schema=TRADES, producer="test")
    return path


# ----------------------------------------------------------------------------------------- timestamps (finding 1)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("1756684800100", "expected seconds since the epoch within 2009-01-03 .. 2100-01-01 UTC"),
        ("17566848001000000000000000", "expected seconds since the epoch within 2009-01-03 .. 2100-01-01 UTC"),
        ("12.5", "expected seconds since the epoch within 2009-01-03"),
    ],
)
def test_fetch_refuses_a_trade_csv_timestamp_outside_the_window(tmp_path, line, expected):
    csv = tmp_path / "BTCUSDT2025-09-01.csv"
    csv.write_text(f"{DERIV_HEADER}\n1756684800.1,BTCUSDT,Buy,0.01,108000.5,PlusTick,abc,1,0.01,1080\n"
                   f"{line},BTCUSDT,Sell,0.02,108000.0,MinusTick,abd,1,0.02,2160\n")  # fmt: skip
    out = tmp_path / "t.parquet"
    message = one_error(run_here("fetch", str(csv), "-o", str(out)))
    assert f"{csv}: line 3: column 'timestamp' holds '{line}', {expected}" in message
    assert not out.exists()


def test_fetch_names_the_unit_a_misread_timestamp_is_probably_in(tmp_path):
    csv = tmp_path / "BTCUSDT2025-09-01.csv"
    csv.write_text(f"{DERIV_HEADER}\n1756684800100,BTCUSDT,Sell,0.02,108000.0,MinusTick,abd,1,0.02,2160\n")
    assert one_error(run_here("fetch", str(csv), "-o", str(tmp_path / "t.parquet"))).endswith(
        "; a count of milliseconds?"
    )
    spot = tmp_path / "BTCUSDT_2025-09-01.csv"
    spot.write_text("id,timestamp,price,volume,side\n1,1756684800000,108000,0.1,buy\n2,1756684800,108000,0.1,sell\n")
    message = one_error(run_here("fetch", str(spot), "-o", str(tmp_path / "s.parquet")))
    assert f"{spot}: line 3: column 'timestamp' holds '1756684800', expected milliseconds" in message
    assert message.endswith("; a count of seconds?")


@pytest.mark.parametrize("bad", [-1, 2**62, 4_102_444_800 * 10**9])
def test_features_refuses_a_timestamp_outside_the_window_before_building_bars(tmp_path, bad):
    ts = START + np.arange(200, dtype=np.int64) * 10**9
    ts[120:125] = bad
    path = write_trades(tmp_path / "trades.parquet", trades(ts))
    out = tmp_path / "f.parquet"
    message = one_error(run_here("features", str(path), "--grain", "1m", "-o", str(out)))
    assert f"{path}: column 'ts' row 120 (and 4 more rows): {bad} ns is " in message
    assert "outside the accepted window 1970-01-01 .. 2100-01-01 UTC" in message
    assert not out.exists()


def test_evolve_refuses_a_features_table_with_a_timestamp_outside_the_window(tmp_path):
    frame = bars_with_signal(100, edge=0.003, seed=1)
    frame = frame.with_columns(ts=pl.when(pl.int_range(pl.len()) == 7).then(-5).otherwise(pl.col("ts")))
    path = tmp_path / "f.parquet"
    io.write_table(frame, path, schema=FEATURES, producer="test")
    message = one_error(run_here("evolve", "--features", str(path), "--pop", "8", "--gens", "1", "-o",
                                 str(tmp_path / "e")))  # fmt: skip
    assert f"{path}: column 'ts' row 7: -5 ns is 1969-12-31 23:59:59 UTC, outside the accepted window" in message
    assert not (tmp_path / "e").exists()


def test_a_bar_grid_larger_than_the_bound_is_refused_naming_the_ends(tmp_path):
    """Five years between two trades of one symbol are 2.6 million 1m bars: refused before Rust allocates them
    (a stray timestamp in the data made it allocate until killed)."""
    first = write_trades(tmp_path / "a.parquet", trades([START]))
    last = write_trades(tmp_path / "b.parquet", trades([START + 5 * 365 * 1440 * MINUTE, START + 1], first_id=1))
    out = tmp_path / "f.parquet"
    message = one_error(run_here("features", str(first), str(last), "--grain", "1m", "-o", str(out)))
    assert "--grain 1m would build 2,628,001 bars, more than the 2,000,000 one run makes" in message
    assert f"symbol BTCUSDT alone spans 2025-09-01 00:00:00 UTC ({first}: trades table, row 0) to 2030-08-31" in message
    assert f"({last}: trades table, row 0)" in message
    assert not out.exists()


def test_the_bar_grid_bound_counts_bars_of_the_grain_over_all_symbols(tmp_path, monkeypatch):
    monkeypatch.setattr(features, "MAX_BAR_ROWS", 10)
    frame = pl.concat([trades([START, START + 5 * MINUTE]), trades([START, START + 4 * MINUTE], symbol="ETHUSDT")])
    path = write_trades(tmp_path / "t.parquet", frame)
    message = one_error(run_here("features", str(path), "--grain", "1m", "-o", str(tmp_path / "f.parquet")))
    assert "would build 11 bars, more than the 10 one run makes: symbol BTCUSDT alone spans" in message
    assert run_here("features", str(path), "--grain", "5m", "-o", str(tmp_path / "f.parquet")).code == 0


# ------------------------------------------------------------------------------------ apex.params (finding 2)


@pytest.fixture
def bar_features(tmp_path) -> Path:
    path = tmp_path / "features.parquet"
    io.write_table(bars_with_signal(200, edge=0.003, seed=1), path, schema=FEATURES, producer="test",
                   params={"rv_bars": 30, "vmd_modes": 3, "vmd_window": 64})  # fmt: skip
    return path


def with_params(path: Path, raw: bytes) -> Path:
    table = pq.read_table(path)
    metadata = dict(table.schema.metadata)
    metadata[io.META_PARAMS.encode()] = raw
    pq.write_table(table.replace_schema_metadata(metadata), path)
    return path


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"rv_bars": null}', "entry 'rv_bars': expected a whole number from 1 to 10000, got null"),
        (b'{"rv_bars": "abc"}', "entry 'rv_bars': expected a whole number from 1 to 10000, got \"abc\""),
        (b'{"rv_bars": 1e400}', "entry 'rv_bars': expected a whole number from 1 to 10000, got Infinity"),
        (b'{"rv_bars": 30.0}', "entry 'rv_bars': expected a whole number from 1 to 10000, got 30.0"),
        (b'{"rv_bars": true}', "entry 'rv_bars': expected a whole number from 1 to 10000, got true"),
        (b'{"rv_bars": -5}', "entry 'rv_bars': -5 is out of range: expected a whole number from 1 to 10000"),
        (b'{"rv_bars": 99999999999999999999}', "entry 'rv_bars': 99999999999999999999 is out of range"),
        (b'{"vmd_modes": 99}', "entry 'vmd_modes': 99 is out of range: expected a whole number from 0 to 16"),
        (b'{"vmd_modes": 16, "vmd_window": 4}', "entries 'vmd_modes' and 'vmd_window': --vmd-window must be"),
        (b'"abc"', 'holds "abc", expected a JSON object'),
        (b"[30]", "holds [30], expected a JSON object"),
    ],
)
def test_evolve_checks_every_value_of_the_apex_params_metadata(bar_features, tmp_path, raw, expected):
    path = with_params(bar_features, raw)
    for extra in ([], ["--dsg", "default", "--sim-hours", "0.05"]):
        out = tmp_path / "e"
        message = one_error(run_here("evolve", "--features", str(path), "--pop", "8", "--gens", "1", *extra, "-o",
                                     str(out)))  # fmt: skip
        assert f"{path}: metadata key 'apex.params'" in message
        assert expected in message
        assert not out.exists()


def test_evolve_takes_the_defaults_for_feature_options_the_metadata_does_not_record(bar_features, tmp_path):
    path = with_params(bar_features, b'{"grain": "1m"}')
    assert run_here("evolve", "--features", str(path), "--pop", "8", "--gens", "1", "-o", str(tmp_path / "e")).code == 0


# ----------------------------------------------------------------------------- the file in messages (finding 3)


def two_symbol_features(tmp_path: Path, change) -> Path:
    """A features table of SYNUSDT then ETHUSDT rows, ETHUSDT's bars changed by `change` (frame -> frame)."""
    syn = bars_with_signal(120, edge=0.003, seed=1)
    eth = change(bars_with_signal(120, edge=0.003, seed=2).with_columns(symbol=pl.lit("ETHUSDT")))
    path = tmp_path / "two.parquet"
    io.write_table(pl.concat([syn, eth]), path, schema=FEATURES, producer="test")
    return path


def evolve_eth(path: Path, tmp_path: Path) -> str:
    return one_error(run_here("evolve", "--features", str(path), "--symbol", "ETHUSDT", "--pop", "8", "--gens", "1",
                              "-o", str(tmp_path / "e")))  # fmt: skip


def test_evolve_names_the_file_and_its_row_of_an_unusable_price(tmp_path):
    path = two_symbol_features(tmp_path, lambda f: set_row(f, "close", 10, float("inf")))
    message = evolve_eth(path, tmp_path)
    assert f"{path}: row 130 (symbol ETHUSDT): column 'close' holds inf, expected a finite positive price" in message


def test_evolve_says_a_features_table_without_rows_has_none(tmp_path):
    path = tmp_path / "empty.parquet"
    io.write_table(bars_with_signal(120, edge=0.003, seed=1).clear(), path, schema=FEATURES, producer="test")
    message = evolve_eth(path, tmp_path)
    assert message == f"apexctl: error: {path}: the features table has no rows; evolve needs bars of one symbol"


def test_evolve_says_repeated_for_two_bars_at_one_time(tmp_path):
    path = two_symbol_features(tmp_path, lambda f: set_row(f, "ts", 1, f["ts"][0]))
    message = evolve_eth(path, tmp_path)
    assert f"{path}: row 121 (symbol ETHUSDT): column 'ts': repeated timestamp" in message
    assert "also at row 120" in message
    assert "earlier" not in message
    assert "sort" not in message


def test_evolve_names_the_file_of_bars_whose_high_and_low_do_not_contain_the_close(tmp_path):
    path = two_symbol_features(tmp_path, lambda f: set_row(f, "high", 3, 1.0))
    assert f"{path}: row 123 (symbol ETHUSDT): high 1.0 and low" in evolve_eth(path, tmp_path)


def test_features_names_the_file_and_its_own_row_of_a_bad_value(tmp_path):
    """Two files interleaved in time: the row reported is the file's, not one of the sorted concatenation."""
    first = write_trades(tmp_path / "a.parquet", trades(START + np.arange(50, dtype=np.int64) * 2 * 10**9))
    frame = trades(START + 10**9 + np.arange(50, dtype=np.int64) * 2 * 10**9, first_id=50)
    second = write_trades(tmp_path / "b.parquet", set_row(frame, "price", 7, float("nan")))
    out = tmp_path / "f.parquet"
    message = one_error(run_here("features", str(first), str(second), "--grain", "1m", "-o", str(out)))
    assert f"{second}: trades table, row 7: column 'price' holds NaN, expected a finite positive price" in message
    assert not out.exists()


def test_features_says_repeated_for_two_klines_of_a_symbol_at_one_time(tmp_path):
    bars = pl.DataFrame(
        {
            "ts": [START, START, START + MINUTE, START + MINUTE],
            "symbol": ["BTCUSDT", "ETHUSDT", "ETHUSDT", "ETHUSDT"],
            "interval": ["1"] * 4,
            "open": [10.0] * 4,
            "high": [11.0] * 4,
            "low": [9.0] * 4,
            "close": [10.5] * 4,
            "volume": [1.0] * 4,
            "turnover": [10.0] * 4,
        },
        schema=BARS.polars_schema(),
    )
    path = tmp_path / "k.parquet"
    io.write_table(bars, path, schema=BARS, producer="test")
    message = one_error(run_here("features", str(path), "--grain", "5m", "-o", str(tmp_path / "f.parquet")))
    assert f"{path}: bars table, row 3: repeated timestamp: symbol ETHUSDT has a bar at ts {START + MINUTE}" in message
    assert f"already (at {path}: bars table, row 2)" in message
    assert "earlier" not in message


def test_features_names_the_file_and_row_of_a_book_kind_it_does_not_know(tmp_path):
    book = pl.DataFrame(
        {
            "ts": [START, START + 1],
            "symbol": ["BTCUSDT"] * 2,
            "kind": ["snapshot", "replace"],
            "side": pl.Series([1, -1], dtype=pl.Int8),
            "price": [100.0, 101.0],
            "size": [1.0, 1.0],
            "update_id": [1, 2],
            "seq": [1, 2],
        }
    )
    path = tmp_path / "b.parquet"
    io.write_table(book, path, schema=BOOK, producer="test")
    message = one_error(run_here("features", str(path), "-o", str(tmp_path / "f.parquet")))
    assert f"{path}: book table, row 1: column 'kind' holds 'replace', expected 'snapshot' or 'delta'" in message
    # A level at a price <= 0 or of a negative size is damage, not a crossed book to flag as out of sequence.
    for column, value, expected in (("price", -5.0, "a positive price"), ("size", -1.0, "a size >= 0")):
        damaged = book.with_columns(kind=pl.lit("snapshot"), **{column: pl.Series([1.0, value])})
        io.write_table(damaged, path, schema=BOOK, producer="test")
        message = one_error(run_here("features", str(path), "-o", str(tmp_path / "f.parquet")))
        assert f"{path}: book table, row 1: column '{column}' holds {value}, expected {expected}" in message


def test_messages_quote_metadata_without_control_characters(bar_features, tmp_path):
    path = with_params(bar_features, json.dumps({"rv_bars": "\x1b[2J"}).encode())
    message = one_error(run_here("evolve", "--features", str(path), "-o", str(tmp_path / "e")))
    assert "\x1b" not in message
    assert 'got "\\u001b[2J"' in message


@pytest.mark.parametrize("command", ["features", "evolve"])
def test_a_table_with_a_repeated_column_name_is_one_line_naming_the_column(tmp_path, command):
    """A Parquet file (written by pyarrow) with two 'close' columns gave polars' DuplicateError traceback, exit 1."""
    frame = bars_with_signal(120, edge=0.003, seed=1)
    if command == "features":  # a bars table
        frame = frame.with_columns(turnover=pl.col("close") * pl.col("volume")).select(BARS.column_names)
    arrow = frame.to_arrow()
    path = tmp_path / "twice.parquet"
    pq.write_table(arrow.append_column("close", arrow["close"]), path)
    args = ["--grain", "1m"] if command == "features" else ["--pop", "8", "--gens", "1"]
    first = "--features" if command == "evolve" else None
    message = one_error(run_here(command, *([first] if first else []), str(path), *args, "-o", str(tmp_path / "o")))
    assert message == (
        f"apexctl: error: {path}: column 'close' appears 2 times; a table's column names must be unique (re-write the "
        "file with one column of each name)"
    )
