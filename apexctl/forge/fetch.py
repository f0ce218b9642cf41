"""`apexctl fetch`: market data from Bybit archive files or the Bybit V5 API into `trades`/`book`/`bars` tables."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import numpy as np
import polars as pl

from apexctl.console import safe
from apexctl.errors import ApexError, InputError, UsageError
from apexctl.forge import bybit_api, outputs, ranges
from apexctl.forge.bybit_archive import BookSink, Parsed, parse_input, parse_lines_stream
from apexctl.forge.feedback import note, steps, wrote
from apexctl.forge.io import (
    STDIO,
    describe,
    existing_file,
    open_table,
    refuse_same_data,
    sha256_bytes,
    sha256_file,
    table_pieces,
    write_table,
    written_path,
)
from apexctl.forge.sim import DEFAULT_DEPTH, INSTRUMENTS, MarketSim, load_dsg, market_params, market_pieces
from apexctl.forge.table_checks import (
    TRADE_ID_KEY,
    book_message_named,
    check_timestamps,
    conflicting_book_messages,
    conflicting_trades,
    repeated_trades,
    trade_difference,
)
from apexctl.forge.time_windows import TableInput, TimeMerge, row_groups, shared_id_trades
from apexctl.schemas.tables import BARS, BOOK, TRADES, TableSchema

PRODUCER = "fetch"
#: Rows of a spooled input's trades row group: a merge window (`WINDOW_ROWS`) gathers a few.
_TRADE_GROUP_ROWS = 1 << 18


@dataclass
class FileFetch:
    """`fetch --source file`: archive files (or `-`) into one table."""

    paths: list[str]
    output: str
    kind: str | None = None
    symbol: str | None = None


@dataclass
class BybitFetch:
    """`fetch --source bybit`: klines over a time range and/or a WebSocket recording, into a folder."""

    symbols: list[str]
    category: str
    output: str
    start_ms: int | None = None
    end_ms: int | None = None
    interval: str = "1"
    record_ws: bool = False
    duration: float = 60.0
    depth: int = DEFAULT_DEPTH
    base_url: str = bybit_api.MAINNET_REST
    ws_url: str | None = None
    max_attempts: int = 5
    backoff: float = 0.5
    limit: int = 1000
    params: dict = field(default_factory=dict)


def _sort(frame: pl.DataFrame) -> pl.DataFrame:
    """Stable by time, so rows of one message and trades of one timestamp keep their file order."""
    return frame if frame["ts"].is_sorted() else frame.sort("ts", maintain_order=True)


def _read_input(path: str, symbol: str | None, advance, on_book: BookSink) -> tuple[Parsed, str]:
    name = describe(path)
    if path == STDIO:
        data = sys.stdin.buffer.read()
        if not data:
            raise InputError("stdin is empty: expected a Bybit trade CSV or order-book archive")
        parsed = parse_input(io.BytesIO(data), name, len(data), symbol=symbol, advance=advance, on_book=on_book)
        return parsed, sha256_bytes(data)
    p = existing_file(path, "a Bybit trade CSV(.gz) or order-book archive (.data.zip)")
    try:
        digest = sha256_file(p)
        with open(p, "rb") as handle:
            return parse_input(handle, name, p.stat().st_size, symbol=symbol, advance=advance, on_book=on_book), digest
    except OSError as exc:
        raise InputError(f"{p}: cannot read: {exc.strerror or exc}") from exc


@dataclass
class _Read:
    """What the inputs of `fetch --source file` held, spooled to disk: their trades (each input's sorted by time) and
    book rows; in memory only each spooled trade's TRADE_ID_KEY, for the check that spans the inputs."""

    trades: list[TableInput] = field(default_factory=list)
    trade_keys: list[pl.Series] = field(default_factory=list)
    books: list[TableInput] = field(default_factory=list)
    # Which input each row came from (its index in `sources`), to name the files of two rows that disagree.
    sources: list[str] = field(default_factory=list)
    kinds_of: dict[str, list[str]] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)


def _spool_folder(output: str) -> Path | None:
    """Where the parsed book waits to be merged: beside the output (the disk the user chose for it), or the system's
    temporary folder for stdout or an output folder still to be made."""
    if output == STDIO:
        return None
    folder = written_path(output).parent
    return folder if folder.is_dir() else None


