"""`features` reads the book a time window at a time: the windows are the merged book, and the features of a book
(and of trades beside it) read in many windows are those of it read whole."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apexctl import _core
from apexctl.errors import InputError
from apexctl.forge import features as feature_run
from apexctl.forge import time_windows
from apexctl.forge.io import open_table
from apexctl.schemas import BOOK, TRADES
from tests.support.market_fixture import synthetic_market
from tests.support.row_groups import row_times, write_groups


@st.composite
def book_files(draw):
    """1-3 small book tables (random times: in time order, nearly so like a live recording, or not at all) and the
    row group sizes of each."""
    files = []
    for _ in range(draw(st.integers(1, 3))):
        n = draw(st.integers(1, 40))
        ts = draw(row_times(n, 30))
        frame = pl.DataFrame(
            {
                "ts": [1_700_000_000_000_000_000 + t for t in ts],
                "symbol": draw(st.lists(st.sampled_from(["A", "B"]), min_size=n, max_size=n)),
                "kind": ["delta"] * n,
                "side": draw(st.lists(st.sampled_from([-1, 0, 1]), min_size=n, max_size=n)),
                "price": draw(st.lists(st.sampled_from([1.5, 2.25, 10.0, 3.125]), min_size=n, max_size=n)),
                "size": draw(st.lists(st.sampled_from([0.0, 1.0, 0.01]), min_size=n, max_size=n)),
                "update_id": list(range(n)),
                "seq": list(range(n)),
            },
            schema=BOOK.polars_schema(),
        )
        files.append((frame, draw(st.lists(st.integers(1, 12), max_size=6))))
    return files


@settings(max_examples=60, deadline=None)
@given(files=book_files(), window_rows=st.integers(1, 30))
def test_the_windows_are_the_inputs_merged_in_time_order(tmp_path_factory, files, window_rows):
    folder = tmp_path_factory.mktemp("windows")
    opened = []
    for index, (frame, sizes) in enumerate(files):
        write_groups(folder / f"b{index}.parquet", frame, sizes, BOOK)
        opened.append((index, open_table(folder / f"b{index}.parquet", BOOK)))
    numbered = [
        f.with_columns(
            pl.lit(i, dtype=pl.UInt32).alias("_source"), pl.int_range(pl.len(), dtype=pl.UInt64).alias("_row")
        )
        for i, (f, _) in enumerate(files)
    ]
    merged = pl.concat(numbered).sort("ts", maintain_order=True)  # the reference: everything at once
    books = time_windows.survey(opened)
    original = time_windows.WINDOW_ROWS
    time_windows.WINDOW_ROWS = window_rows
    try:
        windows = list(books.windows())
    finally:
        time_windows.WINDOW_ROWS = original
    got = pl.concat([pl.concat([w.frame, w.origins], how="horizontal") for w in windows])
    assert got.equals(merged.select(got.columns))
    prices, sizes = (merged[c].fill_null(np.nan).to_numpy() for c in ("price", "size"))
    assert books.decimals == _core.book_decimals(merged["side"].to_numpy(), prices, sizes)
    spans = merged.group_by("symbol").agg(pl.col("ts").min().alias("first"), pl.col("ts").max().alias("last"))
    assert books.spans.select("symbol", "first", "last").sort("symbol").equals(spans.sort("symbol"))


def test_groups_that_overlap_a_little_are_still_cut_and_a_shuffled_table_is_not(tmp_path, monkeypatch):
    monkeypatch.setattr(time_windows, "WINDOW_ROWS", 100)
    n = 5000
    base = 1_700_000_000_000_000_000
    arrival = np.arange(n) * 1000 + np.random.default_rng(5).integers(0, 3000, n)  # a few rows out of time order
    frame = pl.DataFrame(
        {"ts": base + arrival, "symbol": ["A", "B"] * (n // 2), "kind": "delta", "side": 1, "price": 1.5,
         "size": 1.0, "update_id": np.arange(n), "seq": np.arange(n)},
        schema=BOOK.polars_schema(),
    )  # fmt: skip
    for name, table in (("recorded", frame), ("shuffled", frame.sample(fraction=1.0, shuffle=True, seed=1))):
        write_groups(tmp_path / f"{name}.parquet", table, [50] * (n // 50), BOOK)
    recorded = time_windows.survey([(0, open_table(tmp_path / "recorded.parquet", BOOK))])
    assert not recorded.inputs[0].in_time_order()
    cuts = recorded.cuts()
    assert len(cuts) > 30
    assert recorded.rows_read(cuts) < 1.2 * n  # a group is read twice only where it straddles a cut
    merged = pl.concat([w.frame for w in recorded.windows()])
    assert merged.equals(frame.sort("ts", maintain_order=True))
    shuffled = time_windows.survey([(0, open_table(tmp_path / "shuffled.parquet", BOOK))])
    assert shuffled.cuts() == []  # every group spans nearly all the time: each window would reread the table


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    """The synthetic market's book split by symbol into two inputs of many row groups, and its trades in many row
    groups too."""
    folder = tmp_path_factory.mktemp("market")
    trades, book, _ = synthetic_market()
    for symbol, part in book.partition_by("symbol", as_dict=True).items():
        write_groups(folder / f"book-{symbol[0]}.parquet", part, [97] * (part.height // 97), BOOK)
    write_groups(folder / "trades.parquet", trades, [41] * (trades.height // 41), TRADES)
    return folder


@pytest.mark.parametrize("grain", ["update", "1m"])
def test_a_book_and_trades_read_in_many_windows_give_the_features_of_them_read_whole(
    market, tmp_path, monkeypatch, grain
):
    paths = [str(p) for p in sorted(market.glob("book-*.parquet"))] + [str(market / "trades.parquet")]
    config = feature_run.FeatureConfig(grain=feature_run.Grain(grain))
    whole = feature_run.run(paths, str(tmp_path / "whole.parquet"), config)
    monkeypatch.setattr(time_windows, "WINDOW_ROWS", 300)
    assert len(time_windows.survey([(0, open_table(paths[0], BOOK))]).cuts()) > 5
    assert len(time_windows.survey_trades([(0, open_table(paths[-1], TRADES))]).cuts()) > 5
    pieces = feature_run.run(paths, str(tmp_path / "pieces.parquet"), config)
    assert pieces == whole
    expected = pl.read_parquet(tmp_path / "whole.parquet")
    assert pl.read_parquet(tmp_path / "pieces.parquet").equals(expected, null_equal=True)
    assert expected.height > 100


@pytest.mark.parametrize(
    ("column", "value", "checked_by"),
    [("kind", "replace", "Python"), ("price", float("nan"), "the Rust replay")],
    ids=["kind", "nan-price"],
)
def test_a_bad_row_in_a_late_window_is_named_by_its_file_row_and_nothing_is_written(
    tmp_path, monkeypatch, column, value, checked_by
):
    _, book, _ = synthetic_market()
    bad_row = int((book["side"] != 0).arg_true()[-5])  # a level row near the end: a late window
    at_bad_row = pl.int_range(pl.len()) == bad_row
    book = book.with_columns(pl.when(at_bad_row).then(pl.lit(value)).otherwise(pl.col(column)).alias(column))
    write_groups(tmp_path / "b.parquet", book, [50] * (book.height // 50), BOOK)
    monkeypatch.setattr(time_windows, "WINDOW_ROWS", 100)
    out = tmp_path / "f.parquet"
    with pytest.raises(InputError) as raised:  # the Python checks raise it, the Rust replay its DataError
        feature_run.run([str(tmp_path / "b.parquet")], str(out), feature_run.FeatureConfig())
    message = str(raised.value)
    assert message.startswith(f"{tmp_path / 'b.parquet'}: book table, row {bad_row}: "), (checked_by, message)
    assert column in message
    assert not out.exists()
    assert not list(tmp_path.glob(".*"))
