"""A small synthetic market (trades, L2 book, 1m klines) with the awkward cases features must handle, seeded.

Two symbols over 90 minutes: trades with a silent stretch (empty bars), a book stream with snapshots, deltas, a
sequence gap (deltas refused until the next snapshot), a crossed book and a quiet stretch. Only `random.Random`'s
`random()` and `randrange()` are used, whose streams Python keeps stable, so the tables are the same everywhere.
"""

from __future__ import annotations

import random

import polars as pl

from apexctl.schemas import BARS, BOOK, TRADES

MINUTE = 60 * 10**9
START = 1_756_684_800 * 10**9
SPAN_MINUTES = 90

#: symbol -> (tick, lot, start price in ticks, lot decimals)
SYMBOLS = {"BTCUSDT": (0.1, 0.001, 500_000, 3), "SOLUSDT": (0.01, 0.1, 10_000, 1)}


def _trades(symbol: str, rng: random.Random, offset: int) -> tuple[list[dict], list[int]]:
    tick, lot, price, lot_decimals = SYMBOLS[symbol]
    rows: list[dict] = []
    path: list[int] = []
    ts = START + offset
    end = START + SPAN_MINUTES * MINUTE
    silent = (START + 31 * MINUTE, START + 38 * MINUTE)
    n = 0
    while True:
        ts += int(rng.random() * 4e9) + 1
        if ts >= end:
            break
        price = max(1000, price + rng.randrange(-3, 4))
        path.append(price)
        if silent[0] <= ts < silent[1]:
            continue
        n += 1
        rows.append(
            {
                "ts": ts,
                "symbol": symbol,
                "side": 1 if rng.random() < 0.5 else -1,
                "price": round(price * tick, 2),
                "size": round(rng.randrange(1, 40) * lot, lot_decimals),
                "trade_id": f"{symbol[:3]}{n}",
            }
        )
    return rows, path


def _book(symbol: str, rng: random.Random, path: list[int], offset: int) -> list[dict]:
    tick, lot, _, lot_decimals = SYMBOLS[symbol]
    rows: list[dict] = []
    update_id = 0
    seq = 1000
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    ts = START + offset
    end = START + SPAN_MINUTES * MINUTE
    quiet = (START + 55 * MINUTE, START + 58 * MINUTE)
    step = 0
    crossed: int | None = None

    def emit(kind: str, levels: list[tuple[int, int, int]], uid: int) -> None:
        for side, price, qty in levels or [(0, 0, 0)]:
            rows.append(
                {
                    "ts": ts,
                    "symbol": symbol,
                    "kind": kind,
                    "side": side,
                    "price": round(price * tick, 2) if side else None,
                    "size": round(qty * lot, lot_decimals) if side else None,
                    "update_id": uid,
                    "seq": seq,
                }
            )

    while True:
        ts += int(rng.random() * 1.5e9) + 10_000_000
        if ts >= end:
            break
        if quiet[0] <= ts < quiet[1]:
            continue
        step += 1
        seq += rng.randrange(1, 5)
        mid = path[min(step, len(path) - 1)]
        roll = rng.random()
        if update_id == 0 or roll < 0.01:
            bids = {mid - 1 - i: rng.randrange(1, 50) for i in range(8)}
            asks = {mid + 1 + i: rng.randrange(1, 50) for i in range(8)}
            update_id += 1
            levels = [(1, p, q) for p, q in sorted(bids.items(), reverse=True)]
            levels += [(-1, p, q) for p, q in sorted(asks.items())]
            emit("snapshot", levels, update_id)
            continue
        # A skipped id is a gap: the book refuses deltas until the next snapshot.
        update_id += 2 if roll < 0.006 else 1
        changes: list[tuple[int, int, int]] = []
        if crossed is not None:
            bids.pop(crossed, None)
            changes.append((1, crossed, 0))
            crossed = None
        elif roll < 0.015 and asks:
            # A bid through the best ask for one message: a crossed book.
            crossed = min(asks) + 1
            bids[crossed] = 5
            changes.append((1, crossed, 5))
        for _ in range(rng.randrange(0, 4)):
            side = 1 if rng.random() < 0.5 else -1
            book, other = (bids, asks) if side == 1 else (asks, bids)
            price = mid - 1 - rng.randrange(0, 10) if side == 1 else mid + 1 + rng.randrange(0, 10)
            qty = 0 if (price in book and rng.random() < 0.3) else rng.randrange(1, 60)
            if qty == 0:
                book.pop(price, None)
            else:
                book[price] = qty
                # The market moved: levels of the other side at or through this price are gone.
                for gone in [p for p in other if (p <= price if side == 1 else p >= price)]:
                    other.pop(gone)
                    changes.append((-side, gone, 0))
            changes.append((side, price, qty))
        emit("delta", changes, update_id)
    return rows


def synthetic_market(seed: int = 11) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(trades, book, 1m klines) tables of the two symbols, each sorted by time."""
    rng = random.Random(seed)
    trades: list[dict] = []
    book: list[dict] = []
    for i, symbol in enumerate(SYMBOLS):
        rows, path = _trades(symbol, rng, offset=i * 7_000_000 + 500_000_000)
        trades += rows
        book += _book(symbol, rng, path, offset=i * 3_000_000)
    trades_frame = pl.DataFrame(trades, schema=TRADES.polars_schema()).sort("ts", maintain_order=True)
    book_frame = pl.DataFrame(book, schema=BOOK.polars_schema()).sort("ts", maintain_order=True)
    klines = minute_bars(trades_frame).with_columns(interval=pl.lit("1")).select(BARS.column_names).sort("symbol", "ts")
    return trades_frame, book_frame, pl.DataFrame(klines, schema=BARS.polars_schema())


def minute_bars(trades: pl.DataFrame) -> pl.DataFrame:
    """1-minute OHLCV, turnover and trade count of a trades table, per symbol, for the minutes that have trades."""
    return (
        trades.with_columns(ts=pl.col("ts") - pl.col("ts") % MINUTE)
        .group_by("symbol", "ts", maintain_order=True)
        .agg(
            pl.col("price").first().alias("open"),
            pl.col("price").max().alias("high"),
            pl.col("price").min().alias("low"),
            pl.col("price").last().alias("close"),
            pl.col("size").sum().alias("volume"),
            (pl.col("price") * pl.col("size")).sum().alias("turnover"),
            pl.len().alias("n"),
        )
    )
