"""`apexctl features` logic: read book/trades/bars tables, compute features through apexctl._core, write `features`.

Feature columns (names are stable; the Rust crate apex-features documents the exact conventions):

Grain `update` (one row per book message, snapshot or delta; NaN while the book is not synced, crossed or one-sided):

| column | meaning |
|---|---|
| ts, symbol, update_id | the message's time (UTC ns), symbol and V5 update id `u` |
| best_bid, best_ask, mid | touch prices and their mean |
| spread, spread_ticks, spread_bps | best ask - best bid in price units, in ticks, in basis points of mid |
| microprice | (bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty) |
| ofi_l1, ofi_l5 | order flow imbalance (Cont, Kukanov & Stoikov 2014) at the touch, and summed over the top 5 levels |
| ofi_1 .. ofi_5 | OFI per level (Xu, Gould & Howison 2019); a missing level counts as an empty level beyond the book |
| pressure_1, pressure_5, pressure_10 | (bid depth - ask depth) / (bid depth + ask depth) over the top 1, 5, 10 levels |

OFI is NaN on the first snapshot, after a gap or a rebasing snapshot (no usable state before the message).

Grain `trade` (one row per trade): ts, symbol, signed_volume (side * size), tfi_<w> = sum(side * size) / sum(size)
over the symbol's trades with ts in (t - w, t] up to this one, per window w (`--tfi-windows`).

Bar grains `1m`, `5m`, `15m`, `1h` (one row per bar; ts = bar open, bars at multiples of the interval in UTC,
empty bars filled flat at the previous close with volume 0):

| column | meaning |
|---|---|
| ts, symbol, interval | bar open (UTC ns), symbol, the grain |
| open, high, low, close, volume, turnover | OHLCV; turnover in quote units |
| n_trades, buy_volume | trades in the bar and taker-buy volume (NaN for bars made from klines) |
| clv | ((close - low) - (high - close)) / (high - low), 0 when high = low |
| ret | log(close / previous close); NaN on the first bar |
| rv | sqrt(sum of the last N squared `ret`), N = `--rv-bars`; NaN until N returns exist |
| close_<h>, volume_<h>, clv_<h>, ret_<h>, rv_<h> | MTFA: those of the last *closed* bar of each higher interval h |
| ofi_l1_sum, ofi_l5_sum | with a book table: sum of the bar's defined update OFIs (NaN when none) |
| pressure_5_last, spread_bps_mean | with a book table: last defined pressure_5, mean defined spread_bps in the bar |
| vmd_1 .. vmd_K | VMD of `close` over the last `--vmd-window` bars, K = `--vmd-modes`, lowest frequency first |

VMD columns hold the last value of each mode of the window ending at the row (so they are causal); NaN until the
first full window.

Every bar column is computed in Rust by the streaming feature engine of apex-features run over the tables, so the
simulator's strategy slot and the live engine, fed the same trades and book message by message, get the same rows.

MTFA uses the higher bar [H, H+h) on the row opening at ts only if H + h <= ts + interval (the row's close), so no
column of a row depends on data after its close; NaN before the first closed higher bar.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, TypeVar

import numpy as np
import polars as pl

from apexctl import _core
from apexctl.console import safe
from apexctl.errors import DataError, InputError, SchemaError, UsageError
from apexctl.forge import ranges
from apexctl.forge.durations import DAY, HOUR, MINUTE, SECOND, duration_ns, label, parse_duration
from apexctl.forge.feedback import Steps, note, steps
from apexctl.forge.io import (
    META_PARAMS,
    Table,
    TableFile,
    open_tables,
    refuse_same_data,
    table_pieces,
)
from apexctl.forge.table_checks import (
    TRADE_IDENTITY,
    book_message_named,
    conflicting_book_messages,
    conflicting_trades,
    quoted,
    repeated_trades,
    trade_difference,
    utc_text,
)
from apexctl.forge.time_windows import Books, TimeWindow, Trades, survey, survey_trades, symbol_spans
from apexctl.schemas.tables import BARS, BOOK, FEATURES, TRADES


class Grain(StrEnum):
    """One output row per: book message, trade, or bar of the interval."""

    update = "update"
    trade = "trade"
    m1 = "1m"
    m5 = "5m"
    m15 = "15m"
    h1 = "1h"


BAR_GRAINS = {Grain.m1: MINUTE, Grain.m5: 5 * MINUTE, Grain.m15: 15 * MINUTE, Grain.h1: HOUR}

#: The first columns at grain `update`, in this order (fixed by the issue); the other update columns follow in the
#: order apex-features computes them (its `UPDATE_FLOAT_COLUMNS`).
UPDATE_LEADING = [
    "ts",
    "symbol",
    "update_id",
    "best_bid",
    "best_ask",
    "mid",
    "spread",
    "microprice",
    "ofi_l1",
    "ofi_l5",
    "pressure_5",
]

#: Most TFI windows in one run (a column each).
MAX_TFI_WINDOWS = 32
VMD_MODES = ranges.VMD_MODES
VMD_WINDOW = ranges.VMD_WINDOW
#: Most rows of a bar grain in one run, all symbols together (the grid runs from each symbol's first to its last bar,
#: empty bars filled). A run peaks near 0.5 kB per bar row (measured: 576,000 1m rows of 32 columns, 480 MB), so this
#: keeps a run around 1 GB, and one stray timestamp (decades of empty bars) is refused instead of allocated. It still
#: holds 3.8 years of 1m bars of one symbol (Bybit's perpetuals began in 2018-2020), or 19 years of 5m bars.
MAX_BAR_ROWS = 2_000_000
#: A row number in the messages of the Rust feature calls: "trades table, row 12: ..." (book rows without the table).
_ROW_MESSAGE = re.compile(r"^(?:(trades|bars|book) table, )?row (\d+): (.*)$", re.DOTALL)


def check_vmd(modes: int, window: int) -> tuple[int, int]:
    """The VMD settings if each is in range and the window holds the modes; UsageError naming the options if not."""
    VMD_MODES.check(modes, "--vmd-modes")
    VMD_WINDOW.check(window, "--vmd-window")
    if modes != 0 and window < max(2 * modes, 4):
        raise UsageError(f"--vmd-window must be at least max(2 * --vmd-modes, 4) bars; got {window} for {modes} modes")
    return modes, window


def table_options(table: Table) -> dict[str, int]:
    """The `--rv-bars`, `--vmd-modes` and `--vmd-window` recorded in a features table's `apex.params` metadata
    (defaults for what is not recorded), each checked as the options are: they reach the simulator's Rust settings
    with `evolve --dsg`, and a bundle's record of the bars the live engine must compute."""
    params = table.metadata.get(META_PARAMS)
    if params is None:
        return dict(ranges.FEATURE_DEFAULTS)
    where = f"{safe(table.source)}: metadata key '{META_PARAMS}'"
    remedy = "re-create the table with `apexctl features`"
    if not isinstance(params, dict):
        raise InputError(f"{where} holds {quoted(params)}, expected a JSON object; {remedy}")
    options: dict[str, int] = {}
    for name, default in ranges.FEATURE_DEFAULTS.items():
        value = params.get(name, default)
        accepted = ranges.table_range("features", name)
        try:
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"expected {accepted.describe()}, got {quoted(value)}")
            options[name] = accepted.parse(value)
        except ValueError as exc:
            raise InputError(f"{where}, entry '{name}': {exc} (the --{name.replace('_', '-')} of the table); "
                             f"{remedy}") from None  # fmt: skip
    try:
        check_vmd(options["vmd_modes"], options["vmd_window"])
    except UsageError as exc:
        raise InputError(f"{where}, entries 'vmd_modes' and 'vmd_window': {exc}; {remedy}") from None
    return options


