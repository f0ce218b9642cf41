"""Checks of the rows of tables that their column types cannot express: timestamps in a sane window, prices and
sizes finite and positive.

A table whose `ts` holds -1 or 2^62 has the right types, and one such row makes a bar grid span decades (gigabytes
allocated in Rust). `io.read_table` refuses such a file here, naming the row, the value and the accepted window;
`fetch` checks what it parses from venue files against the narrower window of market data.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from apexctl.console import safe
from apexctl.errors import DataError
from apexctl.schemas.tables import MARKET_FIRST, MARKET_WINDOW_TEXT, TS_END, TS_FIRST, TS_WINDOW_TEXT

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The units a wrong timestamp is usually counted in, with the nanoseconds in one of them.
_UNITS = (("seconds", 10**9), ("milliseconds", 10**6), ("microseconds", 10**3))


def utc_text(ns: int) -> str:
    """`ns` (UTC nanoseconds since the epoch) as a date and time to the second."""
    try:
        return (_EPOCH + timedelta(microseconds=ns // 1000)).strftime("%Y-%m-%d %H:%M:%S UTC")
    except OverflowError:
        return "no calendar date"


def unit_hint(value: int, unit_ns: int = 1) -> str:
    """'; a count of milliseconds?' when `value`, taken in another unit than its `unit_ns`, falls in the window of
    market data (the narrow one: small numbers fit the wide one in most units)."""
    for name, ns in _UNITS:
        if ns != unit_ns and MARKET_FIRST <= value * ns < TS_END:
            return f"; a count of {name}?"
    return ""


def check_timestamps(
    frame: pl.DataFrame, source: str, column: str = "ts", *, market: bool = False, first_row: int = 0
) -> None:
    """DataError naming `source`, the first row (counted from `first_row`) and its value unless every `column` value
    (UTC nanoseconds) lies in the window [TS_FIRST, TS_END), or with `market` in the narrower one of data recorded
    from a venue."""
    first, window = (MARKET_FIRST, MARKET_WINDOW_TEXT) if market else (TS_FIRST, TS_WINDOW_TEXT)
    values = frame[column]
    outside = (values < first) | (values >= TS_END)
    count = int(outside.sum())
    if not count:
        return
    at = int(outside.arg_true()[0])
    row, value = first_row + at, int(values[at])
    others = f" (and {count - 1:,} more rows)" if count > 1 else ""
    raise DataError(
        f"{safe(source)}: column '{column}' row {row}{others}: {value} ns is {utc_text(value)}{unit_hint(value)}, "
        f"outside the accepted window {window} ('{column}' is UTC nanoseconds since the epoch)"
    )


def check_market_values(frame: pl.DataFrame, source: str, columns: dict[str, bool], first_row: int = 0) -> None:
    """DataError naming `source`, the first bad row (counted from `first_row`) and its value unless each of
    `columns` holds finite positive numbers (finite and >= 0 where `columns[name]` allows zero: a book delta's size 0
    removes its level). The Rust kernels refuse such rows too, but some readers (chimera's target statistics) compute
    in Python first."""
    for column, zero_ok in columns.items():
        values = frame[column].cast(pl.Float64)
        ok = values >= 0.0 if zero_ok else values > 0.0
        bad = (values.is_null() | ~(values.is_finite() & ok)).fill_null(True)
        if bad.any():
            row = int(bad.arg_true()[0])
            expected = "a finite number >= 0" if zero_ok else "a finite positive number"
            raise DataError(
                f"{safe(source)}: row {first_row + row}: column '{column}' holds {values[row]}, expected {expected}"
            )


#: The columns that make two trade rows one trade. The id alone does not: simulated runs number their trades from 1.
#: (A venue gives each trade of a symbol one id, so one id with two contents means two sources: `conflicting_trades`.)
TRADE_IDENTITY = ("symbol", "trade_id", "ts", "side", "price", "size")


#: A trade row's symbol and id as one hash (null for a row without an id): the rows of one trade share it, and a
#: collision only makes two trades look alike to `shared_key_rows`, whose rows are then compared in full.
TRADE_ID_KEY = (
    pl.when(pl.col("trade_id").is_not_null() & (pl.col("trade_id") != ""))
    .then(pl.col("symbol").hash(1) ^ pl.col("trade_id").hash(2))
    .alias("_id_key")
)


def shared_key_rows(keys: pl.Series) -> pl.Series:
    """The row numbers (in order) whose TRADE_ID_KEY another row holds too. Found by sorting a copy of the keys, not
    by a hash table of them (`is_duplicated`), which takes about nine times the keys' memory: 1.3 GB over a few days
    of trades."""
    ordered = keys.drop_nulls().sort().to_numpy()
    shared = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    del ordered
    if not len(shared):
        return pl.Series(keys.name, [], dtype=pl.get_index_type())
    return keys.is_in(pl.Series(shared).implode()).fill_null(False).arg_true()


def shared_id_rows(trades: pl.DataFrame) -> pl.DataFrame:
    """The TRADE_IDENTITY columns, after their row number `_row`, of the rows with a trade id whose symbol and id
    (by hash) another row holds too: the only rows that can repeat or contradict one. Ids are unique in most tables,
    so the checks below compare few rows beyond this one pass over the ids."""
    rows = shared_key_rows(trades.select(TRADE_ID_KEY).to_series())
    return trades[rows].select(*TRADE_IDENTITY).insert_column(0, rows.alias("_row"))


def repeated_trades(trades: pl.DataFrame, candidates: pl.DataFrame | None = None) -> pl.Series:
    """True on each row that repeats an earlier row's trade (every column of TRADE_IDENTITY equal); rows without a
    trade id are never repeats. `candidates`: `shared_id_rows(trades)` if already computed."""
    candidates = shared_id_rows(trades) if candidates is None else candidates
    rows = candidates.filter(~pl.struct(*TRADE_IDENTITY).is_first_distinct())["_row"]
    repeated = np.zeros(trades.height, dtype=bool)
    repeated[rows.to_numpy()] = True
    return pl.Series("repeated", repeated)


def conflicting_trades(trades: pl.DataFrame, candidates: pl.DataFrame | None = None) -> tuple[int, int] | None:
    """(earlier row, later row) of the first trade id of a symbol that two rows hold with different content (time,
    side, price or size), or None. A venue numbers one symbol's trades once, so such rows come from two sources (two
    simulated runs both number their trades from 1); rows without a trade id are never compared. `candidates` as
    for `repeated_trades`."""
    candidates = shared_id_rows(trades) if candidates is None else candidates
    distinct = candidates.filter(pl.struct(*TRADE_IDENTITY).is_first_distinct())
    later = distinct.filter(~pl.struct("symbol", "trade_id").is_first_distinct())
    if not later.height:
        return None
    row, symbol, trade_id = later.row(0)[:3]
    same_id = (distinct["symbol"] == symbol) & (distinct["trade_id"] == trade_id)
    return int(distinct["_row"].filter(same_id)[0]), int(row)


def quoted(value: object) -> str:
    """A value as the JSON it was written in (null, "abc", Infinity), shortened, for a message."""
    text = json.dumps(value)
    return safe(text if len(text) <= 80 else f"{text[:80]}...")


def trade_difference(trades: pl.DataFrame, first: int, row: int) -> str:
    """How rows `first` and `row` (one trade id, as `conflicting_trades` finds them) differ: `ts 1 vs 2, ...`."""
    return ", ".join(
        f"{c} {quoted(trades[c][first])} vs {quoted(trades[c][row])}"
        for c in TRADE_IDENTITY
        if trades[c][first] != trades[c][row]
    )


def conflicting_book_messages(book: pl.DataFrame, source: pl.Series) -> tuple[int, int, str] | None:
    """(row of one message, row of the other, how they differ) for the first book message of a symbol that two
    inputs (`source` numbers each row's input) hold with the same update id at the same time but different content
    (kind, seq or levels), or None. That is two sources of one book (two simulated runs share their clock and number
    updates from 1), whose interleaved messages the book engine would take for gaps. Only across inputs and at one
    time: after a venue restart update ids start again at 1, so one id at two times is legitimate."""
    if source.n_unique() < 2:
        return None
    key = ["symbol", "ts", "update_id"]
    content = ["kind", "seq", "levels", "level_hash"]
    messages = (
        book.select(
            *key,
            "kind",
            "seq",
            pl.int_range(pl.len(), dtype=pl.UInt32).alias("_at"),
            pl.struct("side", "price", "size").hash(3).alias("level_hash"),
        )
        .with_columns(source.alias("_source"))
        .group_by(*key, "_source")
        .agg(pl.col("_at").first(), pl.col("kind", "seq").first(), pl.len().alias("levels"), pl.col("level_hash").sum())
    )
    conflicts = messages.filter(pl.struct(*content).n_unique().over(key) > 1)
    if not conflicts.height:
        return None
    first = conflicts.sort("_at").row(0, named=True)
    group = conflicts.filter(*(pl.col(c) == first[c] for c in key))
    other = group.filter(~pl.all_horizontal(pl.col(c) == first[c] for c in content)).sort("_at").row(0, named=True)
    differ = ", ".join(
        f"{c} {quoted(first[c])} vs {quoted(other[c])}" for c in ("kind", "seq", "levels") if first[c] != other[c]
    )
    return first["_at"], other["_at"], differ or "the same number of levels at other prices or sizes"


def book_message_named(book: pl.DataFrame, row: int) -> str:
    """`book message 7 of BTCUSDT at 2024-12-01 00:00:00.000 UTC`: the message that row `row` belongs to."""
    return f"book message {book['update_id'][row]} of {safe(book['symbol'][row])} at {utc_text(book['ts'][row])}"
