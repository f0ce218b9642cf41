"""Tables merged in time order and read one time window at a time, so a long book (or a month of trades) never has
to fit in memory: the book inputs of `features`, and the parsed archives and recordings of `fetch`.

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
of prices and sizes (the replay's integer scales are those of the whole table).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from apexctl import _core
from apexctl.forge.feedback import steps
from apexctl.forge.io import TableFile

#: Rows a window gathers before it is cut at the next row group: a window's book replay holds a few hundred MB.
WINDOW_ROWS = 1 << 20
#: The columns the survey reads.
_SURVEY_COLUMNS = ["ts", "symbol", "side", "price", "size"]


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
        """The merged rows, window by window, in time order; each row group is read once."""
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


def survey(files: Sequence[tuple[int, TableFile]]) -> Books:
    """The book inputs (`(input index, file)`, in input order) read for their symbols, spans and decimals."""
    inputs: list[TableInput] = []
    spans: list[pl.DataFrame] = []
    price_decimals = size_decimals = 0
    with steps("surveying the book (rows)", sum(file.rows for _, file in files)) as bar:
        for index, file in files:
            groups: list[RowGroup] = []
            for number, first_row, frame in file.groups(_SURVEY_COLUMNS):
                rows = frame.height
                if not rows:
                    continue
                ts = frame["ts"]
                groups.append(RowGroup(number, first_row, rows, int(ts.min()), int(ts.max())))  # type: ignore[arg-type]
                first_last = (pl.col("ts").min().alias("first"), pl.col("ts").max().alias("last"))
                spans.append(frame.group_by("symbol").agg(*first_last, pl.lit(index).alias("source")))
                side = frame["side"].to_numpy()
                prices = frame["price"].fill_null(np.nan).to_numpy()
                sizes = frame["size"].fill_null(np.nan).to_numpy()
                price, size = _core.book_decimals(side, prices, sizes)
                price_decimals, size_decimals = max(price_decimals, price), max(size_decimals, size)
                bar.advance(rows)
            inputs.append(TableInput(index, file, tuple(groups)))
    by_symbol = (
        pl.concat(spans)
        .sort("first", "source")
        .group_by("symbol", maintain_order=True)
        .agg(pl.col("first").first(), pl.col("last").max(), pl.col("source").first())
    )
    return Books(inputs, by_symbol, (price_decimals, size_decimals))