def bar_seconds_of(table: Table, frame: pl.DataFrame) -> int:
    """The bar length, in seconds, of a bar-grain features table whose bars (rows `frame`, of one or more symbols)
    are read: its recorded `--grain`, else its `interval` column, else the shortest step between its bars. The three
    must agree (bars may be missing, never closer than the bar): InputError naming the file when they do not."""
    where = safe(table.source)
    remedy = "re-create it with `apexctl features --grain 1m` (or the grain it was made at)"
    params = table.metadata.get(META_PARAMS)
    grain = params.get("grain") if isinstance(params, dict) else None
    known = {g.value: ns for g, ns in BAR_GRAINS.items()}
    if grain is not None and grain not in known:
        raise InputError(
            f"{where}: its '{META_PARAMS}' metadata says grain {quoted(grain)}, not a bar grain "
            f"({', '.join(known)}); {remedy}"
        )
    bar = known[grain] if grain is not None else None
    if "interval" in frame.columns:
        intervals = frame["interval"].drop_nulls().unique().to_list()
        if len(intervals) > 1:
            raise InputError(f"{where}: column 'interval' mixes {sorted(map(str, intervals))[:4]}; {remedy}")
        stated = duration_ns(str(intervals[0])) if intervals else None
        if intervals and stated is None:
            raise InputError(f"{where}: column 'interval' holds {quoted(intervals[0])}, not a bar length; {remedy}")
        if bar is not None and stated is not None and stated != bar:
            raise InputError(
                f"{where}: its '{META_PARAMS}' grain {quoted(grain)} and its 'interval' column "
                f"{quoted(intervals[0])} disagree; {remedy}"
            )
        bar = bar if bar is not None else stated
    steps = frame["ts"].unique().sort().diff().drop_nulls()
    step = steps.filter(steps > 0).min()
    if bar is None:
        bar = step if isinstance(step, int) else None
    elif isinstance(step, int) and step % bar:
        raise InputError(f"{where}: bars {label(step)} apart, not a whole number of its {label(bar)} bars; {remedy}")
    if bar is None or bar % SECOND or not 1 <= bar // SECOND <= DAY // SECOND:
        raise InputError(
            f"{where}: cannot tell its bar length (no grain in its '{META_PARAMS}' metadata, and its bar times are "
            f"not whole seconds apart, up to a day); {remedy}"
        )
    return bar // SECOND


