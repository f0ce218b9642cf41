"""Tables in row groups of chosen sizes, with times in order or not, for the tests of what reads a table a row group
or a time window at a time."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from hypothesis import strategies as st

from apexctl.forge.io import table_pieces
from apexctl.schemas.tables import TableSchema


def write_groups(path: str | Path, frame: pl.DataFrame, sizes: list[int], schema: TableSchema) -> None:
    """`frame` as a `schema` table whose row groups hold `sizes` rows each (the rest in a last group)."""
    with table_pieces(path, schema=schema, producer="test") as write:
        start = 0
        for size in [*sizes, frame.height]:
            if start < frame.height and size:
                write(frame.slice(start, size))
                start += size


@st.composite
def row_times(draw, n: int, span: int) -> list[int]:
    """`n` times in [0, span + 3]: in order, nearly so (like a live recording's chunks), or in none."""
    ts = draw(st.lists(st.integers(0, span), min_size=n, max_size=n))
    order = draw(st.sampled_from(["sorted", "nearly", "any"]))
    if order != "any":
        ts.sort()
    if order == "nearly":
        ts = [t + d for t, d in zip(ts, draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), strict=True)]
    return ts
