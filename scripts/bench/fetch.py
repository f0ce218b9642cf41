"""Benchmark: ob archive lines into `book` columns, apex-bybit (via apexctl._core) vs json.loads + Python loops; then
`apexctl fetch --source file` on two ob200 archives, merged a time window at a time (as it runs) against the whole
book at once, each in a process of its own so its peak memory is its own."""

from __future__ import annotations

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


#: A child process fetching the archives into the book table `out`: merged in windows (as `fetch` runs), or in one
#: window holding the whole book.
FETCH = """
import sys
from apexctl.forge import book_windows
from apexctl.forge.fetch import FileFetch, fetch_files

how, out, *archives = sys.argv[1:]
if how == "whole":
    book_windows.WINDOW_ROWS = 2**62
fetch_files(FileFetch(archives, out))
"""


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
        results = {how: child_usage(FETCH, how, f"{folder}/{how}.parquet", *archives) for how in ("windows", "whole")}
        windows = pl.read_parquet(f"{folder}/windows.parquet")
        if not windows.equals(pl.read_parquet(f"{folder}/whole.parquet")):
            raise SystemExit("the windowed and the whole merge gave different tables")
    report_peaks(
        f"fetch --source file: {messages:,} ob200 lines in two archives ({windows.height:,} book rows)",
        ("a window at a time", results["windows"]),
        ("whole book", results["whole"]),
    )


if __name__ == "__main__":
    main()