def bars_made(table: Table, frame: pl.DataFrame, options: dict[str, int] | None = None) -> dict[str, Any]:
    """What a bundle records of the bars its models learned from (the manifest's `bars`): the table's bar length
    (see `bar_seconds_of`, over its rows `frame`) and its feature `options` (see `table_options`, read when not
    given)."""
    return {"bar_seconds": bar_seconds_of(table, frame), "options": options or table_options(table)}


def recorded_bars(doc: dict[str, Any], where: str, features: list[str]) -> dict[str, Any] | None:
    """The `bars` a hall-of-fame index or model card records (None when it predates them), checked by the engine's
    own reading of a manifest's `bars` for models reading `features`, with every option filled in; SchemaError
    naming `where` if it is damaged."""
    bars = doc.get("bars")
    if bars is None:
        return None
    try:
        return json.loads(_core.bundle_bars(json.dumps(bars, allow_nan=False), features))
    except (SchemaError, ValueError) as exc:
        raise SchemaError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class FeatureConfig:
    """What `apexctl features` computes."""

    grain: Grain = Grain.update
    tfi_windows: tuple[str, ...] = ("1s", "10s", "60s")
    rv_bars: int = ranges.FEATURE_DEFAULTS["rv_bars"]
    mtfa: bool = True
    vmd_modes: int = ranges.FEATURE_DEFAULTS["vmd_modes"]
    vmd_window: int = ranges.FEATURE_DEFAULTS["vmd_window"]

    def as_params(self) -> dict[str, Any]:
        return {
            "grain": self.grain.value,
            "tfi_windows": list(self.tfi_windows),
            "rv_bars": self.rv_bars,
            "mtfa": self.mtfa,
            "vmd_modes": self.vmd_modes,
            "vmd_window": self.vmd_window,
        }


@dataclass
class Inputs:
    """The input tables by kind, with one symbol-code mapping shared by all: bars concatenated and time-ordered, the
    book and the trades surveyed to be read a time window at a time."""

    books: Books | None
    trades: Trades | None
    bars: pl.DataFrame | None
    symbols: list[str]
    tables: list[TableFile]
    #: Per kind, the file (index into `tables`) and file row of each row of the combined frame (for the book and the
    #: trades: of the window or windows in hand): messages must name those, not a row of the sorted concatenation.
    origins: dict[str, pl.DataFrame] = field(default_factory=dict)

    @property
    def codes(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.symbols)}

    def where(self, kind: str, row: int) -> str:
        """'FILE: KIND table, row N': where row `row` of the combined `kind` frame came from (as `located` says it)."""
        origin = self.origins[kind].row(row, named=True)
        return self.at(kind, origin["_source"], origin["_row"])

    def at(self, kind: str, source: int, row: int) -> str:
        """'FILE: KIND table, row N' of row `row` of input `source`."""
        return f"{safe(self.tables[source].source)}: {kind} table, row {row}"

    def located(self, exc: DataError, kind: str) -> DataError:
        """`exc` from a Rust call fed the combined `kind` frame, its row (if it names one) turned into the file and
        the file's row (book rows are named without their table); other messages get the input files in front."""
        match = _ROW_MESSAGE.match(str(exc))
        table = (match.group(1) or kind) if match else None
        if match is None or table not in self.origins:
            return DataError(f"{', '.join(safe(t.source) for t in self.tables)}: {exc}")
        origin = self.origins[table].row(int(match.group(2)), named=True)
        source = safe(self.tables[origin["_source"]].source)
        return DataError(f"{source}: {table} table, row {origin['_row']}: {match.group(3)}")


#: The tables each grain reads (any others given are not read).
_GRAIN_READS = {Grain.update: {"book"}, Grain.trade: {"trades"}}


