"""Benchmark: ob archive lines into `book` columns, apex-bybit (via apexctl._core) vs json.loads + Python loops; then
`apexctl fetch --source file` on two ob200 archives and on daily trade CSVs, merged a time window at a time (as it
runs) against the whole table at once, each in a process of its own so its peak memory is its own."""

from __future__ import annotations

import gzip
import json
import tempfile
import zipfile

import numpy as np
import polars as pl
from common import arguments, best_of, child_usage, report, report_peaks

from apexctl import _core


def make_lines(messages: int, seed: int) -> bytes:
    """An ob200 archive excerpt: one 200x200 snapshot, then deltas of 1-12 levels near the touch (as in real files)."""
    rng = np.random.default_rng(seed)
    lines = []
    ts, u, seq = 1_733_011_200_693, 20_254_870, 130_020_239_261

    def side(prices: np.ndarray) -> list[list[str]]:
        sizes = rng.integers(0, 20_000, size=len(prices))
        return [[f"{p:.4f}", str(q)] for p, q in zip(prices, sizes, strict=True)]

    book = {"s": "XRPUSDT", "b": side(1.9531 - np.arange(200) * 1e-4), "a": side(1.9535 + np.arange(200) * 1e-4)}
    lines.append({"topic": "orderbook.200.XRPUSDT", "type": "snapshot", "ts": ts, "data": {**book, "u": u, "seq": seq}})
    for _ in range(messages - 1):
        ts += 100
        u += 1
        seq += int(rng.integers(1, 50))
        nb, na = rng.integers(0, 7, size=2)
        data = {
            "s": "XRPUSDT",
            "b": side(1.9531 - rng.integers(0, 200, size=nb) * 1e-4),
            "a": side(1.9535 + rng.integers(0, 200, size=na) * 1e-4),
            "u": u,
            "seq": seq,
        }
        lines.append({"topic": "orderbook.200.XRPUSDT", "type": "delta", "ts": ts, "data": data, "cts": ts - 2})
    return ("\n".join(json.dumps(m, separators=(",", ":")) for m in lines) + "\n").encode()


def python_columns(data: bytes) -> dict[str, np.ndarray]:
    """The same columns with the standard library: json.loads per line, loops, then NumPy arrays."""
    ts: list[int] = []
    kind: list[int] = []
    side: list[int] = []
    price: list[float] = []
    size: list[float] = []
    update_id: list[int] = []
    seq: list[int] = []
    for line in data.splitlines():
        if not line:
            continue
        msg = json.loads(line)
        if not msg.get("topic", "").startswith("orderbook."):
            continue
        d = msg["data"]
        k = 0 if msg["type"] == "snapshot" else 1
        levels = [(1, p, q) for p, q in d["b"]] + [(-1, p, q) for p, q in d["a"]]
        for s, p, q in levels or [(0, "nan", "nan")]:
            ts.append(msg["ts"] * 1_000_000)
            kind.append(k)
            side.append(s)
            price.append(float(p))
            size.append(float(q))
            update_id.append(d["u"])
            seq.append(d["seq"])
    return {
        "ts": np.array(ts, dtype=np.int64),
        "kind": np.array(kind, dtype=np.uint8),
        "side": np.array(side, dtype=np.int8),
        "price": np.array(price),
        "size": np.array(size),
        "update_id": np.array(update_id, dtype=np.int64),
        "seq": np.array(seq, dtype=np.int64),
    }


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--messages", type=int, default=200_000, help="lines (messages) to parse (default 200000)")
    parser.add_argument(
        "--archive-messages",
        type=int,
        default=600_000,
        help="ob200 lines of the windowed-merge comparison, split over two archives (default 600000)",
    )
    parser.add_argument(
        "--trade-days", type=int, default=3, help="daily trade CSVs of the trades comparison (default 3)"
    )
    parser.add_argument("--day-trades", type=int, default=1_000_000, help="trades a day (default 1000000)")
    args = parser.parse_args()
    data = make_lines(args.messages, args.seed)
    ours_cols = _core.bybit_parse_lines(data)["book"]
    peer_cols = python_columns(data)
    for name, column in peer_cols.items():
        np.testing.assert_array_equal(ours_cols[name], column, err_msg=name)
    ours = best_of(lambda: _core.bybit_parse_lines(data))
    peer = best_of(lambda: python_columns(data), repeats=1)
    rows = len(peer_cols["ts"])
    title = f"fetch: {args.messages:,} ob200 archive lines ({len(data) / 1e6:.0f} MB, {rows:,} rows) into book columns"
    report(title, "lines", args.messages, ours, peer, "json.loads")
    archive_windows(args.archive_messages, args.seed)
    trade_windows(args.trade_days, args.day_trades, args.seed)


