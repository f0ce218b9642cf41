"""Market statistics ("moments") of one symbol's trades/book/bars tables, the same code for simulated and real data.

The chimera fits the simulator by matching these numbers, so each one must be computable on a short span, finite
whenever the data has the thing it measures (NaN otherwise, never an exception), and scale-free where the two
markets could differ only by units (returns in basis points, sizes as logs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from apexctl import _core
from apexctl.console import safe
from apexctl.errors import InputError

NS_PER_S = 1_000_000_000
BPS = 1e4
#: Rows a trade statistic works through at once, so a long target's temporaries stay small.
_BLOCK = 1 << 20


@dataclass(frozen=True)
class MomentConfig:
    """Which statistics to compute: grid, horizons and lags (all times in seconds)."""

    #: The book's touch and mid are sampled on this grid (time-weighted spread, returns).
    sample_s: float = 1.0
    #: Horizons of the return volatility and excess kurtosis (non-overlapping returns of the sampled mid).
    return_horizons_s: tuple[float, ...] = (10.0, 60.0)
    #: |return| autocorrelation is measured on returns of this horizon at these lags (in returns).
    acf_horizon_s: float = 10.0
    acf_lags: tuple[int, ...] = (1, 3, 10)
    #: Return autocorrelation (same horizon) at these lags: a market where value reaches the price late trends, and a
    #: fitted DSG must not bring that back.
    ret_acf_lags: tuple[int, ...] = (1, 5)
    #: Trade-sign autocorrelation lags (in trades).
    sign_lags: tuple[int, ...] = (1, 5, 20)
    #: Cumulative depth over the best k levels of each side.
    depth_levels: tuple[int, ...] = (1, 5, 20)
    #: The depth profile is sampled on a coarser grid (and at most this many times) to bound its cost.
    depth_sample_s: float = 5.0
    depth_max_samples: int = 2000
    #: Price impact: signed mid move this long after a trade, by trade-size tercile.
    impact_horizon_s: float = 10.0

    def names(self) -> list[str]:
        """Moment names in a fixed order (the order of every report and vector)."""
        names = ["spread_mean_bps", "spread_q10_bps", "spread_q50_bps", "spread_q90_bps"]
        for h in self.return_horizons_s:
            names += [f"vol_{_label(h)}_bps", f"kurt_{_label(h)}"]
        names += [f"absret_acf_{lag}" for lag in self.acf_lags]
        names += [f"ret_acf_{lag}" for lag in self.ret_acf_lags]
        names += [f"sign_acf_{lag}" for lag in self.sign_lags]
        names += ["trades_per_min_log", "size_log_mean", "size_log_q50", "size_log_q90", "size_log_std"]
        names += [f"depth_l{k}_log" for k in self.depth_levels]
        names += ["impact_small_bps", "impact_mid_bps", "impact_large_bps"]
        names += ["bar_range_bps"]
        return names


def _label(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


# ---------------------------------------------------------------- kernels on arrays (tested against references)


def excess_kurtosis(x: np.ndarray) -> float:
    """Sample excess kurtosis (biased moment estimator) of the finite values; NaN below 8 values or zero variance."""
    x = x[np.isfinite(x)]
    if len(x) < 8:
        return float("nan")
    d = x - x.mean()
    var = np.mean(d * d)
    if var <= 0:
        return float("nan")
    return float(np.mean(d**4) / var**2 - 3.0)


def autocorrelation(x: np.ndarray, lag: int) -> float:
    """Autocorrelation at `lag` with the full-sample mean and variance (the usual ACF estimator); NaN-safe.

    Pairs with a NaN on either side are left out; NaN when fewer than `lag + 8` values or a constant series.
    """
    x = np.asarray(x, dtype=np.float64)
    if lag < 1 or len(x) < lag + 8:
        return float("nan")
    finite = np.isfinite(x)
    mean = x[finite].mean() if finite.any() else np.nan
    if not finite.any():
        return float("nan")
    d = np.where(finite, x - mean, np.nan)
    var = np.nanmean(d * d)
    if not np.isfinite(var) or var <= 0:
        return float("nan")
    products = d[:-lag] * d[lag:]
    products = products[np.isfinite(products)]
    if len(products) == 0:
        return float("nan")
    return float(products.mean() / var)


def last_at_or_before(ts: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """For each time in `at`, the value of the last `ts` (sorted) at or before it; NaN before the first."""
    index = np.searchsorted(ts, at, side="right") - 1
    out = np.full(len(at), np.nan)
    ok = index >= 0
    out[ok] = values[index[ok]]
    return out


def lattice_quantiles(values: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Quantiles of values on a lattice (spreads in ticks, sizes in lots) that move smoothly with the proportions.

    The lattice step is the smallest positive value; each value's count of steps k is treated as uniform over
    [k - 1/2, k + 1/2] (the tied values spread evenly over that bin), so a quantile slides between lattice points
    as the share of each point changes instead of jumping a whole tick. Values are positive; NaN when none.
    """
    keep = np.isfinite(values) & (values > 0)
    values = values if keep.all() else values[keep]
    del keep
    if len(values) == 0:
        return np.full(len(qs), np.nan)
    step = values.min()
    # Sorted in place and spread out a block at a time: a week's trades would otherwise take a handful of copies.
    k = values / step
    np.round(k, out=k)
    k.sort()
    spread_out = np.empty_like(k)
    for first in range(0, len(k), _BLOCK):
        block = k[first : first + _BLOCK]
        starts = np.searchsorted(k, block, side="left")
        ends = np.searchsorted(k, block, side="right")
        rank = np.arange(first, first + len(block)) - starts
        spread_out[first : first + len(block)] = block + (rank + 0.5) / (ends - starts) - 0.5
    del k
    return np.quantile(spread_out, qs, overwrite_input=True) * step


