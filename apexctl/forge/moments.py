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
    values = values[np.isfinite(values) & (values > 0)]
    if len(values) == 0:
        return np.full(len(qs), np.nan)
    step = values.min()
    k = np.sort(np.round(values / step))
    starts = np.searchsorted(k, k, side="left")
    ends = np.searchsorted(k, k, side="right")
    spread_out = k + (np.arange(len(k)) - starts + 0.5) / (ends - starts) - 0.5
    return np.quantile(spread_out, qs) * step


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
    keep = np.isfinite(price) & np.isfinite(size) & (side != 0)
    kept = int(keep.sum())
    columns: list[np.ndarray] = [np.empty(0, dtype=t) for t in (np.int64, np.int8, np.float64, np.float64)]
    if kept and len(samples):
        first_rows = np.r_[True, message[1:] != message[:-1]]
        snap_start = first_rows & snapshot
        epoch = np.cumsum(snap_start)
        # When each epoch ends: the ts of the next snapshot message, or never.
        epoch_end = np.append(ts[snap_start][1:], np.iinfo(np.int64).max)
        del first_rows, snap_start
        bands = -(-kept // BAND_ROWS)
        step = max(len(price) // 100_000, 1)
        shares = np.linspace(0, 1, bands + 1)[1:-1]
        sampled = price[::step][keep[::step]]
        edges = np.unique(np.quantile(sampled, shares)) if bands > 1 and len(sampled) else np.empty(0)
        pieces = []
        for lo, hi in zip([-np.inf, *edges], [*edges, np.inf], strict=True):
            rows = np.flatnonzero(keep & (price >= lo) & (price < hi) if len(edges) else keep)
            pieces.append(_band_profile(rows, ts, epoch, epoch_end, side, price, size, samples))
        row, *columns = (np.concatenate(column) for column in zip(*pieces, strict=True))
        if len(pieces) > 1:  # back in the order one band gives: by row, then sample
            order = np.lexsort((columns[0], row))
            columns = [column[order] for column in columns]
    return pl.DataFrame(
        dict(zip(("sample", "side", "price", "size"), columns, strict=True)),
        schema={"sample": pl.Int64, "side": pl.Int8, "price": pl.Float64, "size": pl.Float64},
    )


def _band_profile(
    rows: np.ndarray,
    ts: np.ndarray,
    epoch: np.ndarray,
    epoch_end: np.ndarray,
    side: np.ndarray,
    price: np.ndarray,
    size: np.ndarray,
    samples: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """`level_profile` of the levels whose rows are `rows` (all rows of each): (row, sample index, side, price, size)
    per level in force at a sample."""
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
    return (
        np.repeat(rows, counts),
        sample_index.astype(np.int64),
        np.repeat(row_side, counts),
        np.repeat(row_price, counts),
        np.repeat(row_size, counts),
    )


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


def _by_time(book: pl.DataFrame) -> pl.DataFrame:
    """`book` sorted by time and update id, stably; not copied when it already is (a fetched table is)."""
    step = pl.col("ts").diff()
    ordered = book.select(((step > 0) | ((step == 0) & (pl.col("update_id").diff() >= 0))).all()).item()
    return book if ordered else book.sort("ts", "update_id", maintain_order=True)


def _touch(arrays: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per message: ts, best bid, best ask, through the Rust L2 book (exact, handles gaps and resyncs)."""
    out = _core.features_update({**arrays, "symbol": np.zeros(len(arrays["ts"]), dtype=np.uint32)})
    return out["ts"], out["best_bid"], out["best_ask"]


def compute(
    trades: pl.DataFrame,
    book: pl.DataFrame,
    bars: pl.DataFrame | None = None,
    config: MomentConfig | None = None,
    book_depth: int | None = None,
) -> dict[str, float]:
    """All moments of one symbol's tables (canonical schemas, any order); NaN for what the data cannot show.

    `book_depth` is the number of levels per side the book stream was recorded at (Bybit's depth 1, 50, 200...): a
    depth moment over more levels than that is NaN, since the stream cannot show it. None: the book's levels are all
    there are (a thin book's depth over more levels than it holds is everything it holds).
    """
    config = config or MomentConfig()
    result = dict.fromkeys(config.names(), float("nan"))
    book = _by_time(book)
    trades = trades if trades["ts"].is_sorted() else trades.sort("ts", maintain_order=True)
    if book.height == 0:
        return result
    arrays = _book_arrays(book)
    touch_ts, bid, ask = _touch(arrays)
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
        log_size = np.log(positive)
        if len(log_size):
            q50, q90 = np.log(lattice_quantiles(positive, [0.5, 0.9]))
            result |= {
                "size_log_mean": float(log_size.mean()),
                "size_log_q50": float(q50),
                "size_log_q90": float(q90),
                "size_log_std": float(log_size.std()),
            }
            result |= _impact(trade_ts, side, size, touch_ts, log_mid, config)

    result |= _depth(arrays, config, start, end, book_depth)
    if bars is not None and bars.height:
        rng = ((bars["high"] - bars["low"]) / bars["open"] * BPS).cast(pl.Float64).to_numpy()
        rng = rng[np.isfinite(rng)]
        if len(rng):
            result["bar_range_bps"] = float(rng.mean())
    return result


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
    before = last_at_or_before(touch_ts, log_mid, trade_ts - 1)
    after_ts = trade_ts + int(config.impact_horizon_s * NS_PER_S)
    after = last_at_or_before(touch_ts, log_mid, after_ts)
    ok = np.isfinite(before) & np.isfinite(after) & (after_ts <= touch_ts[-1]) & np.isfinite(size)
    if ok.sum() < 3:
        return out
    move = side[ok] * (after[ok] - before[ok]) * BPS
    sizes = size[ok]
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


def _level_states(arrays: Mapping[str, np.ndarray], config: MomentConfig, start: int, end: int) -> pl.DataFrame:
    """The resting levels on the depth grid (see `level_profile`)."""
    step = max(int(config.depth_sample_s * NS_PER_S), (end - start) // max(config.depth_max_samples, 1), 1)
    samples = np.arange(start - start % step + step, end + 1, step, dtype=np.int64)
    return level_profile(
        arrays["ts"], _messages(arrays), arrays["kind"] == 0, arrays["side"], arrays["price"], arrays["size"], samples
    )


def held_levels(book: pl.DataFrame, config: MomentConfig | None = None) -> int:
    """The most levels one side of the book holds at once: in any snapshot message or at any time of the depth grid.

    The depth a book stream was recorded at, when the table does not say (see `recorded_depth`); 0 for no book.
    """
    config = config or MomentConfig()
    if book.height == 0:
        return 0
    arrays = _book_arrays(_by_time(book))
    live = np.isfinite(arrays["price"]) & np.isfinite(arrays["size"]) & (arrays["size"] > 0) & (arrays["side"] != 0)
    snapshot = live & (arrays["kind"] == 0)
    counts = pl.DataFrame({"message": _messages(arrays)[snapshot], "side": arrays["side"][snapshot]})
    most = int(counts.group_by("message", "side").len()["len"].max() or 0) if counts.height else 0
    states = _level_states(arrays, config, int(arrays["ts"][0]), int(arrays["ts"][-1]))
    if states.height:
        most = max(most, int(states.group_by("sample", "side").len()["len"].max()))
    return most


def recorded_depth(book: pl.DataFrame, metadata: Mapping | None = None, config: MomentConfig | None = None) -> int:
    """Levels per side a book table was recorded at: the `depth` its provenance params state (`apexctl fetch`
    writes it for simulated and WebSocket-recorded books), else the most levels a side ever holds (`held_levels`).

    The stated depth wins: a thin book that never fills its depth still shows its whole depth. The inferred one can
    only err towards too few levels, which leaves a depth moment out rather than compare it with a deeper book.
    """
    params = (metadata or {}).get("apex.params")
    stated = params.get("depth") if isinstance(params, Mapping) else None
    if isinstance(stated, int) and not isinstance(stated, bool) and stated > 0:
        return stated
    return held_levels(book, config)


def _depth(
    arrays: Mapping[str, np.ndarray], config: MomentConfig, start: int, end: int, book_depth: int | None = None
) -> dict[str, float]:
    """log of the mean cumulative size over the best k levels of a side, both sides pooled; NaN for k above
    `book_depth` (the stream does not show that many levels, so the sum would be over fewer than k)."""
    out = {f"depth_l{k}_log": float("nan") for k in config.depth_levels}
    levels = _level_states(arrays, config, start, end)
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
