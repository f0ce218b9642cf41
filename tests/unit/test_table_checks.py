"""The table checks' kernels against plain Python: which rows share a trade key."""

from __future__ import annotations

from collections import Counter

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from apexctl.forge.table_checks import shared_key_rows


@settings(max_examples=200, deadline=None)
@given(keys=st.lists(st.one_of(st.none(), st.integers(0, 6), st.integers(0, 2**64 - 1)), max_size=60))
def test_the_rows_sharing_a_key_are_those_whose_key_another_row_holds(keys):
    counts = Counter(k for k in keys if k is not None)
    expected = [row for row, key in enumerate(keys) if key is not None and counts[key] > 1]
    assert shared_key_rows(pl.Series("_id_key", keys, dtype=pl.UInt64)).to_list() == expected
