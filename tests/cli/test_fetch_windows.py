"""`fetch --source file` spools each input's book and trades to disk as it parses it and merges the inputs a time
window at a time: the table is the one the inputs parsed whole and sorted together give, and errors still name files
and rows."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apexctl import _core
from apexctl.errors import DataError, InputError
from apexctl.forge import bybit_archive, fetch, time_windows
from apexctl.forge.bybit_archive import MAX_CSV_LINE_BYTES, lines_to_frames, parse_derivatives_csv, parse_input
from apexctl.forge.fetch import FileFetch, fetch_files
from apexctl.forge.io import open_table, read_table
from apexctl.forge.table_checks import repeated_trades
from apexctl.forge.time_windows import row_groups
from apexctl.schemas.tables import BOOK, TRADES
from tests.cli.test_fetch import DERIV_HEADER

START_MS = 1_733_011_200_000


def messages(symbol: str, count: int, offset_ms: int, seed: int) -> list[dict]:
    """An ob200-like stream of `symbol`: a snapshot, then deltas of 0-4 levels a side every 100 ms."""
    rng = np.random.default_rng(seed)

    def levels(base: float, step: float, n: int) -> list[list[str]]:
        return [
            [f"{base + step * int(k):.1f}", str(int(q))]
            for k, q in zip(rng.integers(0, 30, n), rng.integers(0, 9, n), strict=True)
        ]

    out = []
    for i in range(count):
        kind = "snapshot" if i == 0 else "delta"
        nb, na = (10, 10) if i == 0 else rng.integers(0, 5, 2)
        data = {"s": symbol, "b": levels(99.9, -0.1, nb), "a": levels(100.0, 0.1, na), "u": i + 1, "seq": 1000 + i}
        out.append(
            {"topic": f"orderbook.200.{symbol}", "type": kind, "ts": START_MS + offset_ms + 100 * i, "data": data}
        )
    return out


def archive(path: Path, stream: list[dict]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as handle:
        handle.writestr(path.name.removesuffix(".zip"), "".join(json.dumps(m) + "\n" for m in stream))
    return path


def merged_reference(streams: list[list[dict]]) -> pl.DataFrame:
    """Every input parsed whole, concatenated in input order and sorted by time, stably: the table of before."""
    frames = []
    for stream in streams:
        data = "".join(json.dumps(m) + "\n" for m in stream).encode()
        frames.append(lines_to_frames(_core.bybit_parse_lines(data, first_line=1))[0])
    return pl.concat(frames).sort("ts", maintain_order=True)


def assert_fetch_gives(tmp_path: Path, paths: list[Path], kind: str, expected: pl.DataFrame) -> Path:
    """Fetches `paths` (in `tmp_path`) into one table, asserts it is `expected` and that nothing else is left beside
    the inputs; returns the table's path."""
    out = tmp_path / f"{kind}.parquet"
    assert fetch_files(FileFetch([str(p) for p in paths], str(out))) == (kind, expected.height)
    assert read_table(out, BOOK if kind == "book" else TRADES).frame.equals(expected, null_equal=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([p.name for p in paths] + [out.name])
    return out


def assert_fetch_refused(tmp_path: Path, paths: list[Path], match: str) -> None:
    """Fetching `paths` (in `tmp_path`) fails with an InputError matching `match` and leaves nothing beside them."""
    with pytest.raises(InputError, match=match):
        fetch_files(FileFetch([str(p) for p in paths], str(tmp_path / "out.parquet")))
    assert sorted(tmp_path.iterdir()) == sorted(paths)


@pytest.fixture
def inputs(tmp_path):
    """Three archives: two overlapping pieces of one BTCUSDT recording (the overlap held twice, identically) and an
    ETHUSDT recording whose times fall between theirs, so the merge interleaves all three."""
    btc = messages("BTCUSDT", 400, 0, seed=1)
    streams = [btc[:260], btc[200:], messages("ETHUSDT", 300, 50, seed=2)]
    paths = [archive(tmp_path / f"{i}_ob200.data.zip", s) for i, s in enumerate(streams)]
    return paths, streams


@pytest.mark.parametrize(("chunk_bytes", "window_rows"), [(None, None), (4096, 64), (1500, 1)])
def test_the_table_is_the_inputs_parsed_whole_and_merged(tmp_path, monkeypatch, inputs, chunk_bytes, window_rows):
    paths, streams = inputs
    if chunk_bytes is not None:
        monkeypatch.setattr(bybit_archive, "CHUNK_BYTES", chunk_bytes)
        monkeypatch.setattr(time_windows, "WINDOW_ROWS", window_rows)
    out = assert_fetch_gives(tmp_path, paths, "book", merged_reference(streams))
    if chunk_bytes is not None:
        assert pq.ParquetFile(out).metadata.num_row_groups > 5  # the run really went window by window


def test_two_sources_in_a_late_window_are_named_and_nothing_is_left(tmp_path, monkeypatch, inputs):
    paths, streams = inputs
    changed = json.loads(json.dumps(streams[0]))
    late = changed[-3]  # inside the overlap with the second input, near the end of the first
    late["data"]["b"].append(["1.0", "7"])
    paths[0] = archive(paths[0], changed)
    monkeypatch.setattr(bybit_archive, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(time_windows, "WINDOW_ROWS", 64)
    assert_fetch_refused(tmp_path, paths, f"^{paths[0]} and {paths[1]} hold book message {late['data']['u']} of BTC")


def test_a_bad_time_in_a_late_chunk_is_named_by_its_row_in_the_input(tmp_path, monkeypatch):
    stream = messages("BTCUSDT", 300, 0, seed=3)
    stream[-20]["ts"] = 1_000  # 1970: a time in seconds or a broken recorder, not a market's
    path = archive(tmp_path / "bad_ob200.data.zip", stream)
    row = merged_reference([stream[:-20]]).height
    monkeypatch.setattr(bybit_archive, "CHUNK_BYTES", 2048)
    out = tmp_path / "book.parquet"
    with pytest.raises(
        DataError,
        match=rf"^{path} \(book rows parsed from it\): column 'ts' row {row} \(and 5 more rows\): 1000000000 ns",
    ):
        fetch_files(FileFetch([str(path)], str(out)))
    assert list(tmp_path.iterdir()) == [path]


def test_row_groups_from_statistics_are_those_read_from_the_rows(tmp_path):
    stream = messages("BTCUSDT", 200, 0, seed=4)
    frame = merged_reference([stream])
    spans = []
    for statistics in (True, False):
        path = tmp_path / f"stats-{statistics}.parquet"
        with pq.ParquetWriter(path, frame.head(0).to_arrow().schema, write_statistics=statistics) as writer:
            for start in range(0, frame.height, 97):
                writer.write_table(frame.slice(start, 97).to_arrow())
        spans.append(row_groups(open_table(path, BOOK)))
    assert spans[0] == spans[1]
    assert len(spans[0]) == -(-frame.height // 97)
    assert spans[0][1].first_row == 97
    assert spans[0][-1].last_ts == frame["ts"].max()


def trade_csv(path: Path, rows: list[tuple[float, str, str, float, float, str]]) -> Path:
    """A Bybit derivatives trade CSV.gz of (seconds, symbol, side, size, price, id), newest first as Bybit's are."""
    lines = [
        f"{t:.4f},{s},{side},{q},{p},ZeroPlusTick,{i},{int(q * p * 1e8)},{q},{q * p}" for t, s, side, q, p, i in rows
    ]
    path.write_bytes(gzip.compress(("\n".join([DERIV_HEADER, *reversed(lines)]) + "\n").encode()))
    return path


def trades_of(symbol: str, count: int, start_s: float, seed: int) -> list[tuple[float, str, str, float, float, str]]:
    """`count` trades of `symbol` from `start_s`, a third of them at the time of the one before (one taker order
    filling several makers), so windows are cut between trades that share a time only if they can be."""
    rng = np.random.default_rng(seed)
    gaps = np.where(rng.random(count) < 0.33, 0.0, rng.integers(1, 2000, count) / 1000)
    times = start_s + np.cumsum(gaps)
    sides = rng.choice(["Buy", "Sell"], count)
    sizes = rng.integers(1, 50, count) / 1000
    prices = 100 + rng.integers(-50, 50, count) / 10
    return [
        (float(t), symbol, str(s), float(q), float(p), f"{symbol[:3].lower()}-{n}")
        for n, (t, s, q, p) in enumerate(zip(times, sides, sizes, prices, strict=True))
    ]


def trades_reference(paths: list[Path]) -> pl.DataFrame:
    """Every input parsed whole, concatenated in input order, sorted by time stably, each trade's first row kept:
    the table of before."""
    frames = []
    for path in paths:
        with open(path, "rb") as handle:
            frames.append(parse_input(handle, str(path), path.stat().st_size).trades)
    table = pl.concat(frames).sort("ts", maintain_order=True)
    return table.filter(~repeated_trades(table))


@pytest.fixture
def trade_inputs(tmp_path):
    """Two BTCUSDT days that overlap by 120 trades (one file's ids go on in the next) and an ETHUSDT file whose times
    fall among theirs."""
    btc = trades_of("BTCUSDT", 700, 1_733_011_200.0, seed=5)
    streams = [btc[:420], btc[300:], trades_of("ETHUSDT", 500, 1_733_011_500.0, seed=6)]
    return [trade_csv(tmp_path / f"{n}.csv.gz", s) for n, s in enumerate(streams)], streams


@pytest.mark.parametrize(("group_rows", "window_rows"), [(None, None), (64, 100), (7, 1)])
def test_trades_are_the_inputs_parsed_whole_merged_and_kept_once(
    tmp_path, monkeypatch, trade_inputs, group_rows, window_rows
):
    paths, _ = trade_inputs
    if group_rows is not None:
        monkeypatch.setattr(fetch, "_TRADE_GROUP_ROWS", group_rows)
        monkeypatch.setattr(time_windows, "WINDOW_ROWS", window_rows)
    expected = trades_reference(paths)
    assert expected.height == 700 + 500
    out = assert_fetch_gives(tmp_path, paths, "trades", expected)
    if group_rows is not None:
        assert pq.ParquetFile(out).metadata.num_row_groups > 5  # the run really went window by window


def test_one_trade_id_twice_in_windows_far_apart_is_named(tmp_path, monkeypatch, trade_inputs):
    paths, streams = trade_inputs
    later = list(streams[2])
    t, _, side, size, price, _ = later[-1]
    later[-1] = (t, "BTCUSDT", side, size, price, "btc-3")  # an early BTC id again, near the end of the run
    paths[2] = trade_csv(paths[2], later)
    monkeypatch.setattr(fetch, "_TRADE_GROUP_ROWS", 64)
    monkeypatch.setattr(time_windows, "WINDOW_ROWS", 100)
    assert_fetch_refused(tmp_path, paths, f"^{paths[0]} and {paths[2]} hold trade btc-3 of BTCUSDT twice with differ")


@settings(max_examples=40, deadline=None)
@given(chunk_bytes=st.integers(1, 3000), count=st.integers(0, 120), seed=st.integers(0, 2**16), crlf=st.booleans())
def test_a_trade_csv_read_a_chunk_at_a_time_is_the_csv_parsed_whole(tmp_path_factory, chunk_bytes, count, seed, crlf):
    path = trade_csv(tmp_path_factory.mktemp("csv") / "t.csv.gz", trades_of("BTCUSDT", count, 1_733_011_200.0, seed))
    text = gzip.decompress(path.read_bytes())
    if crlf:
        text = text.replace(b"\n", b"\r\n")
    whole = parse_derivatives_csv(text, str(path))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bybit_archive, "CHUNK_BYTES", chunk_bytes)
        parsed = parse_input(io.BytesIO(text), str(path), len(text))
    assert parsed.trades is not None
    assert parsed.trades.equals(whole)
    assert parsed.lines == count


@pytest.mark.parametrize("chunk_bytes", [None, 700])
def test_a_bad_value_or_line_in_a_late_chunk_is_named_by_its_line_in_the_file(tmp_path, monkeypatch, chunk_bytes):
    rows = trades_of("BTCUSDT", 200, 1_733_011_200.0, seed=7)
    if chunk_bytes is not None:
        monkeypatch.setattr(bybit_archive, "CHUNK_BYTES", chunk_bytes)
    # Rows are written newest first: row 20 from the end is line 2 + 19 = 21 counting the header as line 1.
    t, symbol, side, size, _, trade_id = rows[-20]
    rows[-20] = (t, symbol, side, size, -5.0, trade_id)
    path = trade_csv(tmp_path / "bad.csv.gz", rows)
    assert_fetch_refused(tmp_path, [path], rf"^{path}: line 21: column 'price' holds '-5.0', expected a positive")
    text = gzip.decompress(trade_csv(path, trades_of("BTCUSDT", 200, 1_733_011_200.0, seed=7)).read_bytes())
    text = text.splitlines(keepends=True)
    text[150] = b"1733011200.0,BTCUSDT,Buy," + b"9" * (70 << 10) + b"\n"
    path.write_bytes(gzip.compress(b"".join(text)))
    assert_fetch_refused(tmp_path, [path], rf"^{path}: line 151 is longer than 64 kB; not a Bybit trade CSV$")


@settings(max_examples=100, deadline=None)
@given(
    lengths=st.lists(st.sampled_from([0, 5, *(MAX_CSV_LINE_BYTES + d for d in (-1, 0, 1))]), min_size=1, max_size=6),
    newline_at_end=st.booleans(),
)
def test_the_first_long_line_is_the_one_a_split_into_lines_finds(lengths, newline_at_end):
    data = b"\n".join(b"x" * n for n in lengths) + (b"\n" if newline_at_end else b"")
    expected = next((n for n, line in enumerate(data.split(b"\n")) if len(line) > MAX_CSV_LINE_BYTES), None)
    assert bybit_archive._first_long_line(data) == expected
