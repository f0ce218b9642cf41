"""Artifact I/O: metadata round trip, atomic writes, and clear errors for wrong schemas and corrupt files."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apexctl.errors import InputError, SchemaError
from apexctl.forge import io
from apexctl.schemas import BOOK, TRADES


def trades_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": [1, 2],
            "symbol": ["BTCUSDT", "BTCUSDT"],
            "side": [1, -1],
            "price": [100.5, 100.0],
            "size": [0.1, 0.2],
            "trade_id": ["a", "b"],
        }
    )


def test_round_trip_keeps_provenance(tmp_path):
    out = tmp_path / "t.parquet"
    io.write_table(trades_frame(), out, schema=TRADES, producer="fetch", inputs={"x.csv": "ab"}, params={"k": 1})
    table = io.read_table(out, TRADES)
    assert table.frame["side"].dtype == pl.Int8
    assert table.metadata[io.META_SCHEMA] == {"name": "trades", "version": 1}
    assert table.metadata[io.META_PRODUCER]["command"] == "fetch"
    assert table.metadata[io.META_INPUTS] == {"x.csv": "ab"}
    assert table.metadata[io.META_PARAMS] == {"k": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_wrong_table_kind_is_named(tmp_path):
    out = tmp_path / "t.parquet"
    io.write_table(trades_frame(), out, schema=TRADES, producer="test")
    with pytest.raises(SchemaError, match=r"t.parquet: holds a 'trades' table, expected 'book'"):
        io.read_table(out, BOOK)


def test_newer_version_is_refused(tmp_path):
    out = tmp_path / "t.parquet"
    arrow = (
        trades_frame()
        .to_arrow()
        .replace_schema_metadata({io.META_SCHEMA: json.dumps({"name": "trades", "version": 99})})
    )
    pq.write_table(arrow, out)
    with pytest.raises(SchemaError, match="schema version 99"):
        io.read_table(out, TRADES)


def test_missing_column_and_nulls(tmp_path):
    out = tmp_path / "t.parquet"
    pq.write_table(trades_frame().drop("price").to_arrow(), out)
    with pytest.raises(SchemaError, match="missing column 'price'"):
        io.read_table(out, TRADES)
    with_null = trades_frame().with_columns(pl.Series("price", [1.0, None]))
    pq.write_table(with_null.to_arrow(), out)
    with pytest.raises(SchemaError, match="'price' has 1 null values \\(first at row 1\\)"):
        io.read_table(out, TRADES)


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match=r"bad\.parquet: not a readable Parquet file"):
        io.read_table(bad, TRADES)
    with pytest.raises(InputError, match="no such file"):
        io.read_table(tmp_path / "absent.parquet", TRADES)


def test_failed_write_leaves_nothing(tmp_path):
    out = tmp_path / "t.parquet"

    class Boom(Exception):
        pass

    def write_then_fail() -> None:
        with io.atomic_output(out) as handle:
            handle.write(b"partial")
            raise Boom

    with pytest.raises(Boom):
        write_then_fail()
    assert list(tmp_path.iterdir()) == []


def test_a_table_written_in_pieces_is_the_table_written_whole(tmp_path):
    frame = pl.concat([trades_frame()] * 5).with_columns(ts=pl.int_range(10, dtype=pl.Int64))
    provenance = {"producer": "fetch", "inputs": {"x": "ab"}, "params": {"k": 1}, "extra": {"apex.instruments": {}}}
    io.write_table(frame, tmp_path / "whole.parquet", schema=TRADES, **provenance)
    with io.table_pieces(tmp_path / "pieces.parquet", schema=TRADES, **provenance) as write:
        for piece in (frame[:3], frame[3:3], frame[3:]):
            write(piece)
    whole = io.read_table(tmp_path / "whole.parquet", TRADES)
    pieces = io.read_table(tmp_path / "pieces.parquet", TRADES)
    assert pieces.frame.equals(whole.frame)
    assert pieces.metadata == whole.metadata
    assert pq.ParquetFile(tmp_path / "pieces.parquet").num_row_groups == 3

    with io.table_pieces(tmp_path / "none.parquet", schema=TRADES, producer="fetch"):
        pass
    empty = io.read_table(tmp_path / "none.parquet", TRADES).frame
    assert empty.height == 0
    assert empty.schema == whole.frame.schema

    class Interrupted(Exception):
        pass

    def write_then_fail() -> None:
        with io.table_pieces(tmp_path / "failed.parquet", schema=TRADES, producer="fetch") as write:
            write(frame)
            raise Interrupted

    with pytest.raises(Interrupted):
        write_then_fail()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["none.parquet", "pieces.parquet", "whole.parquet"]


def test_a_piece_that_fails_on_the_writing_thread_fails_the_table(tmp_path, monkeypatch):
    """Pieces are encoded on a thread of their own: the error of one comes out of the `write` after it (or the end of
    the block), and no file is left."""
    frame = pl.concat([trades_frame()] * 3).with_columns(ts=pl.int_range(6, dtype=pl.Int64))
    encode = pq.ParquetWriter.write_table
    calls = []

    def full_disk(self: pq.ParquetWriter, table: pa.Table, *args: object, **kwargs: object) -> None:
        calls.append(table.num_rows)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        encode(self, table, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full_disk)
    written = []

    def write_pieces() -> None:
        with io.table_pieces(tmp_path / "t.parquet", schema=TRADES, producer="fetch") as write:
            for piece in (frame[:2], frame[2:4], frame[4:], frame[4:]):
                write(piece)
                written.append(piece.height)

    with pytest.raises(OSError, match="No space left"):
        write_pieces()
    assert written == [2, 2]  # the third `write` raised the second piece's error
    assert list(tmp_path.iterdir()) == []


def test_the_table_is_closed_only_after_the_piece_in_flight(tmp_path, monkeypatch):
    """The caller failing while a piece is still being encoded: the file is closed (and removed) after that piece,
    never under it."""
    encode, close = pq.ParquetWriter.write_table, pq.ParquetWriter.close
    events = []

    def slow(self: pq.ParquetWriter, table: pa.Table, *args: object, **kwargs: object) -> None:
        if events:  # the file is open (the first piece made it); the second piece takes its time
            time.sleep(0.3)
        encode(self, table, *args, **kwargs)
        events.append("written")

    def closing(self: pq.ParquetWriter) -> None:
        events.append("closed")
        close(self)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", slow)
    monkeypatch.setattr(pq.ParquetWriter, "close", closing)

    class Failed(Exception):
        pass

    def write_then_fail() -> None:
        with io.table_pieces(tmp_path / "t.parquet", schema=TRADES, producer="fetch") as write:
            write(trades_frame())
            write(trades_frame())
            raise Failed

    with pytest.raises(Failed):
        write_then_fail()
    assert events == ["written", "written", "closed"]
    assert list(tmp_path.iterdir()) == []


def test_a_table_read_by_row_groups_is_the_table_and_errors_name_file_rows(tmp_path):
    frame = pl.concat([trades_frame()] * 5).with_columns(ts=pl.int_range(10, dtype=pl.Int64))
    with io.table_pieces(tmp_path / "t.parquet", schema=TRADES, producer="fetch") as write:
        for piece in (frame[:3], frame[3:3], frame[3:7], frame[7:]):
            write(piece)
    file = io.open_table(tmp_path / "t.parquet", TRADES)
    assert (file.rows, file.group_rows()) == (10, [3, 0, 4, 3])
    whole = file.read()
    assert whole.equals(frame)
    assert whole.n_chunks("all") == [1] * whole.width  # copied into one piece per column
    assert file.read([2], columns=["ts", "price"], first_row=3).equals(frame[3:7].select("ts", "price"))
    assert file.read([], columns=["ts"]).schema == pl.Schema({"ts": pl.Int64})

    nulls = frame.with_columns(price=pl.when(pl.col("ts") == 5).then(None).otherwise(pl.col("price")))
    pq.write_table(nulls.to_arrow(), tmp_path / "n.parquet", row_group_size=3)
    with pytest.raises(SchemaError, match=r"column 'price' has 1 null values \(first at row 5\)"):
        io.open_table(tmp_path / "n.parquet", TRADES).read([1], first_row=3)
    late = frame.with_columns(ts=pl.when(pl.col("ts") == 8).then(-1).otherwise(pl.col("ts")))
    pq.write_table(late.to_arrow(), tmp_path / "l.parquet", row_group_size=3)
    with pytest.raises(InputError, match=r"column 'ts' row 8: -1 ns"):
        io.open_table(tmp_path / "l.parquet", TRADES).read([2], first_row=6)


def test_row_groups_are_read_in_the_order_asked_and_from_threads_at_once(tmp_path):
    frame = pl.concat([trades_frame()] * 6).with_columns(ts=pl.int_range(12, dtype=pl.Int64))
    pq.write_table(frame.to_arrow(), tmp_path / "t.parquet", row_group_size=3)
    file = io.open_table(tmp_path / "t.parquet", TRADES)
    assert file.read([3, 0, 1]).equals(pl.concat([frame[9:], frame[:6]]))
    assert file.read([1, 2]).n_chunks("all") == [1] * frame.width

    wanted = [frame[3 * g : 3 * g + 3] for g in range(4)] * 25
    got: list[pl.DataFrame | None] = [None] * len(wanted)

    def read(indices: range) -> None:
        for i in indices:
            got[i] = file.read([i % 4], first_row=3 * (i % 4))

    # The read-ahead reads the next window's groups on another thread while this one's are read.
    threads = [threading.Thread(target=read, args=(range(k, len(wanted), 2),)) for k in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(g is not None and g.equals(w) for g, w in zip(got, wanted, strict=True))


@pytest.mark.parametrize("change", ["replaced", "rewritten", "removed"])
def test_a_table_changed_after_it_was_opened_is_refused_not_mixed(tmp_path, change):
    """Rows are read after the footer and the hash: a file replaced (a later `fetch` renaming its output over it) or
    rewritten in place meanwhile would mix two tables' rows under the first one's provenance."""
    path = tmp_path / "t.parquet"
    io.write_table(trades_frame(), path, schema=TRADES, producer="fetch")
    file = io.open_table(path, TRADES)
    later = trades_frame().with_columns(price=pl.col("price") + 1)
    if change == "removed":
        path.unlink()
        with pytest.raises(InputError, match=r"t\.parquet: changed while apexctl was reading it \(removed\)"):
            file.read()
        return
    if change == "replaced":
        io.write_table(later, path, schema=TRADES, producer="fetch")
    else:
        data = path.read_bytes()
        with open(path, "r+b") as handle:
            handle.write(data)
        os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 1_000_000))
    with pytest.raises(InputError, match=r"t\.parquet: changed while apexctl was reading it"):
        file.read()
    assert io.open_table(path, TRADES).read().equals(later if change == "replaced" else trades_frame())


def test_a_table_from_a_pipe_is_read_once(tmp_path):
    """A named pipe (what `<(zstdcat t.parquet.zst)` passes) can be read once only: it is held like stdin."""
    io.write_table(trades_frame(), tmp_path / "t.parquet", schema=TRADES, producer="fetch")
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    feeder = threading.Thread(target=lambda: pipe.write_bytes((tmp_path / "t.parquet").read_bytes()))
    feeder.start()

    def unblock() -> None:  # a reader opening the pipe a second time gets end-of-file instead of waiting forever
        with contextlib.suppress(OSError):
            os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))

    watchdog = threading.Timer(10, unblock)
    watchdog.start()
    try:
        table = io.read_table(pipe, TRADES)
    finally:
        watchdog.cancel()
    feeder.join(timeout=10)
    assert table.frame.equals(trades_frame())
    assert table.sha256 == io.sha256_file(tmp_path / "t.parquet")


def test_foreign_file_without_metadata_is_accepted_when_columns_fit(tmp_path):
    out = tmp_path / "t.parquet"
    pq.write_table(pa.table({c: trades_frame()[c].to_arrow() for c in trades_frame().columns}), out)
    assert io.read_table(out, [BOOK, TRADES]).schema_name == "trades"


_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.floats(allow_nan=True, allow_infinity=True).map(np.float64),
    st.floats(width=32, allow_nan=True, allow_infinity=True).map(np.float32),
    st.integers(min_value=-(2**31), max_value=2**31).map(np.int64),
    st.booleans().map(np.bool_),
    st.text(max_size=3).map(lambda name: Path("/data") / name),
)
_documents = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=4), inner, max_size=4),
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=4), _documents, max_size=4))
def test_dumps_string_keyed_writes_what_dumps_writes(doc):
    assert io.dumps_string_keyed(doc) == io.dumps(doc)


class _ShortWrites:
    """A stream whose every write takes at most `chunk` bytes, and none once `closed_after` bytes are in (a pipe
    whose reader left, as CPython's buffered writer reports it with SIGPIPE ignored: a short count, no error)."""

    def __init__(self, chunk: int, closed_after: int | None = None) -> None:
        self.chunk, self.closed_after, self.data, self.flushed = chunk, closed_after, bytearray(), False

    def write(self, view) -> int:
        room = len(view) if self.closed_after is None else max(0, self.closed_after - len(self.data))
        taken = bytes(view[: min(self.chunk, room)])
        self.data += taken
        return len(taken)

    def flush(self) -> None:
        self.flushed = True


def test_stdout_output_writes_every_byte_or_reports_the_broken_pipe():
    data = bytes(range(256)) * 1000
    stream = _ShortWrites(chunk=65536)
    io._write_all(stream, data)
    assert bytes(stream.data) == data
    assert stream.flushed
    with pytest.raises(BrokenPipeError):
        io._write_all(_ShortWrites(chunk=65536, closed_after=65536), data)


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 9), min_size=1, max_size=6),
    picks=st.lists(st.integers(0, 10**6), max_size=20),
)
def test_rows_taken_by_number_are_those_rows_of_the_table_in_the_order_asked(tmp_path_factory, sizes, picks):
    rows = sum(sizes)
    frame = pl.DataFrame(
        {
            "ts": np.arange(rows, dtype=np.int64) + 1_700_000_000_000_000_000,
            "symbol": ["BTCUSDT"] * rows,
            "side": [1] * rows,
            "price": np.arange(rows, dtype=np.float64) + 100.0,
            "size": [1.0] * rows,
            "trade_id": [f"t{n}" for n in range(rows)],
        },
        schema=TRADES.polars_schema(),
    )
    path = tmp_path_factory.mktemp("take") / "trades.parquet"
    with io.table_pieces(path, schema=TRADES, producer="test") as write:
        start = 0
        for size in sizes:
            write(frame.slice(start, size))
            start += size
    wanted = np.array([p % rows for p in picks], dtype=np.int64)  # any order, repeats allowed
    taken = io.open_table(path, TRADES).take(wanted, ["trade_id", "price"])
    assert taken.equals(frame.select("trade_id", "price")[wanted])
