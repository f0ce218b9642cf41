"""Tables merged in time order and read one time window at a time, so a long book (or a month of trades) never has
to fit in memory: the book and trades inputs of `features`, and the parsed archives and recordings of `fetch`.

The merged order is the rows of every input sorted by `ts`, stably (the rows of one book message stay together and
in order, and at one time the earlier input's rows come first). Cutting that order between two timestamps never
splits a message, nor two copies of one trade, so a replay can take it window by window: the rows of all inputs with
`lo <= ts < hi` are the merged order's rows of that window.

Windows follow the inputs' Parquet row groups (`fetch` writes a row group per simulated hour, Arrow's writer one per
2^20 rows), so each row group is read once. Row groups may overlap in time a little: a live recording's chunks hold
messages in arrival order, which interleaves symbols a few milliseconds out of time order. A window reads every
group its span meets, so such a group is read by two windows. Inputs whose groups overlap so much that the windows
would read more than twice the rows (rows in no time order, from another tool) are read as one window.

For a book, a first pass (`survey`) reads only the columns that must be known before the first message is replayed:
the symbols and the span of each (for the symbol codes and the check that books and trades meet), and the decimals
of prices and sizes (the replay's integer scales are those of the whole table). For trades, the first pass
(`survey_trades`) reads the same and a hash of each trade's symbol and id: the rows whose hash another row shares are
read back whole, the only rows that can repeat or contradict another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import polars as pl

from apexctl import _core
from apexctl.forge.feedback import steps
from apexctl.forge.io import TableFile
from apexctl.forge.table_checks import TRADE_ID_KEY, shared_key_rows
from apexctl.schemas.tables import TRADES

T = TypeVar("T")

#: Rows a window gathers before it is cut at the next row group: a window's book replay holds a few hundred MB.
WINDOW_ROWS = 1 << 20
#: The columns the survey reads.
SURVEY_COLUMNS = ["ts", "symbol", "side", "price", "size"]
#: The columns the trades survey reads.
_TRADE_SURVEY_COLUMNS = ["ts", "symbol", "size", "trade_id"]


@dataclass(frozen=True)
class RowGroup:
    """One Parquet row group of an input: its number in the file, first file row, row count and time span."""

    number: int
    first_row: int
    rows: int
    first_ts: int
    last_ts: int


@dataclass(frozen=True)
class TableInput:
    """An input table: its position among all the inputs of the run, the opened file, its row groups."""

    index: int
    file: TableFile
    groups: tuple[RowGroup, ...]

    def in_time_order(self) -> bool:
        return all(a.last_ts <= b.first_ts for a, b in zip(self.groups, self.groups[1:], strict=False))


@dataclass(frozen=True)
class TimeWindow:
    """The merged rows with `lo <= ts < hi` and, per row, its input (`_source`) and file row (`_row`)."""

    frame: pl.DataFrame
    origins: pl.DataFrame


@dataclass
class TimeMerge:
    """Inputs of one table kind merged in time order, read a window at a time."""

    inputs: list[TableInput]

    @property
    def rows(self) -> int:
        return sum(g.rows for i in self.inputs for g in i.groups)

    def cuts(self) -> list[int]:
        """The `ts` that start a new window: each at the start of a row group, once the window holds WINDOW_ROWS.
        None (one window) when the groups overlap in time so much that the windows would read more than twice the
        rows between them."""
        starts = sorted((g.first_ts, g.rows) for i in self.inputs for g in i.groups)
        cuts: list[int] = []
        held = 0
        for first_ts, rows in starts:
            if held >= WINDOW_ROWS and first_ts > (cuts[-1] if cuts else starts[0][0]):
                cuts.append(first_ts)
                held = 0
            held += rows
        if cuts and not all(i.in_time_order() for i in self.inputs) and self.rows_read(cuts) > 2 * self.rows:
            return []
        return cuts

    def rows_read(self, cuts: Sequence[int]) -> int:
        """The rows the windows of `cuts` read between them: a row group is read by every window its span meets."""
        groups = [g for i in self.inputs for g in i.groups]
        bounds = np.asarray(cuts, dtype=np.int64)
        # Window k holds cuts[k-1] <= ts < cuts[k]: the number of cuts at or before a time is its window.
        first = np.searchsorted(bounds, np.array([g.first_ts for g in groups], dtype=np.int64), side="right")
        last = np.searchsorted(bounds, np.array([g.last_ts for g in groups], dtype=np.int64), side="right")
        return int((np.array([g.rows for g in groups], dtype=np.int64) * (last - first + 1)).sum())

    def windows(self) -> Iterator[TimeWindow]:
        """The merged rows, window by window, in time order; each row group is read once. The next window is read
        on a thread of its own while the caller works on this one (Parquet decoding and polars release the GIL), so
        one window more is held."""
        return read_ahead(self._windows())

    def _windows(self) -> Iterator[TimeWindow]:
        cuts = self.cuts()
        bounds = zip([None, *cuts], [*cuts, None], strict=True)
        loaded: dict[tuple[int, int], pl.DataFrame] = {}
        for lo, hi in bounds:
            pieces = []
            for table in self.inputs:
                for group in table.groups:
                    key = (table.index, group.number)
                    if lo is not None and group.last_ts < lo:
                        loaded.pop(key, None)  # behind this window, so behind every later one
                        continue
                    if hi is not None and group.first_ts >= hi:
                        continue  # ahead of this window
                    if key not in loaded:
                        loaded[key] = _read_group(table, group)
                    pieces.append(loaded[key])
            if not pieces:
                continue
            rows = pl.concat(pieces)
            inside = [pl.col("ts") >= lo] if lo is not None else []
            inside += [pl.col("ts") < hi] if hi is not None else []
            if inside:
                rows = rows.filter(*inside)
            if not rows["ts"].is_sorted():  # inputs in time order (one fetch output) need no sorted copy
                rows = rows.sort("ts", maintain_order=True)
            origins = ["_source", "_row"]
            yield TimeWindow(rows.drop(origins), rows.select(origins))


@dataclass
class Books(TimeMerge):
    """The book inputs of a run, surveyed: what the replay must know before its first message."""

    #: Per symbol: `first` and `last` ts and `source`, the input holding its earliest row.
    spans: pl.DataFrame
    #: (price, size) decimals of the whole book, as the replay of it in one piece would infer them.
    decimals: tuple[int, int]

    @property
    def symbols(self) -> list[str]:
        return sorted(self.spans["symbol"].to_list())


def read_ahead(items: Iterator[T]) -> Iterator[T]:
    """`items`, each next one produced on a worker thread while the caller handles the one before (errors come out
    where that item would have)."""
    with ThreadPoolExecutor(1, thread_name_prefix="read-ahead") as worker:
        coming = worker.submit(_take, items)
        while taken := coming.result():
            coming = worker.submit(_take, items)
            yield taken[0]


def _take(items: Iterator[T]) -> tuple[T] | tuple[()]:
    """The next of `items` as a 1-tuple, or () when there is none."""
    for item in items:
        return (item,)
    return ()


def row_groups(file: TableFile) -> tuple[RowGroup, ...]:
    """The non-empty row groups of `file` with their time spans, from the Parquet statistics (which every apexctl
    writer records), else by reading `ts`."""
    meta = file.parquet.metadata
    ts_column = file.parquet.schema_arrow.get_field_index("ts")
    groups: list[RowGroup] = []
    for number, (first_row, rows) in enumerate(zip(file.group_starts(), file.group_rows(), strict=True)):
        if not rows:
            continue
        stats = meta.row_group(number).column(ts_column).statistics
        if stats is not None and stats.has_min_max and isinstance(stats.min, int):
            first_ts, last_ts = int(stats.min), int(stats.max)
        else:
            ts = file.read([number], columns=["ts"], first_row=first_row)["ts"]
            first_ts, last_ts = int(ts.min()), int(ts.max())  # type: ignore[arg-type]
        groups.append(RowGroup(number, first_row, rows, first_ts, last_ts))
    return tuple(groups)


def _read_group(table: TableInput, group: RowGroup) -> pl.DataFrame:
    frame = table.file.read([group.number], first_row=group.first_row)
    return frame.select(
        *table.file.schema.column_names,
        pl.lit(table.index, dtype=pl.UInt32).alias("_source"),
        pl.int_range(group.first_row, group.first_row + pl.len(), dtype=pl.UInt64).alias("_row"),
    )


def _survey_groups(
    files: Sequence[tuple[int, TableFile]],
    columns: list[str],
    what: str,
    look: Callable[[int, RowGroup, pl.DataFrame], None],
) -> list[TableInput]:
    """The inputs (`(input index, file)`, in input order) with their non-empty row groups and the span of each,
    every group's rows of `columns` shown to `look` (input index, group, rows) as it is read; progress named
    `what`."""
    inputs: list[TableInput] = []
    with steps(what, sum(file.rows for _, file in files)) as bar:
        for index, file in files:
            groups: list[RowGroup] = []
            for number, first_row, frame in file.groups(columns):
                if not frame.height:
                    continue
                ts = frame["ts"]
                group = RowGroup(number, first_row, frame.height, int(ts.min()), int(ts.max()))  # type: ignore[arg-type]
                groups.append(group)
                look(index, group, frame)
                bar.advance(frame.height)
            inputs.append(TableInput(index, file, tuple(groups)))
    return inputs


def survey(
    files: Sequence[tuple[int, TableFile]], check: Callable[[RowGroup, pl.DataFrame], None] | None = None
) -> Books:
    """The book inputs (`(input index, file)`, in input order) read for their symbols, spans and decimals; each row
    group's rows of the survey's columns shown to `check` too, if given."""
    spans: list[pl.DataFrame] = []
    decimals = [0, 0]

    def look(index: int, group: RowGroup, frame: pl.DataFrame) -> None:
        if check is not None:
            check(group, frame)
        first_last = (pl.col("ts").min().alias("first"), pl.col("ts").max().alias("last"))
        spans.append(frame.group_by("symbol").agg(*first_last, pl.lit(index).alias("source")))
        side = frame["side"].to_numpy()
        prices = frame["price"].fill_null(np.nan).to_numpy()
        sizes = frame["size"].fill_null(np.nan).to_numpy()
        decimals[:] = map(max, decimals, _core.book_decimals(side, prices, sizes))

    inputs = _survey_groups(files, SURVEY_COLUMNS, "surveying the book (rows)", look)
    no_rows = pl.DataFrame(schema={"symbol": pl.String, "first": pl.Int64, "last": pl.Int64, "source": pl.Int32})
    by_symbol = (
        pl.concat(spans or [no_rows])
        .sort("first", "source")
        .group_by("symbol", maintain_order=True)
        .agg(pl.col("first").first(), pl.col("last").max(), pl.col("source").first())
    )
    return Books(inputs, by_symbol, (decimals[0], decimals[1]))


@dataclass
class Trades(TimeMerge):
    """The trades inputs of a run, surveyed: what the windows' checks and flow must know of the whole table."""

    #: Per symbol: `first` and `last` ts, each with the input (`source`, `source_last`) and file row (`row`,
    #: `row_last`) of its first row in the merged order.
    spans: pl.DataFrame
    #: The decimals of the sizes of the whole table (the flow's integer scale).
    size_decimals: int
    #: `shared_id_trades` of the inputs.
    shared: pl.DataFrame

    @property
    def symbols(self) -> list[str]:
        return sorted(self.spans["symbol"].to_list())


