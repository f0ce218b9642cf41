"""Run lengths (`--duration` of fetch, venue and trade) are read by the engine's own parser in every command."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apexctl.errors import UsageError
from apexctl.forge.durations import DAY, MINUTE, run_seconds

UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}


@given(count=st.integers(1, 3649), unit=st.sampled_from(sorted(UNITS)))
def test_a_whole_number_with_a_unit_is_that_many_units(count, unit):
    assert run_seconds(f"{count}{unit}", "--duration") == pytest.approx(count * UNITS[unit], rel=1e-12)


@pytest.mark.parametrize(("text", "seconds"), [("90", 90.0), ("1.5", 1.5), ("1.5s", 1.5), (" 10m ", 600.0)])
def test_a_bare_number_is_seconds_and_decimals_are_kept(text, seconds):
    assert run_seconds(text, "--duration") == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", '--duration: "" is not a duration (e.g. 500ms, 5s, 10m, 1h, 1d)'),
        ("-1", '--duration: "-1" is not a duration (e.g. 500ms, 5s, 10m, 1h, 1d)'),
        ("nan", '--duration: "nan" is not a duration (e.g. 500ms, 5s, 10m, 1h, 1d)'),
        ("0s", '--duration: "0s" must be a positive duration'),
        ("3w", '--duration: "3w": unknown unit "w" (ms, s, m, h or d)'),
        ("3651d", '--duration: "3651d" is longer than the longest duration, 3650d'),
        ("9" * 400, f'--duration: "{"9" * 400}" is longer than the longest duration, 3650d'),
        ("2d", "--duration '2d' is longer than the longest accepted run, 1d"),
    ],
)
def test_anything_else_is_refused_naming_the_option(text, message):
    with pytest.raises(UsageError) as refused:
        run_seconds(text, "--duration", DAY if text == "2d" else None)
    assert str(refused.value) == message


def test_the_longest_run_is_inclusive():
    assert run_seconds("1d", "--duration", DAY) == 86_400.0
    assert run_seconds("1440m", "--duration", DAY) == 86_400.0
    with pytest.raises(UsageError):
        run_seconds("1441m", "--duration", DAY)
    assert run_seconds("61s", "--duration", MINUTE + 1_000_000_000) == 61.0
