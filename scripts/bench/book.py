"""Benchmark: applying a long stream of L2 deltas, apex-book (Rust, via apexctl._core) vs a naive Python dict book."""

from __future__ import annotations

import time

import numpy as np
from common import arguments, best_of, dict_book_states, report

from apexctl import _core


def make_stream(messages: int, seed: int) -> dict[str, np.ndarray]:
    """An ob200-like stream: one 200x200 snapshot then deltas of 1-6 levels near the touch, 25 % deletes."""
    rng = np.random.default_rng(seed)
    rows_per = rng.integers(1, 7, size=messages)
    n_rows = 400 + int(rows_per.sum())
    price = np.empty(n_rows)
    size = np.empty(n_rows)
    side = np.empty(n_rows, dtype=np.int8)
    kind = np.ones(n_rows, dtype=np.uint8)
    update_id = np.empty(n_rows, dtype=np.int64)
    price[:200] = 10_000.0 - np.arange(200) * 0.1
    price[200:400] = 10_000.1 + np.arange(200) * 0.1
    size[:400] = 1.0 + (np.arange(400) % 17)
    side[:200], side[200:400] = 1, -1
    kind[:400] = 0
    update_id[:400] = 1
    msg_of_row = np.repeat(np.arange(messages), rows_per)
    update_id[400:] = msg_of_row + 2
    is_bid = rng.random(len(msg_of_row)) < 0.5
    offset = rng.integers(0, 220, size=len(msg_of_row))
    side[400:] = np.where(is_bid, 1, -1)
    price[400:] = np.round(np.where(is_bid, 10_000.0 - offset * 0.1, 10_000.1 + offset * 0.1), 1)
    qty = rng.integers(1, 500, size=len(msg_of_row)) * 0.001
    size[400:] = np.where(rng.random(len(msg_of_row)) < 0.25, 0.0, np.round(qty, 3))
    return {
        "ts": update_id * 100_000_000,
        "symbol": np.zeros(n_rows, dtype=np.uint32),
        "kind": kind,
        "side": side,
        "price": price,
        "size": size,
        "update_id": update_id,
        "seq": update_id,
    }


def python_dict_book(cols: dict[str, np.ndarray]) -> tuple[float, float]:
    """The naive book: a dict per side, best levels by max/min after every message."""
    best_bid = best_ask = float("nan")
    for bids, asks in dict_book_states(cols):
        best_bid = max(bids) if bids else float("nan")
        best_ask = min(asks) if asks else float("nan")
    return best_bid, best_ask


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--messages", type=int, default=500_000, help="number of delta messages (default 500000)")
    args = parser.parse_args()
    cols = make_stream(args.messages, args.seed)
    summary = _core.book_replay(cols)
    book = summary["books"][0]
    assert summary["messages"] == args.messages + 1
    assert not summary["incidents"], summary["incidents"][:3]
    assert python_dict_book(cols) == (book["best_bid"][0], book["best_ask"][0])
    ours = best_of(lambda: _core.book_replay(cols))
    cpu = time.process_time()
    _core.book_replay(cols)
    cpu = time.process_time() - cpu
    peer = best_of(lambda: python_dict_book(cols), repeats=1)
    levels = int(np.count_nonzero(cols["side"][400:]))
    report(f"book: {args.messages:,} deltas (ob200-like) applied", "msgs", args.messages, ours, peer, "python dict")
    print(
        f"  per core    : {args.messages / cpu:14,.0f} msgs per CPU-second, {levels / cpu:,.0f} level updates per "
        f"CPU-second ({levels:,} level updates; process CPU {cpu * 1e3:.1f} ms)"
    )


if __name__ == "__main__":
    main()