def shared_id_trades(inputs: Sequence[TableInput], keys: Sequence[pl.Series]) -> pl.DataFrame:
    """The trades of `inputs` (each input's TRADE_ID_KEY per file row in `keys`) whose symbol and id another row of
    any input holds too, read back whole with their input (`_source`) and file row (`_row`), in the merged order:
    the only rows that can repeat or contradict another (few: ids are unique but where inputs overlap)."""
    rows = shared_key_rows(pl.concat(keys)).to_numpy() if keys else np.zeros(0, np.int64)
    offsets = np.cumsum([0, *(len(k) for k in keys)])
    ends = np.searchsorted(rows, offsets)  # `rows` ascend: input n's are rows[ends[n]:ends[n + 1]]
    parts = [
        table.file.take(rows[a:b] - first).with_columns(
            pl.lit(table.index, pl.UInt32).alias("_source"), pl.Series("_row", rows[a:b] - first, pl.UInt64)
        )
        for table, first, a, b in zip(inputs, offsets, ends, ends[1:], strict=False)
        if b > a
    ]
    if not parts:
        return pl.DataFrame(schema={**TRADES.polars_schema(), "_source": pl.UInt32, "_row": pl.UInt64})
    return pl.concat(parts).sort("ts", "_source", "_row")


def survey_trades(files: Sequence[tuple[int, TableFile]]) -> Trades:
    """The trades inputs (`(input index, file)`, in input order) read for their symbols, spans, size decimals and
    the rows that share an id, a row group at a time (the ids of all are never held)."""
    keys: dict[int, list[pl.Series]] = {index: [] for index, _ in files}
    spans: list[pl.DataFrame] = []
    size_decimals = 0

    def look(index: int, group: RowGroup, frame: pl.DataFrame) -> None:
        nonlocal size_decimals
        keys[index].append(frame.select(TRADE_ID_KEY).to_series())
        row = pl.int_range(group.first_row, group.first_row + pl.len(), dtype=pl.UInt64)
        spans.append(
            frame.group_by("symbol").agg(
                pl.col("ts").min().alias("first"),
                pl.lit(index, pl.UInt32).alias("source"),
                row.get(pl.col("ts").arg_min()).alias("row"),
                pl.col("ts").max().alias("last"),
                pl.lit(index, pl.UInt32).alias("source_last"),
                row.get(pl.col("ts").arg_max()).alias("row_last"),
            )
        )
        size_decimals = max(size_decimals, _core.trade_size_decimals(frame["size"].to_numpy()))

    inputs = _survey_groups(files, _TRADE_SURVEY_COLUMNS, "surveying the trades (rows)", look)
    held = [pl.concat(keys.pop(i.index)) if i.groups else pl.Series("_id_key", [], pl.UInt64) for i in inputs]
    return Trades(inputs, symbol_spans(pl.concat(spans)), size_decimals, shared_id_trades(inputs, held))


def symbol_spans(parts: pl.DataFrame) -> pl.DataFrame:
    """Per symbol, the spans of `Trades.spans` from spans of parts of the inputs (row groups, or single rows) in the
    same columns: the earliest `first` and the latest `last`, each with the input and file row of its first row in
    the merged order."""
    firsts = (
        parts.sort("first", "source", "row")
        .group_by("symbol", maintain_order=True)
        .agg(pl.col("first", "source", "row").first())
    )
    lasts = (
        parts.sort(["last", "source_last", "row_last"], descending=[True, False, False])
        .group_by("symbol", maintain_order=True)
        .agg(pl.col("last", "source_last", "row_last").first())
    )
    return firsts.join(lasts, on="symbol")