def horizon_returns(log_mid: np.ndarray, step: int) -> np.ndarray:
    """Non-overlapping log returns over `step` grid points, in basis points (NaN where either end is NaN)."""
    if step < 1 or len(log_mid) <= step:
        return np.empty(0)
    points = log_mid[::step]
    return np.diff(points) * BPS


#: Levels `level_profile` follows at once: it works on the rows of a band of prices at a time (a level's rows share
#: its price), so its per-row arrays stay a few hundred MB over a week's book.
BAND_ROWS = 1 << 22


def level_profile(
    ts: np.ndarray,
    message: np.ndarray,
    snapshot: np.ndarray,
    side: np.ndarray,
    price: np.ndarray,
    size: np.ndarray,
    samples: np.ndarray,
) -> pl.DataFrame:
    """The resting levels of an L2 stream (snapshot + deltas, absolute sizes) at each sample time, vectorised.

    Rows are one message's levels; `message` numbers the messages in order and `snapshot` flags rows of snapshot
    messages (a snapshot replaces the whole book). A level's row is in force from its message until the next row of
    the same (book epoch, side, price) or the next snapshot. Returns columns sample, side, price, size (size > 0),
    ordered by the row that set the level, then by sample.
    """
    stream = LevelStream(samples)
    stream.push(ts, message, snapshot, side, price, size)
    return stream.finish()