def gather(files: Sequence[TableFile], grain: Grain) -> Inputs:
    """The inputs of a run at `grain`, of the kinds it reads: bars read whole, books and trades surveyed."""
    by_kind: dict[str, list[tuple[int, pl.DataFrame]]] = {"bars": []}
    surveyed: dict[str, list[tuple[int, TableFile]]] = {"book": [], "trades": []}
    reads = _GRAIN_READS.get(grain, {"book", "trades", "bars"})
    for index, file in enumerate(files):
        if file.schema_name not in reads:
            continue
        if file.schema_name in surveyed:
            surveyed[file.schema_name].append((index, file))
        else:
            by_kind[file.schema_name].append((index, file.read()))
    origins: dict[str, pl.DataFrame] = {}

    def combined(kind: str, columns: list[str], sort_by: list[str]) -> pl.DataFrame | None:
        inputs = by_kind.pop(kind)
        if len(inputs) == 1 and len(sort_by) == 1 and inputs[0][1][sort_by[0]].is_sorted():
            # One input in order, as every apexctl output is: no copy (a column added to a frame read in pieces
            # would make polars copy the whole frame into one piece).
            index, frame = inputs[0]
            origins[kind] = pl.DataFrame(
                {"_source": pl.repeat(index, frame.height, dtype=pl.UInt32, eager=True)}
            ).with_row_index("_row")
            return frame.select(columns)
        numbered = [
            frame.select(
                *columns,
                pl.lit(index, dtype=pl.UInt32).alias("_source"),
                pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"),
            )
            for index, frame in inputs
        ]
        if not numbered:
            return None
        frame = pl.concat(numbered).sort(sort_by, maintain_order=True)
        origins[kind] = frame.select("_source", "_row")
        return frame.select(columns)

    bars = combined("bars", BARS.column_names, ["symbol", "ts"])
    books = survey(surveyed["book"]) if surveyed["book"] else None
    trades = survey_trades(surveyed["trades"]) if surveyed["trades"] else None
    symbols: set[str] = set()
    for held in (books, trades):
        if held is not None:
            symbols.update(held.symbols)
    if bars is not None:
        symbols.update(bars["symbol"].unique().to_list())
    return Inputs(books, trades, bars, sorted(symbols), list(files), origins)


_Result = TypeVar("_Result")
#: Rows of a piece of `--grain trade` output (a Parquet row group) at the most.
_TRADE_PIECE_ROWS = 1 << 20


def _check_repeated_bars(inputs: Inputs) -> None:
    """InputError naming both rows when a symbol has two bars (klines) at one time: a sorted table still has them."""
    bars = inputs.bars
    assert bars is not None
    repeated = (bars["symbol"] == bars["symbol"].shift(1)) & (bars["ts"] == bars["ts"].shift(1))
    if repeated.any():
        row = int(repeated.arg_true()[0])
        ts = int(bars["ts"][row])
        raise InputError(
            f"{inputs.where('bars', row)}: repeated timestamp: symbol {safe(bars['symbol'][row])} has a bar at ts "
            f"{ts} ({utc_text(ts)}) already (at {inputs.where('bars', row - 1)}); keep one bar per symbol and time"
        )


def _check_repeated_trades(inputs: Inputs) -> None:
    """InputError naming both rows when two inputs hold one trade (`repeated_trades`): overlapping files would count
    it twice in volume, trade counts and flow. `fetch --source file` merges such files, dropping the repeats."""
    assert inputs.trades is not None
    shared = inputs.trades.shared  # in the merged order, so a repeat's first copy comes before it
    repeated = repeated_trades(shared)
    if not repeated.any():
        return
    held = shared.row(int(repeated.arg_true()[0]), named=True)
    same = pl.all_horizontal(pl.col(c) == held[c] for c in TRADE_IDENTITY)
    first = shared.filter(same).row(0, named=True)
    overlap = "the file repeats it" if held["_source"] == first["_source"] else "the inputs overlap"
    raise InputError(
        f"{inputs.at('trades', held['_source'], held['_row'])}: trade {safe(held['trade_id'])} of "
        f"{safe(held['symbol'])} is already at {inputs.at('trades', first['_source'], first['_row'])}; {overlap}. "
        "Fetch the source files in one run (`apexctl fetch --source file A B` keeps each trade once), then compute "
        "features from its output"
    )


def _check_conflicting_trades(inputs: Inputs) -> None:
    """InputError naming both rows when one trade id of a symbol is held by two rows that differ in time, side,
    price or size (`conflicting_trades`): two sources of one symbol, whose bars would mix two markets."""
    assert inputs.trades is not None
    shared = inputs.trades.shared
    found = conflicting_trades(shared)
    if found is None:
        return
    first, row = (shared.row(at, named=True) for at in found)
    raise InputError(
        f"{inputs.at('trades', first['_source'], first['_row'])} and {inputs.at('trades', row['_source'], row['_row'])}"
        f": trade {safe(row['trade_id'])} of {safe(row['symbol'])} twice with different content "
        f"({trade_difference(shared, *found)}); these look like two different sources of one symbol (simulated runs "
        "number their trades from 1): give the trades of one source"
    )


def _check_conflicting_books(inputs: Inputs, window: TimeWindow) -> None:
    """InputError naming both rows when two book inputs hold one message with different content
    (`conflicting_book_messages`; the rows of one message share their time, so a window holds all of them)."""
    found = conflicting_book_messages(window.frame, window.origins["_source"])
    if found is None:
        return
    first, other, differ = found
    raise InputError(
        f"{inputs.where('book', first)} and {inputs.where('book', other)}: "
        f"{book_message_named(window.frame, first)} twice with different content ({differ}); these look like two "
        "different sources of one symbol's book: give the book of one source"
    )


