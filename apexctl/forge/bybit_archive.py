"""Bybit archive files into `book`/`trades` frames: trade CSVs (derivatives, spot), V5 message lines (ob zips)."""

from __future__ import annotations

import functools
import gzip
import io
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl

from apexctl import _core
from apexctl.console import safe
from apexctl.errors import DataError, InputError
from apexctl.forge.features import book_frame, trade_frame
from apexctl.forge.table_checks import unit_hint
from apexctl.schemas.tables import MARKET_FIRST, MARKET_WINDOW_TEXT, TS_END

CHUNK_BYTES = 8 << 20
#: Longest line accepted while streaming: a V5 order-book snapshot line is tens of kB, a trade CSV line ~200 bytes, so
#: a longer "line" is not one of ours, and checking while reading keeps a small gzip that inflates to one huge line
#: from ever being held in memory whole.
MAX_JSON_LINE_BYTES = 16 << 20
MAX_CSV_LINE_BYTES = 64 << 10
#: The column of a parsed CSV's text rows that holds each row's line in the file.
_LINE = "_line"

DERIVATIVES_HEADER = (
    "timestamp",
    "symbol",
    "side",
    "size",
    "price",
    "tickDirection",
    "trdMatchID",
    "grossValue",
    "homeNotional",
    "foreignNotional",
)
SPOT_HEADER = ("id", "timestamp", "price", "volume", "side")

# Progress callback: (bytes done since last call).
Advance = Callable[[int], None]
# Takes the book rows of an input a piece at a time, in input order, instead of `Parsed.book`.
BookSink = Callable[[pl.DataFrame], None]


@dataclass
class Parsed:
    """What one input held: at most one of the frames is usually non-empty."""

    book: pl.DataFrame | None = None
    trades: pl.DataFrame | None = None
    lines: int = 0
    skipped: int = 0
    #: Book rows parsed (whether held in `book` or given to a `BookSink`).
    book_rows: int = 0


class _Counting(io.RawIOBase):
    """A read-only wrapper that reports how many raw bytes were consumed, for progress over compressed files."""

    def __init__(self, inner: BinaryIO, advance: Advance) -> None:
        self._inner = inner
        self._advance = advance

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        self._advance(len(data))
        return len(data)


# ---------------------------------------------------------------------------------------------------- V5 lines