class LevelStream:
    """`level_profile` of a book stream given in consecutive pieces, each cut between two times (so at a message's
    end): a piece settles the samples up to its last time, and the levels still in force at its end are carried
    into the next piece."""

    def __init__(self, samples: np.ndarray) -> None:
        self.samples = samples
        self.rows_seen = 0
        #: The ts of every snapshot message so far: the start of each book epoch (epoch k starts at the k-th).
        self.snapshot_ts: list[int] = []
        self.sampled = 0  # samples[:sampled] are done
        #: (row, ts, epoch, side, price, size) of the last piece's rows, the carried ones with them: the levels in
        #: force at its end are found among them when a later piece or sample needs them (a book given whole never
        #: does).
        self.last_rows: tuple[np.ndarray, ...] = _no_rows()
        #: Which of `last_rows` is the last row of its level in its epoch (its profile's level sort finds them).
        self.last_of_level = np.zeros(0, dtype=bool)
        self.pieces: list[tuple[np.ndarray, ...]] = []

    def push(
        self,
        ts: np.ndarray,
        message: np.ndarray,
        snapshot: np.ndarray,
        side: np.ndarray,
        price: np.ndarray,
        size: np.ndarray,
    ) -> None:
        if not len(ts):
            return
        first_rows = np.r_[True, message[1:] != message[:-1]]
        snap_start = first_rows & snapshot
        # The levels the last piece left standing (in the epoch it ended in), found before this piece's snapshots.
        carried = self._carried()
        epoch = len(self.snapshot_ts) + np.cumsum(snap_start)
        self.snapshot_ts += ts[snap_start].tolist()
        # When each epoch ends: the ts of the next snapshot message, or never (as far as the pieces so far show).
        epoch_end = np.append(np.asarray(self.snapshot_ts[1:], dtype=np.int64), np.iinfo(np.int64).max)
        del first_rows, snap_start
        keep = np.flatnonzero(np.isfinite(price) & np.isfinite(size) & (side != 0))
        rows = tuple(
            np.concatenate((old, new))
            for old, new in zip(
                carried,
                (keep + self.rows_seen, ts[keep], epoch[keep], side[keep].astype(np.int8), price[keep], size[keep]),
                strict=True,
            )
        )
        self.rows_seen += len(ts)
        # The samples this piece settles: those up to its last time (later rows start at or after the next piece).
        end = int(np.searchsorted(self.samples, ts[-1], side="right"))
        samples = self.samples[self.sampled : end]
        # Profiled even without samples: the levels left standing are found by the same sort.
        profile, self.last_of_level = _profile(rows, epoch_end, samples, self.sampled)
        if len(samples):
            self.pieces.append(profile)
        self.sampled = end
        self.last_rows = rows

    def finish(self) -> pl.DataFrame:
        """The levels in force at each sample, ordered by the row that set the level, then by sample."""
        # The samples after the last piece's time see the levels it left.
        samples = self.samples[self.sampled :]
        carried = self._carried() if len(samples) else _no_rows()
        if len(carried[0]):
            never = np.full(len(self.snapshot_ts), np.iinfo(np.int64).max, dtype=np.int64)
            self.pieces.append(_profile(carried, never, samples, self.sampled)[0])
        self.sampled, self.last_rows, self.last_of_level = len(self.samples), _no_rows(), np.zeros(0, dtype=bool)
        if not self.pieces:
            self.pieces.append(tuple(np.empty(0, dtype=t) for t in _PROFILE_TYPES))
        row, *columns = (np.concatenate(column) for column in zip(*self.pieces, strict=True))
        # Pieces and price bands each give their rows in (row, sample) order; together, sorted back into it.
        order = np.lexsort((columns[0], row))
        named = [column[order] for column in columns]
        return pl.DataFrame(
            dict(zip(("sample", "side", "price", "size"), named, strict=True)),
            schema={"sample": pl.Int64, "side": pl.Int8, "price": pl.Float64, "size": pl.Float64},
        )

    def _carried(self) -> tuple[np.ndarray, ...]:
        """The levels the last piece left standing: of its rows, the last of each level in the current epoch, where
        it holds a size (in row order); none before the first snapshot, which deltas have no book to apply to."""
        epoch, row_epoch, size = len(self.snapshot_ts), self.last_rows[2], self.last_rows[5]
        if epoch == 0:
            return _no_rows()
        held = np.flatnonzero(self.last_of_level & (row_epoch == epoch) & (size > 0))
        return tuple(column[held] for column in self.last_rows)


#: The types of `_profile`'s columns: row, sample, side, price, size.
_PROFILE_TYPES = (np.int64, np.int64, np.int8, np.float64, np.float64)


def _no_rows() -> tuple[np.ndarray, ...]:
    return tuple(np.empty(0, dtype=t) for t in (np.int64, np.int64, np.int64, np.int8, np.float64, np.float64))


