"""time_windows.read_ahead: the same items in order, one produced ahead at most, an error where its item would be."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apexctl.forge.time_windows import read_ahead


@given(st.lists(st.integers(), max_size=30))
def test_read_ahead_yields_the_items_in_order(items):
    assert list(read_ahead(iter(items))) == items


def test_the_next_item_is_produced_on_another_thread_while_this_one_is_handled_and_no_further():
    produced: list[int] = []
    threads: set[int] = set()

    def items() -> Iterator[int]:
        for number in range(6):
            threads.add(threading.get_ident())
            produced.append(number)
            yield number

    for number in read_ahead(items()):
        # While item k is handled, item k + 1 may be on its way, never k + 2.
        assert len(produced) <= number + 2
    assert produced == list(range(6))
    assert threading.get_ident() not in threads


def test_an_error_comes_out_after_the_items_before_it():
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("row 3 is bad")

    ahead = read_ahead(items())
    assert [next(ahead), next(ahead)] == [1, 2]
    with pytest.raises(ValueError, match="row 3 is bad"):
        next(ahead)