def lines_to_frames(result: dict) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Turns one `_core.bybit_parse_lines` result into `book` and `trades` frames (symbol codes to names)."""
    return book_frame(result["book"], result["symbols"]), trade_frame(result["trades"], result["symbols"])


def parse_lines_stream(
    stream: BinaryIO, name: str, advance: Advance | None = None, on_book: BookSink | None = None
) -> Parsed:
    """Streams V5 message lines through the Rust parser in chunks, so a 360 MB archive never becomes Python objects;
    with `on_book`, the book rows go to it chunk by chunk and are not held."""
    books: list[pl.DataFrame] = []
    trades: list[pl.DataFrame] = []
    parsed = Parsed()
    line = 1
    rest = b""
    while True:
        chunk = stream.read(CHUNK_BYTES)
        if advance is not None and chunk:
            advance(len(chunk))
        data = rest + chunk
        if chunk:
            cut = data.rfind(b"\n") + 1
            data, rest = data[:cut], data[cut:]
            if len(rest) > MAX_JSON_LINE_BYTES:
                at = line + data.count(b"\n")
                raise InputError(
                    f"{safe(name)}: line {at} is longer than {MAX_JSON_LINE_BYTES >> 20} MB; not a Bybit archive"
                )
        else:
            rest = b""
        if data:
            try:
                result = _core.bybit_parse_lines(data, first_line=line)
            except DataError as exc:
                raise InputError(f"{name}: {exc}") from None
            book, trade = lines_to_frames(result)
            parsed.book_rows += book.height
            if book.height:
                if on_book is not None:
                    on_book(book)
                else:
                    books.append(book)
            if trade.height:
                trades.append(trade)
            parsed.lines += result["lines"]
            parsed.skipped += result["skipped"]
            line += data.count(b"\n")
        if not chunk:
            break
    parsed.book = pl.concat(books, rechunk=True) if books else None
    parsed.trades = pl.concat(trades, rechunk=True) if trades else None
    return parsed


# ---------------------------------------------------------------------------------------------------- trade CSVs


def _csv_error(name: str, frame: pl.DataFrame, bad: pl.Series, column: str, expected: str) -> InputError:
    row = int(bad.arg_true()[0])
    value, line = frame[column][row], frame[_LINE][row]
    return InputError(f"{safe(name)}: line {line}: column '{column}' holds {safe(repr(value))}, expected {expected}")


def _to_positive(frame: pl.DataFrame, column: str, name: str) -> pl.Series:
    """A price or size column as floats; a trade at a price or of a size <= 0 is no trade (a damaged file)."""
    values = frame[column].str.strip_chars().cast(pl.Float64, strict=False)
    bad = values.is_null() | values.is_nan() | values.is_infinite() | (values <= 0.0)
    if bad.any():
        raise _csv_error(name, frame, bad, column, "a positive decimal number")
    return values


def _read_csv(data: bytes, name: str, first_line: int) -> pl.DataFrame:
    """The text columns of `data` (a header line, then lines from file line `first_line` on), each row's file line
    in `_LINE` for errors."""
    try:
        frame = pl.read_csv(io.BytesIO(data), infer_schema=False, truncate_ragged_lines=False)
    except pl.exceptions.PolarsError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        last = first_line + max(data.count(b"\n") - 1, 0)
        raise InputError(f"{name}: malformed CSV (in lines {first_line}-{last}): {first}") from None
    return frame.with_row_index(_LINE, offset=first_line)


def _check_window(name: str, frame: pl.DataFrame, counts: pl.Series, unit_ns: int, unit: str) -> None:
    """InputError naming the line unless every timestamp (`counts` of `unit`, null where too large for Int64) lies in
    the window of market data: checked before the conversion to nanoseconds, which would wrap around past 2262."""
    first, end = MARKET_FIRST // unit_ns, TS_END // unit_ns
    bad = counts.is_null() | (counts < first) | (counts >= end)
    if bad.any():
        count = counts[int(bad.arg_true()[0])]
        hint = unit_hint(count, unit_ns) if count is not None else ""
        expected = f"{unit} since the epoch within {MARKET_WINDOW_TEXT} ({first} to {end - 1}){hint}"
        raise _csv_error(name, frame, bad, "timestamp", expected)


def decimal_seconds_to_ns(text: pl.Series, name: str, frame: pl.DataFrame) -> pl.Series:
    """'1585180700.0647' -> 1585180700064700000 exactly: integer and fraction parsed as integers, never via float."""
    stripped = text.str.strip_chars()
    ok = stripped.str.contains(r"^\d+(\.\d{0,9})?$")
    if not ok.all():
        raise _csv_error(name, frame, ~ok, "timestamp", "seconds as a decimal with at most 9 fraction digits")
    parts = stripped.str.split_exact(".", 1).struct.rename_fields(["int", "frac"]).struct.unnest()
    whole = parts["int"].cast(pl.Int64, strict=False)  # null past Int64: outside the window below anyway
    _check_window(name, frame, whole, 10**9, "seconds")
    frac = parts["frac"].fill_null("").str.pad_end(9, "0").cast(pl.Int64)
    return (whole * 1_000_000_000 + frac).alias("ts")


def _sides(frame: pl.DataFrame, name: str, buy: str, sell: str) -> pl.Series:
    raw = frame["side"].str.strip_chars()
    bad = ~raw.is_in([buy, sell])
    if bad.any():
        raise _csv_error(name, frame, bad, "side", f"'{buy}' or '{sell}'")
    return pl.Series("side", np.where((raw == buy).to_numpy(), 1, -1).astype(np.int8))


def parse_derivatives_csv(data: bytes, name: str, first_line: int = 2) -> pl.DataFrame:
    """public.bybit.com/trading/ files (`data`: the header, then the lines from `first_line` on): decimal-second
    timestamps, Buy/Sell taker side, possibly newest first."""
    frame = _read_csv(data, name, first_line)
    return pl.DataFrame(
        [
            decimal_seconds_to_ns(frame["timestamp"], name, frame),
            frame["symbol"].str.strip_chars().alias("symbol"),
            _sides(frame, name, "Buy", "Sell"),
            _to_positive(frame, "price", name).alias("price"),
            _to_positive(frame, "size", name).alias("size"),
            frame["trdMatchID"].alias("trade_id"),
        ]
    )


def spot_symbol_from_name(name: str) -> str | None:
    """`BTCUSDT_2025-05-19.csv.gz` (or the dash form some mirrors use) -> BTCUSDT."""
    match = re.match(r"^([A-Z0-9]+)[_-]\d{4}-\d{2}-\d{2}", Path(name).name)
    return match.group(1) if match else None


def parse_spot_csv(data: bytes, name: str, symbol: str | None, first_line: int = 2) -> pl.DataFrame:
    """public.bybit.com/spot/ files (`data` as for `parse_derivatives_csv`): integer-ms timestamps, lowercase side,
    symbol only in the file name."""
    symbol = symbol or spot_symbol_from_name(name)
    if symbol is None:
        raise InputError(f"{name}: spot trade CSV without a symbol in its name (SYMBOL_YYYY-MM-DD.csv); pass --symbol")
    frame = _read_csv(data, name, first_line)
    ms = frame["timestamp"].str.strip_chars().cast(pl.Int64, strict=False)
    if ms.is_null().any():
        raise _csv_error(name, frame, ms.is_null(), "timestamp", "integer milliseconds")
    _check_window(name, frame, ms, 10**6, "milliseconds")
    return pl.DataFrame(
        [
            (ms * 1_000_000).alias("ts"),
            pl.Series("symbol", [symbol] * frame.height, dtype=pl.String),
            _sides(frame, name, "buy", "sell"),
            _to_positive(frame, "price", name).alias("price"),
            _to_positive(frame, "volume", name).alias("size"),
            frame["id"].str.strip_chars().alias("trade_id"),
        ]
    )


def _csv_kind(header: str, name: str) -> str:
    columns = tuple(c.strip() for c in header.strip().lstrip("\ufeff").split(","))
    if columns[: len(DERIVATIVES_HEADER)] == DERIVATIVES_HEADER:
        return "derivatives"
    if columns[: len(SPOT_HEADER)] == SPOT_HEADER:
        return "spot"
    raise InputError(
        f"{safe(name)}: unknown CSV header '{safe(header.strip()[:120])}'; expected Bybit derivatives trades "
        f"({','.join(DERIVATIVES_HEADER)}[,RPI]) or spot trades ({','.join(SPOT_HEADER)}[,rpi])"
    )


# ---------------------------------------------------------------------------------------------------- one input


def _open_zip_member(raw: BinaryIO, name: str) -> tuple[zipfile.ZipFile, zipfile.ZipInfo]:
    try:
        archive = zipfile.ZipFile(raw)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InputError(f"{name}: not a readable zip archive ({exc})") from None
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) != 1:
        raise InputError(
            f"{name}: zip archive holds {len(members)} files; expected one JSON-lines member (a Bybit ob archive)"
        )
    return archive, members[0]


def parse_input(
    raw: BinaryIO,
    name: str,
    size: int,
    *,
    symbol: str | None = None,
    advance: Advance | None = None,
    on_book: BookSink | None = None,
) -> Parsed:
    """Detects the format of one input from its first bytes and name, and parses it (book rows to `on_book` when
    given)."""
    tick: Advance = advance or (lambda _n: None)
    head = raw.read(4)
    raw.seek(0)
    if head == b"PAR1":
        raise InputError(
            f"{safe(name)}: a Parquet table, not a Bybit file: fetch --source file reads Bybit's trade CSVs and "
            "order-book archives; `apexctl features` reads tables"
        )
    if head.startswith(b"PK\x03\x04") or name.endswith(".zip"):
        archive, member = _open_zip_member(raw, name)
        try:
            with archive.open(member) as stream:
                return parse_lines_stream(
                    stream, f"{name}:{member.filename}", _scaled(tick, size, member.file_size), on_book
                )
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise InputError(f"{name}: corrupt zip archive ({exc})") from None
    counted: BinaryIO = io.BufferedReader(_Counting(raw, tick))
    if head.startswith(b"\x1f\x8b"):
        gz = io.BufferedReader(gzip.GzipFile(fileobj=counted))  # type: ignore[arg-type]
        try:
            if _peek_line(gz, name).startswith(b"{"):
                return parse_lines_stream(gz, name, on_book=on_book)
            return _parse_csv(gz, name, symbol)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{safe(name)}: corrupt gzip data ({safe(exc)})") from None
    first = _peek_line(counted, name)
    if first.lstrip().startswith(b"{"):
        return parse_lines_stream(counted, name, on_book=on_book)
    return _parse_csv(counted, name, symbol)


def _long_csv_line(name: str, number: int) -> InputError:
    where = "the first line" if number == 1 else f"line {number}"
    return InputError(f"{safe(name)}: {where} is longer than {MAX_CSV_LINE_BYTES >> 10} kB; not a Bybit trade CSV")


def _first_long_line(data: bytes) -> int | None:
    """The number (from 0) of the first line of `data` longer than MAX_CSV_LINE_BYTES, or None; by the positions of
    its newlines (a split into line objects took 15% of a CSV's parse)."""
    if len(data) <= MAX_CSV_LINE_BYTES:
        return None
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n"))
    lengths = np.diff(ends, prepend=-1, append=len(data)) - 1
    over = np.flatnonzero(lengths > MAX_CSV_LINE_BYTES)
    return int(over[0]) if len(over) else None


def _csv_header(stream: BinaryIO, name: str) -> tuple[bytes, int]:
    """A trade CSV's header line (the first that is not blank) and its line number."""
    number = 0
    while line := stream.readline(MAX_CSV_LINE_BYTES + 1):
        number += 1
        if len(line) > MAX_CSV_LINE_BYTES:
            raise _long_csv_line(name, number)
        if line.strip(b"\xef\xbb\xbf \t\r\n"):
            return line if line.endswith(b"\n") else line + b"\n", number
    raise InputError(f"{safe(name)}: empty input")


def _parse_csv(stream: BinaryIO, name: str, symbol: str | None) -> Parsed:
    """A trade CSV parsed CHUNK_BYTES of lines at a time, so a day's text is never held whole, only its trades. Every
    line must stay under MAX_CSV_LINE_BYTES: a wrong or inflated input is refused after one chunk, not once all is
    read."""
    header, header_line = _csv_header(stream, name)
    kind = _csv_kind(header.decode("utf-8", "replace"), name)
    parse = parse_derivatives_csv if kind == "derivatives" else functools.partial(parse_spot_csv, symbol=symbol)
    pieces: list[pl.DataFrame] = []
    line, rest = header_line + 1, b""  # the file line of the next chunk's first line; its start, read already
    while True:
        chunk = stream.read(CHUNK_BYTES)
        data = rest + chunk
        cut = data.rfind(b"\n") + 1 if chunk else len(data)
        data, rest = data[:cut], data[cut:]
        long = _first_long_line(data)
        if long is not None or len(rest) > MAX_CSV_LINE_BYTES:
            raise _long_csv_line(name, line + (long if long is not None else data.count(b"\n")))
        if data.strip() or (not pieces and not chunk):
            pieces.append(parse(header + data, name, first_line=line))
        line += data.count(b"\n")
        if not chunk:
            break
    trades = pl.concat(pieces, rechunk=False) if len(pieces) > 1 else pieces[0]  # rows are spooled, not kept
    return Parsed(trades=trades, lines=trades.height)


def _scaled(tick: Advance, raw_size: int, inner_size: int) -> Advance:
    """Progress is counted in raw input bytes; a zip member's uncompressed bytes are scaled down to them."""
    ratio = raw_size / inner_size if inner_size else 0.0
    done = [0.0]

    def advance(n: int) -> None:
        before = int(done[0])
        done[0] += n * ratio
        tick(int(done[0]) - before)

    return advance


def _peek_line(stream, name: str) -> bytes:
    try:
        first = stream.peek(4096)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{name}: corrupt gzip data ({exc})") from None
    return first.lstrip(b"\xef\xbb\xbf \t\r\n")
