"""Writes a small, seeded market-data sample in Bybit's archive formats (order-book JSON lines in a zip, trade CSV.gz).

The files are byte-for-byte in the shapes `apexctl fetch --source file` reads from public.bybit.com and
quote-saver.bycsi.com, so the pipeline runs end to end with no network. The market is a simple stochastic model
(volatility-clustered mid, lognormal level sizes, Poisson trades that consume the touch): it exercises the archive
readers; realistic simulated markets come from the agent-based simulator (`apexctl fetch --source sim`).

    python scripts/make_sample.py -o runs/sample [--hours 2] [--cadence-ms 500] [--seed 7] [--symbols BTCUSDT,ETHUSDT]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import io
import json
import math
import os
import sys
import tempfile
import uuid
import zipfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

DEPTH = 200  # archive depth (ob200); the window every snapshot and delta covers
START = dt.datetime(2025, 9, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Instrument:
    symbol: str
    price: float  # starting mid
    tick: Decimal
    lot: Decimal
    typical_size: float  # median level size in base units


INSTRUMENTS = {
    "BTCUSDT": Instrument("BTCUSDT", 108_000.0, Decimal("0.10"), Decimal("0.001"), 0.4),
    "ETHUSDT": Instrument("ETHUSDT", 4_300.0, Decimal("0.01"), Decimal("0.01"), 6.0),
    "SOLUSDT": Instrument("SOLUSDT", 200.0, Decimal("0.010"), Decimal("0.1"), 150.0),
}


class SideBook:
    """One side of the venue's full book in integer ticks/lots."""

    def __init__(self, descending: bool) -> None:
        self.levels: dict[int, int] = {}
        self.descending = descending

    def window(self) -> dict[int, int]:
        prices = sorted(self.levels, reverse=self.descending)[:DEPTH]
        return {p: self.levels[p] for p in prices}

    def best(self) -> int | None:
        if not self.levels:
            return None
        return max(self.levels) if self.descending else min(self.levels)


def fmt(units: int, step: Decimal) -> str:
    return str(units * step)