def _check_book_meets_trades(inputs: Inputs, interval: int) -> None:
    """InputError when no bar (of `interval` ns) of a symbol holds both its trades and its book messages: every
    bar's book columns would be NaN (a book of another day, or trades shifted in time), which reads as a market
    without a book."""
    trades, books = inputs.trades, inputs.books
    assert trades is not None
    assert books is not None
    both = trades.spans.join(books.spans, on="symbol", suffix="_book")
    bar = {c: pl.col(c) // interval for c in ("first", "last", "first_book", "last_book")}
    apart = both.filter((bar["last"] < bar["first_book"]) | (bar["last_book"] < bar["first"]))
    if not apart.height:
        return
    row = apart.sort("symbol").row(0, named=True)
    # The inputs that hold the symbol's first trade and its first book row.
    files = (safe(inputs.tables[source].source) for source in (row["source"], row["source_book"]))
    raise InputError(
        f"{', '.join(files)}: {safe(row['symbol'])}'s trades ({utc_text(row['first'])} to "
        f"{utc_text(row['last'])}) and its book ({utc_text(row['first_book'])} to {utc_text(row['last_book'])}) do "
        "not overlap, so every bar would have no book; give the book of the same span (or only the trades)"
    )


def _source_spans(inputs: Inputs) -> pl.DataFrame:
    """The spans of the bar source's symbols (`Trades.spans`: first and last ts, each with the input and file row
    of its first row in the merged order): the trades', or the bars table's."""
    if inputs.trades is not None:
        return inputs.trades.spans
    bars = inputs.bars
    assert bars is not None
    rows = pl.concat([bars.select("symbol", "ts"), inputs.origins["bars"]], how="horizontal")
    # Each row is a span of its own.
    return symbol_spans(
        rows.select(
            "symbol",
            pl.col("ts").alias("first"),
            pl.col("_source").alias("source"),
            pl.col("_row").alias("row"),
            pl.col("ts").alias("last"),
            pl.col("_source").alias("source_last"),
            pl.col("_row").alias("row_last"),
        )
    )


def _check_bar_grid(inputs: Inputs, kind: str, grain: Grain) -> None:
    """InputError before any bar is built when the grid (each symbol from its first to its last bar) would hold
    more than MAX_BAR_ROWS rows, naming the symbol of the longest span and the files of its ends."""
    interval = BAR_GRAINS[grain]
    bars = (pl.col("last") // interval) - (pl.col("first") // interval) + 1
    spans = _source_spans(inputs).with_columns(bars.alias("bars"))
    total = int(spans["bars"].sum())
    if total <= MAX_BAR_ROWS:
        return
    widest = spans.sort("bars", "symbol", descending=[True, False]).row(0, named=True)
    first, last = (inputs.at(kind, widest[f"source{end}"], widest[f"row{end}"]) for end in ("", "_last"))
    raise InputError(
        f"--grain {grain.value} would build {total:,} bars, more than the {MAX_BAR_ROWS:,} one run makes: symbol "
        f"{safe(widest['symbol'])} alone spans {utc_text(widest['first'])} ({first}) to "
        f"{utc_text(widest['last'])} ({last}); check those timestamps, or give less time or fewer symbols per run, "
        "or a coarser --grain"
    )


def _calling(inputs: Inputs, kind: str, call: Callable[..., _Result], *args: Any, **kwargs: Any) -> _Result:
    """`call(*args, **kwargs)`, a Rust feature call fed the combined `kind` frame; its DataError names the file row."""
    try:
        return call(*args, **kwargs)
    except DataError as exc:
        raise inputs.located(exc, kind) from None


def _symbol_codes(frame: pl.DataFrame, codes: dict[str, int]) -> np.ndarray:
    return frame["symbol"].replace_strict(codes, return_dtype=pl.UInt32).to_numpy()


def book_arrays(book: pl.DataFrame, symbol_codes: np.ndarray) -> dict[str, np.ndarray]:
    """A `book` table as the Rust bindings take it: NumPy columns by name, kind 0 snapshot / 1 delta, missing prices
    and sizes NaN."""
    return {
        "ts": book["ts"].to_numpy(),
        "symbol": symbol_codes,
        "kind": (book["kind"] == "delta").cast(pl.UInt8).to_numpy(),
        "side": book["side"].to_numpy(),
        "price": book["price"].fill_null(np.nan).to_numpy(),
        "size": book["size"].fill_null(np.nan).to_numpy(),
        "update_id": book["update_id"].to_numpy(),
        "seq": book["seq"].to_numpy(),
    }


#: The `kind` column's names by code (apex-book's KIND_SNAPSHOT 0 and KIND_DELTA 1).
BOOK_KINDS = pl.Series("kind", ["snapshot", "delta"], dtype=pl.String)


def _symbol_names(codes: np.ndarray, symbols: Sequence[str]) -> pl.Series:
    return pl.Series("symbol", symbols, dtype=pl.String).gather(codes)


def book_frame(columns: Mapping[str, np.ndarray], symbols: Sequence[str]) -> pl.DataFrame:
    """The inverse: a `book` table from a binding's NumPy columns (`symbol` codes into `symbols`, `kind` codes);
    NaN prices and sizes (a message without levels) become nulls. Typed even without rows."""
    levels = {c: columns[c] for c in ("side", "price", "size", "update_id", "seq")}
    named = {"symbol": _symbol_names(columns["symbol"], symbols), "kind": BOOK_KINDS.gather(columns["kind"])}
    return pl.DataFrame({"ts": columns["ts"], **named, **levels}).with_columns(
        pl.col("price").fill_nan(None), pl.col("size").fill_nan(None)
    )


def trade_frame(columns: Mapping[str, Any], symbols: Sequence[str]) -> pl.DataFrame:
    """A `trades` table from a binding's columns (`symbol` codes into `symbols`; trade ids as Arrow-style
    `trade_id_data` bytes plus `trade_id_offsets`). Typed even without rows."""
    import pyarrow as pa  # here, not at the top: most commands that import this module never build a trades frame

    buffers = (pa.py_buffer(columns["trade_id_offsets"]), pa.py_buffer(columns["trade_id_data"]))
    trade_ids = pl.from_arrow(pa.LargeStringArray.from_buffers(len(columns["ts"]), *buffers))
    assert isinstance(trade_ids, pl.Series)
    values = {c: columns[c] for c in ("side", "price", "size")}
    symbol = _symbol_names(columns["symbol"], symbols)
    return pl.DataFrame({"ts": columns["ts"], "symbol": symbol, **values, "trade_id": trade_ids.cast(pl.String)})


def _trade_arrays(trades: pl.DataFrame, codes: dict[str, int]) -> dict[str, np.ndarray]:
    return {c: trades[c].to_numpy() for c in ("ts", "side", "price", "size")} | {"symbol": _symbol_codes(trades, codes)}


def _trade_windows(inputs: Inputs, bar: Steps) -> Iterator[dict[str, np.ndarray]]:
    """The merged trades as binding arrays, a time window at a time (the origins of the window in hand set for the
    messages), with progress on `bar`."""
    trades = inputs.trades
    assert trades is not None
    for window in trades.windows():
        inputs.origins["trades"] = window.origins
        yield _trade_arrays(window.frame, inputs.codes)
        bar.advance(window.frame.height)


def trade_pieces(inputs: Inputs, windows_ns: list[int]) -> Iterator[pl.DataFrame]:
    """Per-trade features (`--grain trade`) of the merged trades, a time window at a time through one
    TradeFeatureStream at the whole table's size scale, each window's rows in pieces of at most _TRADE_PIECE_ROWS."""
    assert inputs.trades is not None
    stream = _core.TradeFeatureStream(windows_ns=windows_ns, size_decimals=inputs.trades.size_decimals)
    with steps("trade flow (rows)", inputs.trades.rows) as bar:
        for source in _trade_windows(inputs, bar):
            arrays = _calling(inputs, "trades", stream.push, source)
            for start in range(0, len(arrays["ts"]), _TRADE_PIECE_ROWS):
                yield _frame(
                    {name: column[start : start + _TRADE_PIECE_ROWS] for name, column in arrays.items()},
                    inputs.symbols,
                )


def _streamed_bars(inputs: Inputs, options: dict[str, Any], kline_interval: int | None) -> dict[str, np.ndarray]:
    """Bar features (`features_bars` with `options`) of the merged trades, or the klines of `kline_interval` ns, and,
    with a book, its update features, fed to one BarTableStream a window of each at a time, the input that is behind
    in time first: neither input is held whole (what is held is about a window of each, and the bars)."""
    trades, books = inputs.trades, inputs.books
    codes = inputs.codes
    last_ts = {codes[symbol]: last for symbol, last in _source_spans(inputs).select("symbol", "last").iter_rows()}
    stream = _core.BarTableStream(last_ts=last_ts, with_book=books is not None, **options)
    if trades is not None:
        kind, rows = "trades", trades.rows
        source: Callable[[Steps], Iterator[dict[str, np.ndarray]]] = functools.partial(_trade_windows, inputs)
        push_source: Callable[..., None] = stream.push_trades
    else:
        kind, klines = "bars", inputs.bars
        assert klines is not None
        assert kline_interval is not None
        rows = klines.height
        source = functools.partial(_kline_piece, inputs)
        push_source = functools.partial(stream.push_klines, interval_ns=kline_interval)
    with steps("building the bars (rows)", rows + (books.rows if books is not None else 0)) as bar:
        feeds = {kind: (source(bar), push_source, stream.close_source)}
        if books is not None:
            feeds["update features"] = (update_pieces(inputs, bar), stream.push_updates, stream.close_updates)
        reached: dict[str, int] = {feed: -(2**63) for feed in feeds}
        while feeds:
            feed = min(feeds, key=lambda k: reached[k])
            pieces, push, close = feeds[feed]
            piece = next(pieces, None)
            if piece is None:
                close()
                del feeds[feed]
                continue
            _calling(inputs, feed, push, piece)
            if len(piece["ts"]):
                reached[feed] = int(piece["ts"].max())
    return _calling(inputs, kind, stream.finish)


def _kline_piece(inputs: Inputs, bar: Steps) -> Iterator[dict[str, np.ndarray]]:
    """The klines (read whole: a bar table is small) as one piece of binding arrays, with progress on `bar`."""
    klines = inputs.bars
    assert klines is not None
    columns = {c: klines[c].to_numpy() for c in ("ts", "open", "high", "low", "close", "volume", "turnover")}
    yield columns | {"symbol": _symbol_codes(klines, inputs.codes)}
    bar.advance(klines.height)


def _tick_units(inputs: Inputs) -> tuple[int | None, dict[int, int] | None]:
    """Price decimals and tick sizes per symbol code from the instrument info a producer recorded, if complete."""
    assert inputs.books is not None
    instruments: dict[str, dict[str, str]] = {}
    for table in inputs.tables:
        instruments.update(table.instruments())
    ticks: dict[str, Decimal] = {}
    for symbol in inputs.books.symbols:
        try:
            ticks[symbol] = Decimal(str(instruments[symbol]["tick_size"]))
        except (KeyError, TypeError, InvalidOperation):
            return None, None
    if not ticks or any(t <= 0 for t in ticks.values()):
        return None, None
    decimals = max(max(0, -int(t.normalize().as_tuple().exponent)) for t in ticks.values())
    units = {inputs.codes[s]: int(t.scaleb(decimals)) for s, t in ticks.items()}
    return decimals, units


def _check_book_rows(inputs: Inputs, book: pl.DataFrame) -> None:
    """InputError naming the row of a window's first unknown message kind, or level at a price <= 0 or of a
    negative size."""
    kinds = book["kind"]
    bad = ~kinds.is_in(["snapshot", "delta"])
    if bad.any():
        row = int(bad.arg_true()[0])
        raise InputError(
            f"{inputs.where('book', row)}: column 'kind' holds '{safe(kinds[row])}', expected 'snapshot' or 'delta'"
        )
    # A level (side +1/-1; 0 marks a message without levels) sits at a positive price with a size >= 0 (0 removes
    # it). The book replay would take a negative price as a crossed level and flag the messages after it.
    levels = book["side"] != 0
    for column, usable, expected in (
        ("price", book["price"] > 0.0, "a positive price"),
        ("size", book["size"] >= 0.0, "a size >= 0"),
    ):
        bad = (levels & ~usable.fill_null(False)) & book[column].is_not_nan()  # NaN: the Rust check names it
        if bad.any():
            row = int(bad.arg_true()[0])
            raise InputError(
                f"{inputs.where('book', row)}: column '{column}' holds {book[column][row]}, expected {expected}"
            )


def update_pieces(inputs: Inputs, bar: Steps | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Per-update features of the book through apexctl._core, window by window (dicts of NumPy columns); the
    windows' rows checked as they are read, and conflicting inputs refused. Progress on `bar` (one of its own when
    None)."""
    books = inputs.books
    assert books is not None
    if bar is None:
        with steps("replaying the book (rows)", books.rows) as own:
            yield from update_pieces(inputs, own)
        return
    tick_decimals, tick_units = _tick_units(inputs)
    price_decimals, qty_decimals = books.decimals
    replay = _core.UpdateReplay(
        price_decimals=tick_decimals if tick_decimals is not None else price_decimals,
        qty_decimals=qty_decimals,
        tick_units=tick_units,
    )
    incidents, first_incident = 0, ""
    for window in books.windows():
        inputs.origins["book"] = window.origins
        if len(books.inputs) > 1:
            _check_conflicting_books(inputs, window)
        _check_book_rows(inputs, window.frame)
        codes = _symbol_codes(window.frame, inputs.codes)
        arrays = _calling(inputs, "book", replay.push, book_arrays(window.frame, codes))
        rows = arrays.pop("incident_row")
        if len(rows) and not incidents:
            first_incident = inputs.where("book", int(rows[0]))
        incidents += len(rows)
        bar.advance(window.frame.height)
        yield arrays
    if incidents:
        note(
            f"note: {incidents:,} book messages were out of sequence or left a crossed book (first at "
            f"{first_incident}); their update features are NaN until the next snapshot"
        )


def _frame(arrays: dict[str, np.ndarray], symbols: list[str], order: list[str] | None = None) -> pl.DataFrame:
    """A frame of the returned columns (in `order` if given), symbol codes turned back into symbol names."""
    names = order if order is not None else list(arrays)
    columns: dict[str, Any] = {name: arrays[name] for name in names}
    columns["symbol"] = pl.Series("symbol", np.asarray(symbols, dtype=object)[arrays["symbol"]], dtype=pl.String)
    return pl.DataFrame(columns)


def _require(kinds: set[str], grain: Grain) -> None:
    """UsageError unless the input tables (their `kinds`) are what `grain` is computed from."""
    given = ", ".join(k for k in ("book", "trades", "bars") if k in kinds) or "nothing"
    if grain == Grain.update and "book" not in kinds:
        raise UsageError(f"--grain update needs a 'book' table among the inputs (given: {given})")
    if grain == Grain.trade and "trades" not in kinds:
        raise UsageError(f"--grain trade needs a 'trades' table among the inputs (given: {given})")
    if grain in BAR_GRAINS:
        if "trades" not in kinds and "bars" not in kinds:
            raise UsageError(
                f"--grain {grain.value} needs a 'trades' or a 'bars' table among the inputs (given: {given})"
            )
        if "trades" in kinds and "bars" in kinds:
            raise UsageError(
                f"--grain {grain.value}: give either 'trades' or 'bars' tables to build bars from, not both"
            )


def tfi_windows_ns(spellings: Sequence[str]) -> list[int]:
    """The `--tfi-windows` in ns, in order; UsageError for a bad one or two spellings of one duration (each window is
    one column, named by its duration)."""
    windows: list[int] = []
    for text in spellings:
        ns = parse_duration(text, "TFI window")
        if ns in windows:
            first = spellings[windows.index(ns)]
            raise UsageError(f"--tfi-windows: {safe(first.strip())} and {safe(text.strip())} are the same window")
        windows.append(ns)
    return windows


def check_options(config: FeatureConfig) -> None:
    """UsageError naming the first option out of range, before any input is read."""
    ranges.RV_BARS.check(config.rv_bars, "--rv-bars")
    check_vmd(config.vmd_modes, config.vmd_window)
    if config.grain == Grain.trade:
        if not 1 <= len(config.tfi_windows) <= MAX_TFI_WINDOWS:
            raise UsageError(f"--tfi-windows: give 1 to {MAX_TFI_WINDOWS} windows, got {len(config.tfi_windows)}")
        tfi_windows_ns(config.tfi_windows)


def compute(inputs: Inputs, config: FeatureConfig) -> Iterator[pl.DataFrame]:
    """The `features` table for the inputs at the configured grain (options checked by `check_options`), in pieces
    to be written in order: the update grain a piece per book window, the others one piece. Whole-table checks fail
    before the first."""
    grain = config.grain
    if grain == Grain.update:
        for arrays in update_pieces(inputs):
            order = UPDATE_LEADING + [name for name in arrays if name not in UPDATE_LEADING]
            yield _frame(arrays, inputs.symbols, order)
        return
    if inputs.trades is not None:
        _check_conflicting_trades(inputs)
        _check_repeated_trades(inputs)
    if grain == Grain.trade:
        yield from trade_pieces(inputs, tfi_windows_ns(config.tfi_windows))
        return
    interval = BAR_GRAINS[grain]
    if inputs.trades is not None and inputs.books is not None:
        _check_book_meets_trades(inputs, interval)
    if inputs.bars is not None:
        _check_repeated_bars(inputs)
    _check_bar_grid(inputs, "trades" if inputs.trades is not None else "bars", grain)
    higher = [h for h in BAR_GRAINS.values() if h > interval and h % interval == 0] if config.mtfa else []
    options: dict[str, Any] = {
        "interval_ns": interval,
        "rv_window": config.rv_bars,
        "higher_ns": higher,
        "vmd_modes": config.vmd_modes,
        "vmd_window": config.vmd_window,
    }
    kline_interval = None
    if inputs.bars is not None:
        kline_intervals = inputs.bars["interval"].unique().to_list()
        if len(kline_intervals) > 1:
            raise InputError(f"bars table mixes intervals {sorted(kline_intervals)}; give one interval per run")
        kline_interval = parse_duration(kline_intervals[0], "bars interval") if kline_intervals else interval
    arrays = _streamed_bars(inputs, options, kline_interval)
    frame = _frame(arrays, inputs.symbols)
    yield frame.insert_column(2, pl.Series("interval", [grain.value] * frame.height, dtype=pl.String))


@dataclass(frozen=True)
class Written:
    """What `run` wrote: rows and columns of the features table."""

    rows: int
    columns: int


def run(paths: Sequence[str], output: str, config: FeatureConfig) -> Written:
    """Reads the inputs, computes the features and writes them atomically to `output` (`-` = stdout), a book
    window at a time at grain `update`."""
    files = open_tables(paths, [BOOK, TRADES, BARS])
    digests: dict[str, str] = {}
    for file in files:
        refuse_same_data(digests, file.source, file.sha256)
        if not file.rows:
            raise InputError(f"{safe(file.source)}: the '{file.schema_name}' table has no rows; nothing to compute")
    _require({f.schema_name for f in files}, config.grain)
    check_options(config)
    pieces = compute(gather(files, config.grain), config)
    first = next(pieces)  # the options and whole-table checks, before an output is begun
    rows, columns = 0, first.width
    with table_pieces(
        output,
        schema=FEATURES,
        producer="features",
        inputs={f.source: f.sha256 for f in files},
        params=config.as_params(),
    ) as write:
        for piece in itertools.chain([first], pieces):
            write(piece)
            rows += piece.height
    return Written(rows, columns)
