"""apex-book through apexctl._core against a Python reference book keyed by exact decimals, on random V5 streams."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apexctl import _core
from apexctl.errors import ApexError, DataError


@st.composite
def streams(draw):
    """Messages as (kind, u, bids, asks); prices in tenths, bids below 100.0 and asks above (never crossed)."""
    u = draw(st.integers(1, 1000))
    messages = []
    for _ in range(draw(st.integers(1, 40))):
        action = draw(st.sampled_from(["next", "next", "next", "skip", "repeat", "snapshot", "rebase"]))
        kind = 0 if action in ("snapshot", "rebase") else 1
        if action in ("next", "snapshot"):
            u += 1
        elif action == "skip":
            u += 2
        elif action == "rebase":
            u = draw(st.integers(1, max(1, u - 1)))
        bids = draw(st.dictionaries(st.integers(0, 40), st.sampled_from([0, 1, 25, 130, 999]), max_size=6))
        asks = draw(st.dictionaries(st.integers(0, 40), st.sampled_from([0, 1, 25, 130, 999]), max_size=6))
        messages.append((kind, u, sorted(bids.items()), sorted(asks.items())))
    return messages


def to_columns(messages):
    rows = []
    for i, (kind, u, bids, asks) in enumerate(messages):
        levels = [(1, Decimal(990 - t) / 10, Decimal(q) / 1000) for t, q in bids]
        levels += [(-1, Decimal(1010 + t) / 10, Decimal(q) / 1000) for t, q in asks]
        if not levels:
            levels = [(0, None, None)]
        rows += [(i, kind, u, side, price, size) for side, price, size in levels]
    return {
        "ts": np.array([r[0] for r in rows], dtype=np.int64),
        "symbol": np.zeros(len(rows), dtype=np.uint32),
        "kind": np.array([r[1] for r in rows], dtype=np.uint8),
        "side": np.array([r[3] for r in rows], dtype=np.int8),
        "price": np.array([float(r[4]) if r[4] is not None else np.nan for r in rows]),
        "size": np.array([float(r[5]) if r[5] is not None else np.nan for r in rows]),
        "update_id": np.array([r[2] for r in rows], dtype=np.int64),
        "seq": np.array([r[0] for r in rows], dtype=np.int64),
    }


def reference(messages):
    """The protocol text, literally: dicts of Decimal prices, gaps make the book stale until a snapshot."""
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    last = None
    stale = False
    incidents = 0
    for kind, u, b, a in messages:
        levels = [(bids, Decimal(990 - t) / 10, Decimal(q) / 1000) for t, q in b]
        levels += [(asks, Decimal(1010 + t) / 10, Decimal(q) / 1000) for t, q in a]
        if kind == 0:
            bids.clear()
            asks.clear()
            last, stale = u, False
        elif last is None:
            continue
        elif stale or u != last + 1:
            stale = True
            incidents += 1
            continue
        else:
            last = u
        for side, price, size in levels:
            if size == 0:
                side.pop(price, None)
            else:
                side[price] = size
    best_bid = (float(max(bids)), float(bids[max(bids)])) if bids else None
    best_ask = (float(min(asks)), float(asks[min(asks)])) if asks else None
    return best_bid, best_ask, len(bids), len(asks), incidents, last is not None and not stale


@settings(max_examples=200, deadline=None)
@given(streams())
def test_matches_decimal_reference(messages):
    summary = _core.book_replay(to_columns(messages), price_decimals=1, qty_decimals=3)
    best_bid, best_ask, n_bids, n_asks, incidents, synced = reference(messages)
    assert len(summary["incidents"]) == incidents
    book = summary["books"].get(0)
    if book is None:
        return
    assert book["best_bid"] == best_bid
    assert book["best_ask"] == best_ask
    assert (book["bid_levels"], book["ask_levels"]) == (n_bids, n_asks)
    assert book["synced"] == synced


def test_nan_price_is_a_data_error_naming_the_row():
    cols = to_columns([(0, 1, [(1, 5)], [(1, 5)])])
    cols["price"][1] = np.nan
    with pytest.raises(DataError, match="row 1: column 'price'"):
        _core.book_replay(cols)
    assert issubclass(DataError, ApexError)


def test_mismatched_lengths_are_rejected():
    cols = to_columns([(0, 1, [(1, 5)], [(1, 5)])])
    cols["seq"] = cols["seq"][:1]
    with pytest.raises(DataError, match="column 'seq' has 1 rows, expected 2"):
        _core.book_replay(cols)