def _read_inputs(config: FileFetch, spool: Path) -> _Read:
    """Parses every input; book rows are checked and written to `spool` a chunk at a time, an input's trades once it
    is parsed, so no more than one input's trades are held."""
    read = _Read()
    total = sum(os.path.getsize(p) for p in config.paths if p != STDIO and os.path.isfile(p))
    with steps("fetch", total or None) as bar:
        for path in config.paths:
            name, index = describe(path), len(read.sources)
            bar.advance(0, f"reading {Path(path).name if path != STDIO else 'stdin'}")
            spooled = spool / f"{index}.parquet"
            with table_pieces(spooled, schema=BOOK, producer=PRODUCER, compression="lz4") as write:
                checked = _timestamps_checked(write, f"{name} (book rows parsed from it)")
                parsed, digest = _read_input(path, config.symbol, bar.advance, checked)
            refuse_same_data(read.inputs, name, digest)
            if parsed.trades is not None:
                # Trade CSVs were checked line by line; the rows of V5 message lines are checked here.
                check_timestamps(parsed.trades, f"{name} (trades rows parsed from it)", market=True)
                _spool_trades(read, parsed.trades, spool / f"{index}-trades.parquet", index)
            if parsed.book_rows:
                spool_file = open_table(spooled, BOOK)
                read.books.append(TableInput(index, spool_file, row_groups(spool_file)))
            held = [k for k, rows in (("book", parsed.book_rows), ("trades", parsed.trades is not None)) if rows]
            del parsed  # its trades are spooled: the next input's parse need not share memory with them
            if not held:
                raise InputError(f"{name}: holds no order-book or public-trade rows")
            read.kinds_of[name] = held
            read.sources.append(name)
    return read


def _spool_trades(read: _Read, trades: pl.DataFrame, spooled: Path, index: int) -> None:
    """`trades` (one input's) written to `spooled` sorted by time, stably, in row groups of _TRADE_GROUP_ROWS for the
    merge, a group at a time (Bybit's daily files are newest first, and a sorted copy would double the input's
    memory); their keys, in that order, kept for the check across inputs."""
    ts = trades["ts"]
    order = None if ts.is_sorted() else np.argsort(ts.to_numpy(), kind="stable")
    with table_pieces(spooled, schema=TRADES, producer=PRODUCER, compression="lz4") as write:
        for start in range(0, trades.height, _TRADE_GROUP_ROWS):
            end = start + _TRADE_GROUP_ROWS
            write(trades.slice(start, _TRADE_GROUP_ROWS) if order is None else trades[order[start:end]])
    keys = trades.select(TRADE_ID_KEY).to_series()
    read.trade_keys.append(keys if order is None else keys[order])
    spool_file = open_table(spooled, TRADES)
    read.trades.append(TableInput(index, spool_file, row_groups(spool_file)))


def _timestamps_checked(write: BookSink, source: str) -> BookSink:
    """`write`, after `check_timestamps` on each piece (rows numbered across the pieces)."""
    done = 0

    def checked(frame: pl.DataFrame) -> None:
        nonlocal done
        check_timestamps(frame, source, market=True, first_row=done)
        done += frame.height
        write(frame)

    return checked


def fetch_files(config: FileFetch) -> tuple[str, int]:
    """Reads every input, checks they hold one table kind, writes it sorted by time; returns (kind, rows)."""
    if not config.paths:
        raise UsageError("fetch --source file needs at least one PATH (a trade CSV, an ob .data.zip, or '-')")
    if config.symbol is not None:
        config.symbol = ranges.check_symbol_name(config.symbol.strip().upper(), "--symbol")
    if sum(1 for p in config.paths if p == STDIO) > 1:
        raise UsageError("stdin ('-') can be given only once")
    if config.output != STDIO and Path(config.output).is_dir():
        raise UsageError(
            f"-o {config.output}: is a folder; --source file writes one Parquet table (e.g. -o book.parquet)"
        )
    with tempfile.TemporaryDirectory(prefix=".apexctl-fetch-", dir=_spool_folder(config.output)) as spool:
        read = _read_inputs(config, Path(spool))
        kind = config.kind
        present = [k for k, held in (("book", read.books), ("trades", read.trades)) if held]
        if kind is None:
            if len(present) > 1:
                detail = "; ".join(f"{name}: {'+'.join(ks)}" for name, ks in read.kinds_of.items())
                raise UsageError(
                    f"inputs hold both order-book and trade data ({detail}); run fetch once per kind "
                    "(or pick one with --kind book|trades)"
                )
            kind = present[0]
        elif kind not in present:
            raise InputError(f"no input holds {kind} data (inputs hold: {', '.join(present)})")
        params = {"source": "file", "kind": kind, "paths": [describe(p) for p in config.paths]}
        rows = (
            _write_book(read, config.output, params) if kind == "book" else _write_trades(read, config.output, params)
        )
    wrote(config.output, f"{rows:,} {kind} rows")
    return kind, rows


