"""`features` reads trades a time window at a time: the per-trade flow and the bars of trades read in many windows,
from one or several files, are those of the merged table read whole; a bad row of a late window is named by its file
row and nothing is written."""

from __future__ import annotations

from unittest import mock

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apexctl.errors import DataError, InputError
from apexctl.forge import features as feature_run
from apexctl.forge import time_windows
from apexctl.schemas import TRADES
from tests.support.row_groups import row_times, write_groups

T0 = 1_700_000_000_000_000_000
SECOND = 10**9


@st.composite
def trade_files(draw):
    """1-3 trades tables of two symbols (times in order, nearly so, or in none; sizes of 0-3 decimals, so the files'
    scales differ; unique ids) and the row group sizes of each."""
    files, next_id = [], 0
    for _ in range(draw(st.integers(1, 3))):
        n = draw(st.integers(1, 40))
        ts = draw(row_times(n, 90))
        decimals = draw(st.integers(0, 3))
        sizes = draw(st.lists(st.integers(1, 5000), min_size=n, max_size=n))
        frame = pl.DataFrame(
            {
                "ts": [T0 + t * SECOND for t in ts],
                "symbol": draw(st.lists(st.sampled_from(["A", "B"]), min_size=n, max_size=n)),
                "side": draw(st.lists(st.sampled_from([-1, 1]), min_size=n, max_size=n)),
                "price": draw(st.lists(st.sampled_from([1.5, 2.25, 10.0]), min_size=n, max_size=n)),
                "size": [s / 10**decimals for s in sizes],
                "trade_id": [str(next_id + i) for i in range(n)],
            },
            schema=TRADES.polars_schema(),
        )
        next_id += n
        files.append((frame, draw(st.lists(st.integers(1, 12), max_size=6))))
    return files


@settings(max_examples=40, deadline=None)
@given(files=trade_files(), window_rows=st.integers(1, 30), grain=st.sampled_from(["trade", "1m"]))
def test_trades_read_in_many_windows_give_the_features_of_the_merged_table_read_whole(
    tmp_path_factory, files, window_rows, grain
):
    folder = tmp_path_factory.mktemp("trades")
    paths = []
    for index, (frame, sizes) in enumerate(files):
        write_groups(folder / f"t{index}.parquet", frame, sizes, TRADES)
        paths.append(str(folder / f"t{index}.parquet"))
    merged = pl.concat([frame for frame, _ in files]).sort("ts", maintain_order=True)
    write_groups(folder / "whole.parquet", merged, [], TRADES)
    config = feature_run.FeatureConfig(grain=feature_run.Grain(grain), tfi_windows=("5s", "1m"), vmd_modes=0)
    whole = feature_run.run([str(folder / "whole.parquet")], str(folder / "f-whole.parquet"), config)
    with mock.patch.object(time_windows, "WINDOW_ROWS", window_rows):
        pieces = feature_run.run(paths, str(folder / "f-pieces.parquet"), config)
    assert pieces == whole
    expected = pl.read_parquet(folder / "f-whole.parquet")
    assert pl.read_parquet(folder / "f-pieces.parquet").equals(expected, null_equal=True)


@pytest.mark.parametrize(("column", "value"), [("price", float("nan")), ("size", -1.0)])
@pytest.mark.parametrize("grain", ["trade", "1m"])
def test_a_bad_trade_in_a_late_window_is_named_by_its_file_row_and_nothing_is_written(
    tmp_path, monkeypatch, column, value, grain
):
    n = 400
    trades = pl.DataFrame(
        {
            "ts": [T0 + i * SECOND for i in range(n)],
            "symbol": ["A", "B"] * (n // 2),
            "side": [1, -1, -1, 1] * (n // 4),
            "price": [100.0 + i % 7 for i in range(n)],
            "size": [0.5] * n,
            "trade_id": [str(i) for i in range(n)],
        },
        schema=TRADES.polars_schema(),
    )
    bad_row = n - 5
    at_bad_row = pl.int_range(pl.len()) == bad_row
    trades = trades.with_columns(pl.when(at_bad_row).then(pl.lit(value)).otherwise(pl.col(column)).alias(column))
    write_groups(tmp_path / "t.parquet", trades, [50] * (n // 50), TRADES)
    monkeypatch.setattr(time_windows, "WINDOW_ROWS", 100)
    out = tmp_path / "f.parquet"
    config = feature_run.FeatureConfig(grain=feature_run.Grain(grain))
    with pytest.raises((InputError, DataError)) as raised:
        feature_run.run([str(tmp_path / "t.parquet")], str(out), config)
    message = str(raised.value)
    assert message.startswith(f"{tmp_path / 't.parquet'}: trades table, row {bad_row}: column '{column}'"), message
    assert not out.exists()
    assert not list(tmp_path.glob(".*"))