def _profile(
    rows: tuple[np.ndarray, ...], epoch_end: np.ndarray, samples: np.ndarray, first_sample: int
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """(row, sample, side, price, size) of the levels of `rows` in force at `samples` (numbered from
    `first_sample`), in bands of prices so the per-row arrays stay a few hundred MB whatever the rows; and which of
    `rows` is the last of its level (epoch, side, price)."""
    row_id, ts, epoch, side, price, size = rows
    bands = -(-len(row_id) // BAND_ROWS)
    step = max(len(price) // 100_000, 1)
    shares = np.linspace(0, 1, bands + 1)[1:-1]
    edges = np.unique(np.quantile(price[::step], shares)) if bands > 1 else np.empty(0)
    pieces = []
    last_of_level = np.zeros(len(row_id), dtype=bool)
    for lo, hi in zip([-np.inf, *edges], [*edges, np.inf], strict=True):
        band = np.flatnonzero((price >= lo) & (price < hi)) if len(edges) else np.arange(len(row_id))
        piece, last_of_level[band] = _band_profile(band, ts, epoch, epoch_end, side, price, size, samples)
        pieces.append(piece)
    row, sample, *columns = (np.concatenate(column) for column in zip(*pieces, strict=True))
    return (row_id[row], sample + first_sample, *columns), last_of_level


def _band_profile(
    rows: np.ndarray,
    ts: np.ndarray,
    epoch: np.ndarray,
    epoch_end: np.ndarray,
    side: np.ndarray,
    price: np.ndarray,
    size: np.ndarray,
    samples: np.ndarray,
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """`level_profile` of the levels whose rows are `rows` (all rows of each): (row, sample index, side, price, size)
    per level in force at a sample; and which of `rows` is the last of its level."""
    rows_ts, row_epoch = ts[rows], epoch[rows]
    row_side, row_price, row_size = side[rows].astype(np.int8), price[rows], size[rows]
    # Next row of the same level: sort by (epoch, side, price, row) and look one ahead within equal keys. Each key is
    # gathered once and freed once used.
    order = np.lexsort((np.arange(len(rows_ts)), row_price, row_side, row_epoch))
    same_next = np.ones(max(len(order) - 1, 0), dtype=bool)
    for key in (row_epoch, row_side, row_price):
        sorted_key = key[order]
        same_next &= sorted_key[1:] == sorted_key[:-1]
        del sorted_key
    next_ts = np.full(len(rows_ts), 2**62, dtype=np.int64)
    next_ts[order[:-1][same_next]] = rows_ts[order[1:][same_next]]
    del order, same_next
    last_of_level = next_ts == 2**62
    until = np.minimum(next_ts, epoch_end[np.maximum(row_epoch - 1, 0)], out=next_ts)
    s1 = np.searchsorted(samples, until, side="left")
    del until, next_ts
    s0 = np.searchsorted(samples, rows_ts, side="left")
    # Deltas before the first snapshot (epoch 0) have no book to apply to.
    counts = np.where((row_size > 0) & (row_epoch > 0), np.maximum(s1 - s0, 0), 0)
    del s1
    total = int(counts.sum())
    offsets = np.repeat(np.cumsum(counts) - counts, counts)
    sample_index = np.repeat(s0, counts) + (np.arange(total) - offsets)
    profile = (
        np.repeat(rows, counts),
        sample_index.astype(np.int64),
        np.repeat(row_side, counts),
        np.repeat(row_price, counts),
        np.repeat(row_size, counts),
    )
    return profile, last_of_level


# ---------------------------------------------------------------- the moments of one market


def _book_arrays(book: pl.DataFrame) -> dict[str, np.ndarray]:
    return {
        "ts": book["ts"].to_numpy(),
        # 'snapshot'/'delta' as in the table schema, or already 0/1 (simulator output).
        "kind": (
            (book["kind"] == "delta").cast(pl.UInt8).to_numpy()
            if book.schema["kind"] == pl.String
            else book["kind"].cast(pl.UInt8).to_numpy()
        ),
        "side": book["side"].cast(pl.Int8).to_numpy(),
        "price": book["price"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
        "size": book["size"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
        "update_id": book["update_id"].to_numpy(),
        "seq": book["seq"].to_numpy(),
    }


def by_time(book: pl.DataFrame) -> pl.DataFrame:
    """`book` sorted by time and update id, stably; not copied when it already is (a fetched table is)."""
    step = pl.col("ts").diff()
    ordered = book.select(((step > 0) | ((step == 0) & (pl.col("update_id").diff() >= 0))).all()).item()
    return book if ordered else book.sort("ts", "update_id", maintain_order=True)


@dataclass(frozen=True)
class BookView:
    """What the moments read from one symbol's book: each message's time and best bid and ask (through the Rust L2
    book: exact, handles gaps and resyncs), the levels in force on the depth grid (`level_profile`), and the most
    levels one side of a snapshot message holds."""

    touch_ts: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    levels: pl.DataFrame
    snapshot_levels: int

    def held_levels(self) -> int:
        """The most levels one side of the book holds at once: in any snapshot message or at any depth sample."""
        held = self.levels.group_by("sample", "side").len()["len"].max() if self.levels.height else 0
        return max(self.snapshot_levels, int(held or 0))


def depth_samples(start: int, end: int, config: MomentConfig) -> np.ndarray:
    """The depth grid of a book spanning `start`..`end` (ns): every `depth_sample_s`, at most `depth_max_samples`."""
    step = max(int(config.depth_sample_s * NS_PER_S), (end - start) // max(config.depth_max_samples, 1), 1)
    return np.arange(start - start % step + step, end + 1, step, dtype=np.int64)


class BookPass:
    """A `BookView` of one symbol's book given in consecutive pieces in time order (`by_time`), cut between two
    times (as `time_windows` cuts), so a week's book is read a window at a time: about a piece is held, and the view
    is per message and per sample. `span` is the book's first and last ts, `decimals` (price, size) those of the
    whole table."""

    def __init__(self, span: tuple[int, int], decimals: tuple[int, int], config: MomentConfig) -> None:
        self.span = span
        self.replay = _core.UpdateReplay(price_decimals=decimals[0], qty_decimals=decimals[1])
        self.levels = LevelStream(depth_samples(*span, config))
        self.touch: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.snapshot_levels = 0

    def push(self, piece: pl.DataFrame) -> None:
        self.push_arrays(_book_arrays(piece))

    def push_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        """`push` of a piece's columns as `_book_arrays` gives them."""
        out = self.replay.push({**arrays, "symbol": np.zeros(len(arrays["ts"]), dtype=np.uint32)})
        self.touch.append((out["ts"], out["best_bid"], out["best_ask"]))
        message = _messages(arrays)
        snapshot = arrays["kind"] == 0
        self.levels.push(arrays["ts"], message, snapshot, arrays["side"], arrays["price"], arrays["size"])
        price, size = arrays["price"], arrays["size"]
        live = snapshot & np.isfinite(price) & np.isfinite(size) & (size > 0) & (arrays["side"] != 0)
        if live.any():
            # Levels per (message, side): messages are numbered from 1 in the piece, so this key counts them.
            per_side = np.bincount(message[live] * 2 + (arrays["side"][live] > 0))
            self.snapshot_levels = max(self.snapshot_levels, int(per_side.max()))

    def finish(self) -> BookView:
        touch_ts, bid, ask = (np.concatenate(column) for column in zip(*self.touch, strict=True))
        if (int(touch_ts[0]), int(touch_ts[-1])) != self.span:
            raise AssertionError(f"the book's pieces span {touch_ts[0]}..{touch_ts[-1]}, not {self.span}")
        return BookView(touch_ts, bid, ask, self.levels.finish(), self.snapshot_levels)


def book_view(book: pl.DataFrame, config: MomentConfig | None = None) -> BookView | None:
    """The view of one symbol's whole book (canonical schema or simulator columns, any order); None when empty."""
    if book.height == 0:
        return None
    book = by_time(book)
    arrays = _book_arrays(book)
    decimals = _core.book_decimals(arrays["side"], arrays["price"], arrays["size"])
    span = (int(arrays["ts"][0]), int(arrays["ts"][-1]))
    whole = BookPass(span, decimals, config or MomentConfig())
    whole.push_arrays(arrays)
    return whole.finish()


def compute(
    trades: pl.DataFrame,
    book: pl.DataFrame | BookView | None,
    bars: pl.DataFrame | None = None,
    config: MomentConfig | None = None,
    book_depth: int | None = None,
) -> dict[str, float]:
    """All moments of one symbol's tables (canonical schemas, any order); NaN for what the data cannot show.

    `book_depth` is the number of levels per side the book stream was recorded at (Bybit's depth 1, 50, 200...): a
    depth moment over more levels than that is NaN, since the stream cannot show it. None: the book's levels are all
    there are (a thin book's depth over more levels than it holds is everything it holds). The book may come as
    its `BookView` (a long book read a window at a time, `BookPass`); None is a book without rows.
    """
    config = config or MomentConfig()
    result = dict.fromkeys(config.names(), float("nan"))
    view = book_view(book, config) if isinstance(book, pl.DataFrame) else book
    trades = trades if trades["ts"].is_sorted() else trades.sort("ts", maintain_order=True)
    if view is None:
        return result
    touch_ts, bid, ask = view.touch_ts, view.bid, view.ask
    mid = (bid + ask) / 2
    valid = np.isfinite(mid) & (ask > bid)
    spread_bps = np.where(valid, (ask - bid) / mid * BPS, np.nan)
    log_mid = np.where(valid, np.log(np.where(valid, mid, 1.0)), np.nan)
    step_ns = int(config.sample_s * NS_PER_S)
    start, end = int(touch_ts[0]), int(touch_ts[-1])
    grid = np.arange(start - start % step_ns + step_ns, end + 1, step_ns, dtype=np.int64)

    # Spread: time-weighted through the grid.
    spread_grid = last_at_or_before(touch_ts, spread_bps, grid)
    finite = spread_grid[np.isfinite(spread_grid)]
    if len(finite):
        result["spread_mean_bps"] = float(finite.mean())
        # Spreads are whole ticks: quantiles of the tick counts spread evenly over each tick's bin.
        spread_price = last_at_or_before(touch_ts, np.where(valid, ask - bid, np.nan), grid)
        mid_grid_price = last_at_or_before(touch_ts, np.where(valid, mid, np.nan), grid)
        ok = np.isfinite(spread_price) & np.isfinite(mid_grid_price)
        q10, q50, q90 = lattice_quantiles(spread_price[ok], [0.1, 0.5, 0.9]) / np.median(mid_grid_price[ok]) * BPS
        result |= {"spread_q10_bps": float(q10), "spread_q50_bps": float(q50), "spread_q90_bps": float(q90)}

    # Returns of the sampled mid: volatility and excess kurtosis per horizon, |return| and return ACF.
    mid_grid = last_at_or_before(touch_ts, log_mid, grid)
    for h in config.return_horizons_s:
        returns = horizon_returns(mid_grid, max(1, round(h / config.sample_s)))
        returns = returns[np.isfinite(returns)]
        if len(returns) >= 2:
            result[f"vol_{_label(h)}_bps"] = float(returns.std())
        result[f"kurt_{_label(h)}"] = excess_kurtosis(returns)
    acf_returns = horizon_returns(mid_grid, max(1, round(config.acf_horizon_s / config.sample_s)))
    for lag in config.acf_lags:
        result[f"absret_acf_{lag}"] = autocorrelation(np.abs(acf_returns), lag)
    for lag in config.ret_acf_lags:
        result[f"ret_acf_{lag}"] = autocorrelation(acf_returns, lag)

    # Trades: sign persistence, arrival rate, size distribution, impact.
    if trades.height:
        side = trades["side"].cast(pl.Float64).to_numpy()
        for lag in config.sign_lags:
            result[f"sign_acf_{lag}"] = autocorrelation(side, lag)
        trade_ts = trades["ts"].to_numpy()
        minutes = max((end - start) / (60 * NS_PER_S), 1e-9)
        result["trades_per_min_log"] = float(np.log(trades.height / minutes))
        size = trades["size"].cast(pl.Float64).to_numpy()
        positive = size[np.isfinite(size) & (size > 0)]
        if len(positive):
            log_size = np.log(positive)
            result |= {"size_log_mean": float(log_size.mean()), "size_log_std": float(log_size.std())}
            del log_size
            q50, q90 = np.log(lattice_quantiles(positive, [0.5, 0.9]))
            result |= {"size_log_q50": float(q50), "size_log_q90": float(q90)}
            del positive
            result |= _impact(trade_ts, side, size, touch_ts, log_mid, config)

    result |= _depth(view.levels, config, book_depth)
    if bars is not None and bars.height:
        rng = ((bars["high"] - bars["low"]) / bars["open"] * BPS).cast(pl.Float64).to_numpy()
        rng = rng[np.isfinite(rng)]
        if len(rng):
            result["bar_range_bps"] = float(rng.mean())
    return result


def impact_moves(
    trade_ts: np.ndarray,
    side: np.ndarray,
    size: np.ndarray,
    touch_ts: np.ndarray,
    log_mid: np.ndarray,
    horizon_s: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The signed mid move (bps) from just before a trade to `horizon_s` after, and the trade's size, for every trade
    with a mid at both ends; gathered a block at a time (see _BLOCK)."""
    horizon = int(horizon_s * NS_PER_S)
    move, sizes, kept = np.empty(len(trade_ts)), np.empty(len(trade_ts)), 0
    for first in range(0, len(trade_ts), _BLOCK):
        ts = trade_ts[first : first + _BLOCK]
        before = last_at_or_before(touch_ts, log_mid, ts - 1)
        after_ts = ts + horizon
        after = last_at_or_before(touch_ts, log_mid, after_ts)
        block_size = size[first : first + _BLOCK]
        ok = np.isfinite(before) & np.isfinite(after) & (after_ts <= touch_ts[-1]) & np.isfinite(block_size)
        count = int(ok.sum())
        move[kept : kept + count] = side[first : first + _BLOCK][ok] * (after[ok] - before[ok]) * BPS
        sizes[kept : kept + count] = block_size[ok]
        kept += count
    return move[:kept], sizes[:kept]


def _impact(
    trade_ts: np.ndarray,
    side: np.ndarray,
    size: np.ndarray,
    touch_ts: np.ndarray,
    log_mid: np.ndarray,
    config: MomentConfig,
) -> dict[str, float]:
    """Mean signed mid move (bps) from just before a trade to `impact_horizon_s` after, by size tercile."""
    out = dict.fromkeys(("impact_small_bps", "impact_mid_bps", "impact_large_bps"), float("nan"))
    move, sizes = impact_moves(trade_ts, side, size, touch_ts, log_mid, config.impact_horizon_s)
    if len(move) < 3:
        return out
    low, high = np.quantile(sizes, [1 / 3, 2 / 3])
    buckets = {
        "impact_small_bps": sizes <= low,
        "impact_mid_bps": (sizes > low) & (sizes <= high),
        "impact_large_bps": sizes > high,
    }
    for name, members in buckets.items():
        if members.any():
            out[name] = float(move[members].mean())
    return out


def _messages(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """Numbers the book's messages in order (a message = the rows of one (ts, update_id))."""
    ts, update_id = arrays["ts"], arrays["update_id"]
    return np.cumsum(np.r_[True, (update_id[1:] != update_id[:-1]) | (ts[1:] != ts[:-1])])


def held_levels(book: pl.DataFrame, config: MomentConfig | None = None) -> int:
    """The most levels one side of the book holds at once: in any snapshot message or at any time of the depth grid.

    The depth a book stream was recorded at, when the table does not say (see `recorded_depth`); 0 for no book.
    """
    view = book_view(book, config)
    return view.held_levels() if view is not None else 0


def stated_depth(metadata: Mapping | None) -> int | None:
    """The `depth` a book table's provenance params state (`apexctl fetch` writes it for simulated and
    WebSocket-recorded books), if any."""
    params = (metadata or {}).get("apex.params")
    stated = params.get("depth") if isinstance(params, Mapping) else None
    if isinstance(stated, int) and not isinstance(stated, bool) and stated > 0:
        return stated
    return None


def recorded_depth(
    book: pl.DataFrame | BookView | None, metadata: Mapping | None = None, config: MomentConfig | None = None
) -> int:
    """Levels per side a book table was recorded at: the depth its metadata states (`stated_depth`), else the most
    levels a side ever holds (`held_levels`).

    The stated depth wins: a thin book that never fills its depth still shows its whole depth. The inferred one can
    only err towards too few levels, which leaves a depth moment out rather than compare it with a deeper book.
    """
    stated = stated_depth(metadata)
    if stated is not None:
        return stated
    if isinstance(book, pl.DataFrame):
        return held_levels(book, config)
    return book.held_levels() if book is not None else 0


def _depth(levels: pl.DataFrame, config: MomentConfig, book_depth: int | None = None) -> dict[str, float]:
    """log of the mean cumulative size over the best k levels of a side, both sides pooled; NaN for k above
    `book_depth` (the stream does not show that many levels, so the sum would be over fewer than k)."""
    out = {f"depth_l{k}_log": float("nan") for k in config.depth_levels}
    if levels.height == 0:
        return out
    deepest = max(config.depth_levels)
    ranked = levels.with_columns(
        level=pl.when(pl.col("side") > 0)
        .then(-pl.col("price"))
        .otherwise(pl.col("price"))
        .rank("ordinal")
        .over(["sample", "side"])
    ).filter(pl.col("level") <= deepest)
    books = ranked.select(pl.col("sample"), pl.col("side")).unique().height
    for k in config.depth_levels:
        if book_depth is not None and k > book_depth:
            continue
        total = ranked.filter(pl.col("level") <= k)["size"].sum()
        mean = total / books if books else float("nan")
        out[f"depth_l{k}_log"] = float(np.log(mean)) if mean > 0 else float("nan")
    return out


def pick_symbol(
    trades: pl.DataFrame,
    book: pl.DataFrame,
    symbol: str | None,
    where: str = "the target data",
    files: tuple[str, str] = ("trades", "book"),
) -> str:
    """`symbol` if both tables have it, or (None) the first symbol in name order that both have; InputError else,
    naming `where` the tables come from (chimera: its --target folder) and, when they share no symbol, what each of
    `files` (the two tables' names) holds."""
    held = [sorted(set(frame["symbol"].unique().to_list())) for frame in (trades, book)]
    symbols = sorted(set(held[0]) & set(held[1]))
    if not symbols:
        holds = "; ".join(
            f"{safe(name)}: {_listed(found) if found else 'no rows'}" for name, found in zip(files, held, strict=True)
        )
        raise InputError(
            f"{where}: no symbol has both trades and book rows ({holds}); give data with both for one symbol"
        )
    chosen = symbol or symbols[0]
    if chosen not in symbols:
        raise InputError(f"--symbol {safe(chosen)}: not in {where} (it has {_listed(symbols)})")
    return chosen


def _listed(symbols: Sequence[str], most: int = 8) -> str:
    shown = ", ".join(safe(s) for s in symbols[:most])
    return shown + (f" and {len(symbols) - most} more" if len(symbols) > most else "")


def for_symbol(
    trades: pl.DataFrame,
    book: pl.DataFrame,
    bars: pl.DataFrame | None,
    symbol: str | None,
    config: MomentConfig | None = None,
    book_depth: int | None = None,
) -> tuple[str, dict[str, float]]:
    """The moments of one symbol of canonical tables (None = the only symbol, or the first in name order); see
    `compute` for `book_depth`."""
    chosen = pick_symbol(trades, book, symbol)

    def pick(frame: pl.DataFrame | None) -> pl.DataFrame | None:
        return None if frame is None else frame.filter(pl.col("symbol") == chosen)

    return chosen, compute(pick(trades), pick(book), pick(bars), config, book_depth)


def from_sim_output(
    out: Mapping, config: MomentConfig | None = None, book_depth: int | None = None
) -> dict[str, float]:
    """Moments of one `_core.sim_run` result (its NumPy columns, time in UTC ns), without building tables; see
    `compute` for `book_depth` (the simulation's own book depth, or less to match a shallower target)."""
    t, b, k = out["trades"], out["book"], out["bars"]
    trades = pl.DataFrame(
        {"ts": t["ts"], "side": t["side"], "price": t["price"], "size": t["size"]},
    )
    book = pl.DataFrame(
        {
            "ts": b["ts"],
            "kind": b["kind"],
            "side": b["side"],
            "price": b["price"],
            "size": b["size"],
            "update_id": b["update_id"],
            "seq": b["seq"],
        }
    )
    bars = pl.DataFrame({"open": k["open"], "high": k["high"], "low": k["low"]})
    return compute(trades, book, bars, config, book_depth)