def simulate(inst: Instrument, seconds: int, cadence_ms: int, rng: np.random.Generator, out_dir: Path, day: str):
    """Runs the model for one instrument; writes the ob zip and the trades CSV.gz; returns (book lines, trades)."""
    tick, lot = inst.tick, inst.lot
    mid = round(inst.price / float(tick))
    bids, asks = SideBook(descending=True), SideBook(descending=False)

    def size_units() -> int:
        base = inst.typical_size * float(rng.lognormal(0.0, 1.0))
        return max(1, round(base / float(lot)))

    def refill(center: int) -> None:
        # Keep about DEPTH+20 levels per side so the ob200 window stays full; prune far levels.
        half_spread = 1 + int(rng.integers(0, 2))
        best_bid, best_ask = center - half_spread, center + half_spread
        for p in [p for p in bids.levels if p >= best_ask]:
            del bids.levels[p]
        for p in [p for p in asks.levels if p <= best_bid]:
            del asks.levels[p]
        for k in range(DEPTH + 20):
            if best_bid - k not in bids.levels and (k < 3 or rng.random() < 0.85):
                bids.levels[best_bid - k] = size_units()
            if best_ask + k not in asks.levels and (k < 3 or rng.random() < 0.85):
                asks.levels[best_ask + k] = size_units()
        for side, far in ((bids, best_bid - DEPTH - 40), (asks, best_ask + DEPTH + 40)):
            for p in [p for p in side.levels if (p < far if side.descending else p > far)]:
                del side.levels[p]

    refill(mid)
    lines: list[str] = []
    trades: list[tuple[int, str, str, str]] = []
    update_id = int(rng.integers(10_000_000, 90_000_000))
    seq = int(rng.integers(100_000_000_000, 400_000_000_000))
    t0_ms = int(START.timestamp() * 1000)
    vol = 0.6  # ticks per step, GARCH-like
    last_bids, last_asks = bids.window(), asks.window()

    def message(kind: str, ts_ms: int, b: dict[int, int], a: dict[int, int]) -> str:
        data = {
            "s": inst.symbol,
            "b": [[fmt(p, tick), fmt(q, lot)] for p, q in sorted(b.items(), reverse=True)],
            "a": [[fmt(p, tick), fmt(q, lot)] for p, q in sorted(a.items())],
            "u": update_id,
            "seq": seq,
        }
        return json.dumps(
            {"topic": f"orderbook.{DEPTH}.{inst.symbol}", "type": kind, "ts": ts_ms, "data": data, "cts": ts_ms - 2},
            separators=(",", ":"),
        )

    lines.append(message("snapshot", t0_ms, last_bids, last_asks))
    steps = seconds * 1000 // cadence_ms
    for step in range(1, steps + 1):
        ts_ms = t0_ms + step * cadence_ms
        shock = float(rng.standard_normal())
        vol = math.sqrt(0.02 + 0.90 * vol**2 + 0.08 * (vol * shock) ** 2)
        mid += round(vol * shock)
        # Trades in the last interval hit the touch; buys more likely after an up-move (momentum in the flow).
        n_trades = int(rng.poisson(1.5))
        for _ in range(n_trades):
            buy = rng.random() < (0.5 + 0.15 * np.sign(shock))
            book = asks if buy else bids
            best = book.best()
            if best is None:
                continue
            qty = min(book.levels[best], max(1, round(size_units() * 0.3)))
            book.levels[best] -= qty
            if book.levels[best] == 0:
                del book.levels[best]
            trade_ms = ts_ms - int(rng.integers(1, cadence_ms))
            trades.append(
                (trade_ms * 10 + int(rng.integers(0, 10)), "Buy" if buy else "Sell", fmt(qty, lot), fmt(best, tick))
            )
        # Random size changes inside the window, then re-center around the new mid.
        for side in (bids, asks):
            for p in rng.choice(list(side.levels), size=min(6, len(side.levels)), replace=False):
                side.levels[int(p)] = size_units() if rng.random() < 0.8 else side.levels[int(p)]
        refill(mid)
        new_bids, new_asks = bids.window(), asks.window()
        delta_b = {p: q for p, q in new_bids.items() if last_bids.get(p) != q}
        delta_b.update({p: 0 for p in last_bids if p not in new_bids})
        delta_a = {p: q for p, q in new_asks.items() if last_asks.get(p) != q}
        delta_a.update({p: 0 for p in last_asks if p not in new_asks})
        update_id += 1
        seq += int(rng.integers(1, 50))
        lines.append(message("delta", ts_ms, delta_b, delta_a))
        last_bids, last_asks = new_bids, new_asks
    # Archives close with the next day's boundary snapshot, which repeats the last delta's update id.
    lines.append(message("snapshot", t0_ms + (steps + 1) * cadence_ms, last_bids, last_asks))

    ob_name = f"{day}_{inst.symbol}_ob{DEPTH}.data"
    write_atomic(out_dir / f"{ob_name}.zip", zip_bytes(ob_name, "\n".join(lines) + "\n"))
    write_atomic(out_dir / f"{inst.symbol}{day}.csv.gz", trades_csv_gz(inst, trades, lot, rng))
    return len(lines), len(trades)


def zip_bytes(member: str, text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, text)
    return buffer.getvalue()


def trades_csv_gz(inst: Instrument, trades: list[tuple[int, str, str, str]], lot: Decimal, rng) -> bytes:
    """Derivatives archive format: decimal-second timestamps with 4 fraction digits, newest first like the old files."""
    rows = ["timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional"]
    trades = sorted(trades, key=lambda t: t[0], reverse=True)
    for tenths_ms, side, size, price in trades:
        stamp = Decimal(tenths_ms) / Decimal(10_000)
        notional = Decimal(size) * Decimal(price)
        trade_id = uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | int(rng.integers(0, 2**63)), version=4)
        rows.append(
            f"{stamp:.4f},{inst.symbol},{side},{size},{price},ZeroPlusTick,{trade_id},"
            f"{float(notional) * 1e8},{size},{notional}"
        )
    return gzip.compress(("\n".join(rows) + "\n").encode(), mtime=0)


def write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, 0o644)  # market data, not a secret: readable like any download
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--symbols", default="BTCUSDT,ETHUSDT,SOLUSDT", help="comma list from " + ",".join(INSTRUMENTS))
    parser.add_argument("--hours", type=float, default=2.0, help="length of the sample (default 2)")
    parser.add_argument("--cadence-ms", type=int, default=500, help="order-book update interval (default 500)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    args = parser.parse_args(argv)
    unknown = [s for s in args.symbols.split(",") if s not in INSTRUMENTS]
    if unknown:
        print(f"make_sample: unknown symbol(s) {','.join(unknown)}; known: {','.join(INSTRUMENTS)}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    day = START.strftime("%Y-%m-%d")
    for index, symbol in enumerate(args.symbols.split(",")):
        rng = np.random.default_rng([args.seed, index])
        n_lines, n_trades = simulate(INSTRUMENTS[symbol], int(args.hours * 3600), args.cadence_ms, rng, args.out, day)
        print(f"make_sample: {symbol}: {n_lines:,} order-book messages, {n_trades:,} trades -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