#: A child process fetching the inputs into the table `out`: merged in windows (as `fetch` runs), or in one window
#: holding the whole table.
FETCH = """
import sys
from apexctl.forge import time_windows
from apexctl.forge.fetch import FileFetch, fetch_files

how, out, *archives = sys.argv[1:]
if how == "whole":
    time_windows.WINDOW_ROWS = 2**62
fetch_files(FileFetch(archives, out))
"""


def merged_both_ways(folder: str, inputs: list[str]) -> tuple[int, dict[str, tuple[float, float]]]:
    """`fetch --source file` of `inputs` into `folder`, windowed and whole, each in a child process: the rows of the
    table (SystemExit if the two tables differ) and each way's (seconds, peak GB)."""
    results = {how: child_usage(FETCH, how, f"{folder}/{how}.parquet", *inputs) for how in ("windows", "whole")}
    windows = pl.read_parquet(f"{folder}/windows.parquet")
    if not windows.equals(pl.read_parquet(f"{folder}/whole.parquet")):
        raise SystemExit("the windowed and the whole merge gave different tables")
    return windows.height, results


def write_trade_csv(path: str, day: int, trades: int, seed: int) -> None:
    """A Bybit derivatives trade CSV.gz of one day of BTCUSDT, newest first as Bybit's: a third of the trades share
    the time of the one before (one taker order filling several makers), ids as long as Bybit's."""
    rng = np.random.default_rng([seed, day])
    start = 1_733_011_200 + 86_400 * day
    gaps = np.where(rng.random(trades) < 0.3, 0.0, rng.integers(1, 57, trades) / 1000)
    size = rng.integers(1, 5000, trades) / 1000
    price = 60_000 + np.round(np.cumsum(rng.normal(0, 0.5, trades)), 1)
    frame = pl.DataFrame(
        {
            "timestamp": np.round(np.minimum(start + np.cumsum(gaps), start + 86_399.9), 4),
            "symbol": "BTCUSDT",
            "side": rng.choice(["Buy", "Sell"], trades),
            "size": size,
            "price": price,
            "tickDirection": "ZeroPlusTick",
            "trdMatchID": [f"{day:04x}{n:08x}-5c5e-5b4a-9a43-0d6c8e2f1b7a" for n in range(trades)],
            "grossValue": (size * price * 1e8).astype(np.int64),
            "homeNotional": size,
            "foreignNotional": size * price,
        }
    )
    with gzip.open(path, "wb", compresslevel=1) as handle:
        frame.reverse().write_csv(handle, float_precision=4)


def trade_windows(days: int, trades: int, seed: int) -> None:
    """Wall time and peak resident memory of `fetch --source file` on `days` daily trade CSVs."""
    with tempfile.TemporaryDirectory() as folder:
        inputs = [f"{folder}/BTCUSDT2024-12-{day + 1:02d}.csv.gz" for day in range(days)]
        for day, path in enumerate(inputs):
            write_trade_csv(path, day, trades, seed)
        rows, results = merged_both_ways(folder, inputs)
    report_peaks(
        f"fetch --source file: {days} daily trade CSVs ({rows:,} trades)",
        ("a window at a time", results["windows"]),
        ("whole table", results["whole"]),
    )


def archive_windows(messages: int, seed: int) -> None:
    """Wall time and peak resident memory of `fetch --source file` on `messages` ob200 lines in two archives."""
    lines = make_lines(messages, seed).splitlines(keepends=True)
    with tempfile.TemporaryDirectory() as folder:
        archives = []
        for part, piece in enumerate((lines[: messages // 2], lines[messages // 2 :])):
            archives.append(f"{folder}/{part}_XRPUSDT_ob200.data.zip")
            with zipfile.ZipFile(archives[-1], "w", zipfile.ZIP_DEFLATED, compresslevel=1) as handle:
                handle.writestr(f"{part}_XRPUSDT_ob200.data", b"".join(piece))
        del lines
        rows, results = merged_both_ways(folder, archives)
    report_peaks(
        f"fetch --source file: {messages:,} ob200 lines in two archives ({rows:,} book rows)",
        ("a window at a time", results["windows"]),
        ("whole book", results["whole"]),
    )


if __name__ == "__main__":
    main()
