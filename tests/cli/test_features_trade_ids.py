"""`features` surveys trades without holding their ids (a hash per row in their place) and reads back the few rows
the repeat and conflict checks compare: those rows are the ones the full table would give."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from apexctl.forge import features as feature_run
from apexctl.forge.io import open_table
from apexctl.forge.table_checks import shared_id_rows
from apexctl.schemas import TRADES
from tests.support.row_groups import write_groups

T0 = 1_700_000_000_000_000_000


@st.composite
def trade_files(draw):
    """1-3 small trades tables (ids drawn from a few, some empty, so rows share them within and across files)
    and the row group sizes of each."""
    files = []
    for _ in range(draw(st.integers(1, 3))):
        n = draw(st.integers(1, 30))
        frame = pl.DataFrame(
            {
                "ts": sorted(T0 + t for t in draw(st.lists(st.integers(0, 20), min_size=n, max_size=n))),
                "symbol": draw(st.lists(st.sampled_from(["A", "B"]), min_size=n, max_size=n)),
                "side": draw(st.lists(st.sampled_from([-1, 1]), min_size=n, max_size=n)),
                "price": draw(st.lists(st.sampled_from([1.5, 2.0]), min_size=n, max_size=n)),
                "size": [1.0] * n,
                "trade_id": draw(st.lists(st.sampled_from(["1", "2", "3", ""]), min_size=n, max_size=n)),
            },
            schema=TRADES.polars_schema(),
        )
        files.append((frame, draw(st.lists(st.integers(1, 7), max_size=5))))
    return files


@settings(max_examples=60, deadline=None)
@given(files=trade_files())
def test_the_compared_rows_and_their_ids_are_those_of_the_whole_table(tmp_path_factory, files):
    folder = tmp_path_factory.mktemp("trades")
    opened = []
    for index, (frame, sizes) in enumerate(files):
        write_groups(folder / f"t{index}.parquet", frame, sizes, TRADES)
        opened.append(open_table(folder / f"t{index}.parquet", TRADES))
    inputs = feature_run.gather(opened, feature_run.Grain.trade)
    assert inputs.trades is not None
    numbered = [
        frame.with_columns(
            pl.lit(index, pl.UInt32).alias("_source"), pl.int_range(pl.len(), dtype=pl.UInt64).alias("_row")
        )
        for index, (frame, _) in enumerate(files)
    ]
    whole = pl.concat(numbered).sort("ts", maintain_order=True)
    expected = whole[shared_id_rows(whole)["_row"]]
    assert inputs.trades.shared.select(expected.columns).equals(expected)
