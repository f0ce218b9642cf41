"""`fetch --source file` spools each input's book to disk as it parses it and merges the inputs a time window at a
time: the table is the one the inputs parsed whole and sorted together give, and errors still name files and rows."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from apexctl import _core
from apexctl.errors import DataError, InputError
from apexctl.forge import book_windows, bybit_archive
from apexctl.forge.book_windows import row_groups
from apexctl.forge.bybit_archive import lines_to_frames
from apexctl.forge.fetch import FileFetch, fetch_files
from apexctl.forge.io import open_table, read_table
from apexctl.schemas.tables import BOOK

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
        monkeypatch.setattr(book_windows, "WINDOW_ROWS", window_rows)
    out = tmp_path / "book.parquet"
    kind, rows = fetch_files(FileFetch([str(p) for p in paths], str(out)))
    expected = merged_reference(streams)
    table = read_table(out, BOOK)
    assert (kind, rows) == ("book", expected.height)
    assert table.frame.equals(expected, null_equal=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([p.name for p in paths] + ["book.parquet"])
    if chunk_bytes is not None:
        assert pq.ParquetFile(out).metadata.num_row_groups > 5  # the run really went window by window


def test_two_sources_in_a_late_window_are_named_and_nothing_is_left(tmp_path, monkeypatch, inputs):
    paths, streams = inputs
    changed = json.loads(json.dumps(streams[0]))
    late = changed[-3]  # inside the overlap with the second input, near the end of the first
    late["data"]["b"].append(["1.0", "7"])
    paths[0] = archive(paths[0], changed)
    monkeypatch.setattr(bybit_archive, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(book_windows, "WINDOW_ROWS", 64)
    out = tmp_path / "book.parquet"
    with pytest.raises(InputError, match=f"^{paths[0]} and {paths[1]} hold book message {late['data']['u']} of BTC"):
        fetch_files(FileFetch([str(p) for p in paths], str(out)))
    assert sorted(tmp_path.iterdir()) == sorted(paths)


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