def _write_trades(read: _Read, output: str, params: dict) -> int:
    """The spooled trades of every input merged in time order, a window at a time (`TimeMerge`), each trade once;
    returns the rows written. The rows of one trade share its time, so a window holds all of them."""
    candidates = shared_id_trades(read.trades, read.trade_keys)
    read.trade_keys.clear()  # the check across inputs is done: the merge needs only the spool
    _refuse_conflicting_trades(candidates, read.sources)
    merge = TimeMerge(read.trades)
    rows = dropped = 0
    with (
        steps("merging the trades (rows)", merge.rows) as bar,
        table_pieces(output, schema=TRADES, producer=PRODUCER, inputs=read.inputs, params=params) as write,
    ):
        for window in merge.windows():
            trades = window.frame
            if candidates.height:  # else no two rows share an id, so none repeats another
                repeated = repeated_trades(trades)
                dropped += int(repeated.sum())
                trades = trades.filter(~repeated)
            write(trades)
            rows += trades.height
            bar.advance(window.frame.height)
    if dropped:
        note(
            ("fetch:", "yellow"),
            f" dropped {dropped:,} trades repeated across the inputs (same trade id, time and size)",
        )
    return rows


def _write_book(read: _Read, output: str, params: dict) -> int:
    """The spooled book rows of every input merged in time order; returns the rows written."""
    return _merge_book(read.books, read.sources, output, producer=PRODUCER, inputs=read.inputs, params=params)


def _merge_book(books: list[TableInput], sources: list[str], output: str | Path, **provenance) -> int:
    """Spooled book rows merged in time order into `output`, a window at a time (`TimeMerge`), refusing two sources
    of one book; returns the rows written."""
    merge = TimeMerge(books)
    rows = 0
    with (
        steps("merging the book (rows)", merge.rows) as bar,
        table_pieces(output, schema=BOOK, **provenance) as write,
    ):
        for window in merge.windows():
            if len(books) > 1:
                _refuse_conflicting_books(window.frame, window.origins["_source"], sources)
            write(window.frame)
            rows += window.frame.height
            bar.advance(window.frame.height)
    return rows


def _refuse_conflicting_trades(trades: pl.DataFrame, sources: list[str]) -> None:
    """InputError naming both files when one trade id of a symbol comes with different time, side, price or size
    (`conflicting_trades`): the inputs are two sources of one symbol (two simulated runs both number their trades
    from 1), and one table of both would interleave two markets."""
    found = conflicting_trades(trades)
    if found is None:
        return
    first, row = found
    files = [sources[trades["_source"][r]] for r in (first, row)]
    where = f"{files[0]} holds" if files[0] == files[1] else f"{files[0]} and {files[1]} hold"
    raise InputError(
        f"{where} trade {safe(trades['trade_id'][row])} of {safe(trades['symbol'][row])} twice with different "
        f"content ({trade_difference(trades, first, row)}); these look like two different sources of one symbol: "
        "fetch the files of one source into one table"
    )


def _refuse_conflicting_books(book: pl.DataFrame, source: pl.Series, sources: list[str]) -> None:
    """InputError naming both files when two of them hold one book message with different content
    (`conflicting_book_messages`; `source` numbers each row's input): two sources of one book, whose interleaved
    messages would read as gaps."""
    found = conflicting_book_messages(book, source)
    if found is None:
        return
    first, other, differ = found
    raise InputError(
        f"{sources[source[first]]} and {sources[source[other]]} hold {book_message_named(book, first)} "
        f"twice with different content ({differ}); these look like two different sources of one symbol's book: "
        "fetch the files of one source into one table"
    )


#: What a recording's messages are called in errors and notes.
_RECORDING = "the WebSocket recording"


def _record(config: BybitFetch, ws_url: str, recording: bybit_api.Recording) -> None:
    """Records the public book and trades into `recording` (one message a line), showing the time recorded."""
    with steps("recording (s)", config.duration) as bar:
        shown = time.monotonic()

        def progress(recording: bybit_api.Recording) -> None:
            nonlocal shown
            now = time.monotonic()
            if now - shown >= 0.5:
                bar.advance(now - shown, f"{recording.messages:,} messages, {recording.reconnects} reconnects")
                shown = now

        recording.on_message = progress
        bybit_api.record_public(
            ws_url, config.category, config.symbols, recording, depth=config.depth, duration=config.duration
        )


def _recording_tables(messages: Path, scratch: Path, staging: Path, **provenance) -> dict[str, int]:
    """The recorded messages as `book.parquet` and `trades.parquet` in `staging`, the way `fetch --source file`
    reads an archive: book rows checked and spooled to a scratch table, then merged in time windows (a day of ob200
    is tens of millions of rows); trades, a small share, sorted in memory."""
    spooled = scratch / "book.parquet"
    with (
        steps("parsing the recording (bytes)", messages.stat().st_size) as bar,
        table_pieces(spooled, schema=BOOK, producer=PRODUCER, compression="lz4") as write,
        open(messages, "rb") as handle,
    ):
        checked = _timestamps_checked(write, f"{_RECORDING} (book rows parsed from it)")
        parsed = parse_lines_stream(handle, _RECORDING, bar.advance, on_book=checked)
    trades = parsed.trades if parsed.trades is not None else pl.DataFrame(schema=TRADES.polars_schema())
    check_timestamps(trades, f"{_RECORDING} (trades rows parsed from it)", market=True)
    write_table(_sort(trades), staging / "trades.parquet", schema=TRADES, **provenance)
    book = open_table(spooled, BOOK)
    rows = _merge_book([TableInput(0, book, row_groups(book))], [_RECORDING], staging / "book.parquet", **provenance)
    return {"book": rows, "trades": trades.height}


def _keep_recording(messages: Path, out: Path) -> Path | None:
    """Moves the messages of a recording that could not be made into tables beside the output folder (never over
    an earlier one), so a give-up after hours loses nothing; None when nothing was recorded."""
    if not messages.is_file() or not messages.stat().st_size:
        return None
    folder = written_path(out).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        folder = Path.cwd()
    stem = f"{written_path(out).name or 'fetch'}.recording"
    kept, n = folder / f"{stem}.jsonl", 1
    while kept.exists():
        n += 1
        kept = folder / f"{stem}-{n}.jsonl"
    shutil.move(messages, kept)
    return kept


def _kept_note(kept: Path, messages: int, malformed: bool = False) -> str:
    """Where the messages went and what to do with them (a malformed one is named by its line in that file)."""
    if malformed:
        return f"the {messages:,} messages recorded are kept in {kept}; the line number is that file's"
    return (
        f"the {messages:,} messages recorded are kept in {kept}: `apexctl fetch --source file {kept} --kind book "
        "-o book.parquet` (and `--kind trades`) makes them into tables"
    )


def fetch_bybit(config: BybitFetch, *, force: bool = False) -> dict[str, int]:
    """Klines (when a start is given) and a WebSocket recording (when asked) into DIR/{bars,book,trades}.parquet,
    published together (`force` replaces a non-empty DIR). Every option is checked before the first request."""
    if config.start_ms is None and not config.record_ws:
        raise UsageError("fetch --source bybit needs --start/--end (klines) and/or --record-ws (order book + trades)")
    if config.start_ms is None and config.end_ms is not None:
        raise UsageError("--end needs --start (the klines' range)")
    if config.interval not in bybit_api.INTERVALS:
        raise UsageError(f"--interval {safe(config.interval)!r}: expected one of {', '.join(bybit_api.INTERVALS)}")
    end_ms = config.end_ms if config.end_ms is not None else bybit_api.now_ms()
    if config.start_ms is not None and end_ms <= config.start_ms:
        raise UsageError(f"--end ({end_ms}) must be after --start ({config.start_ms})")
    bybit_api.RECORD_SECONDS.check(config.duration, "--duration")
    bybit_api.ATTEMPTS.check(config.max_attempts, "--max-attempts")
    out = Path(config.output)
    outputs.check([outputs.OutFolder(out, replace=force)], [])
    client = bybit_api.RestClient(config.base_url, max_attempts=config.max_attempts, backoff=config.backoff)
    instruments = client.instruments(config.category, config.symbols)
    extra = {"apex.instruments": instruments}
    params = {
        "source": "bybit",
        "category": config.category,
        "symbols": config.symbols,
        "base_url": config.base_url,
        **config.params,
    }
    tables: list[tuple[str, pl.DataFrame, TableSchema, dict, str]] = []
    if config.start_ms is not None:
        bars = pl.concat(
            [
                client.klines(config.category, s, config.interval, config.start_ms, end_ms, limit=config.limit)
                for s in config.symbols
            ]
        )
        kline_params = {**params, "interval": config.interval, "start_ms": config.start_ms, "end_ms": end_ms}
        tables.append(("bars", bars, BARS, kline_params, f"{bars.height:,} bars"))
    if not config.record_ws:
        return _publish(tables, out, extra, force=force)
    ws_url = config.ws_url or bybit_api.public_ws_url(config.base_url, config.category)
    ws_params = {**params, "ws_url": ws_url, "depth": config.depth, "duration_s": config.duration}
    with tempfile.TemporaryDirectory(prefix=".apexctl-fetch-", dir=_spool_folder(str(out))) as scratch:
        messages = Path(scratch) / "recording.jsonl"
        with open(messages, "wb") as sink:
            recording = bybit_api.Recording(sink)
            try:
                _record(config, ws_url, recording)
            except BaseException as exc:
                sink.close()
                _keep_and_raise(exc, messages, out, recording)
        provenance = {"producer": PRODUCER, "params": ws_params, "extra": extra}
        try:
            return _publish(
                tables, out, extra, force=force,
                made=lambda staging: _recording_tables(messages, Path(scratch), staging, **provenance),
                what=f"({recording.messages:,} messages recorded)",
            )  # fmt: skip
        except BaseException as exc:
            _keep_and_raise(exc, messages, out, recording)


def _keep_and_raise(exc: BaseException, messages: Path, out: Path, recording: bybit_api.Recording) -> NoReturn:
    """Re-raises `exc` once the recording is kept (`_keep_recording`): our own errors say where it went in their one
    line; for others (Ctrl-C, a full disk), a note says it before the CLI reports them."""
    kept = _keep_recording(messages, out)
    if kept is None:
        raise exc
    note_text = _kept_note(kept, recording.messages, malformed=isinstance(exc, InputError))
    if isinstance(exc, ApexError):
        raise type(exc)(f"{exc}; {note_text}") from None
    note(("fetch:", "yellow"), f" {note_text}")
    raise exc


def _publish(
    tables: list[tuple[str, pl.DataFrame, TableSchema, dict, str]],
    out: Path,
    extra: dict,
    *,
    force: bool,
    made: Callable[[Path], dict[str, int]] | None = None,
    what: str = "",
) -> dict[str, int]:
    """Writes `tables` and whatever `made` writes into one staged folder published as `out`; returns the rows of
    each table."""
    counts: dict[str, int] = {}
    with outputs.staged_folder(out, replace=force) as staging:
        for name, frame, schema, table_params, _ in tables:
            write_table(frame, staging / f"{name}.parquet", schema=schema, producer=PRODUCER, params=table_params,
                        extra=extra)  # fmt: skip
            counts[name] = frame.height
        made_counts = made(staging) if made is not None else {}
    for name, _, _, _, described in tables:
        wrote(str(out / f"{name}.parquet"), described)
    for name, rows in made_counts.items():
        wrote(str(out / f"{name}.parquet"), f"{rows:,} {name} rows {what}".rstrip())
    return counts | made_counts


def fetch_sim(config: MarketSim, output: str, *, force: bool = False) -> dict[str, int]:
    """Runs the simulated market and writes book.parquet, trades.parquet and bars.parquet into the `output` folder,
    with the same schemas and metadata as real data (tick size and qty step in apex.instruments), published
    together (`force` replaces a non-empty folder)."""
    out = Path(output)
    if output == STDIO:
        raise UsageError(f"{output}: --source sim writes a folder of tables (book, trades, bars); give a folder")
    outputs.check([outputs.OutFolder(out, replace=force)], [config.dsg_path])
    config.validate()
    dsg_text, dsg_normalized = load_dsg(config.dsg_path)
    provenance = {
        "producer": PRODUCER,
        "inputs": {config.dsg_path: sha256_file(config.dsg_path)} if config.dsg_path else {},
        "params": market_params(config, dsg_normalized),
        "extra": {"apex.instruments": {s: INSTRUMENTS[s] for s in config.symbols}},
    }
    counts = dict.fromkeys(("book", "trades", "bars"), 0)
    # One piece of simulated time at a time, written out before the next is simulated: memory stays that of a piece.
    with outputs.staged_folder(out, replace=force) as staging, contextlib.ExitStack() as writers:
        write = {
            name: writers.enter_context(table_pieces(staging / f"{name}.parquet", schema=schema, **provenance))
            for name, schema in (("book", BOOK), ("trades", TRADES))
        }
        with steps("simulating (hours)", config.hours) as bar:
            done = 0.0
            for hours, piece in market_pieces(config, dsg_text):
                for name in ("book", "trades"):
                    write[name](piece[name])
                    counts[name] += piece[name].height
                if "bars" in piece:  # the last piece: the bars of the whole run, a few rows a minute
                    write_table(piece["bars"], staging / "bars.parquet", schema=BARS, **provenance)
                    counts["bars"] = piece["bars"].height
                bar.advance(hours - done, f"simulated {hours:g} of {config.hours:g} h")
                done = hours
    for name in ("book", "trades", "bars"):
        wrote(str(out / f"{name}.parquet"), f"{counts[name]:,} {name} rows")
    return counts
