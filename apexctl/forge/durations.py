"""Durations as the CLI and the tables spell them (500ms, 10s, 5m, 1h, 1d, Bybit's kline intervals), in ns."""

from __future__ import annotations

import re

from apexctl.console import safe
from apexctl.errors import UsageError

SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
#: Longest duration accepted (TFI windows, bar intervals, horizons): a week.
MAX_DURATION_NS = 7 * DAY

_DURATION = re.compile(r"^(\d{1,12})(ns|ms|s|m|h|d)$")
_UNIT_NS = {"ns": 1, "ms": 1_000_000, "s": SECOND, "m": MINUTE, "h": HOUR, "d": DAY}
# Bybit kline intervals as they appear in the V5 API ("1" = 1 minute, "D" = day).
_BYBIT_INTERVALS = {"D": DAY, "W": 7 * DAY}


def _length(text: str) -> int | None:
    value = text.strip()
    if value in _BYBIT_INTERVALS:
        return _BYBIT_INTERVALS[value]
    match = _DURATION.match(value if not value.isdigit() else f"{value}m")
    if not match or int(match.group(1)) == 0:
        return None
    return int(match.group(1)) * _UNIT_NS[match.group(2)]


def duration_ns(text: str) -> int | None:
    """`text` in ns if it is a positive duration no longer than MAX_DURATION_NS, else None."""
    duration = _length(text)
    return duration if duration is not None and duration <= MAX_DURATION_NS else None


def parse_duration(text: str, what: str = "duration") -> int:
    """`500ms`, `1s`, `5m`, `1h`, `1d` (or a Bybit kline interval: minutes as a bare number, `D`, `W`) in ns; a
    UsageError naming `what` otherwise."""
    duration = _length(text)
    if duration is None:
        raise UsageError(f"{what} {safe(text)!r} is not a positive duration such as 500ms, 1s, 10s, 5m, 1h")
    if duration > MAX_DURATION_NS:
        raise UsageError(f"{what} {safe(text)!r} is longer than the longest accepted duration, 7d")
    return duration


def run_seconds(text: str, option: str, longest_ns: int | None = None) -> float:
    """A run length as every `--duration` spells it, in seconds: `90` (a bare number is seconds), `1.5s`, `500ms`,
    `10m`, `2h`, `1d`. The engine's and the venue's own parser (`_core.duration_seconds`), so what passes here is what
    the binaries read; a UsageError naming `option` otherwise, or when longer than `longest_ns`."""
    from apexctl import _core

    try:
        seconds = _core.duration_seconds(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {safe(str(exc))}") from None
    if longest_ns is not None and seconds * SECOND > longest_ns:
        raise UsageError(f"{option} {safe(text)!r} is longer than the longest accepted run, {label(longest_ns)}")
    return seconds


def label(ns: int) -> str:
    """A duration in its largest whole unit, as apex-features names columns and the engine words bars: 5m, 1h, 90s."""
    unit = next((u for u in ("d", "h", "m", "s", "ms") if ns % _UNIT_NS[u] == 0), "ns")
    return f"{ns // _UNIT_NS[unit]}{unit}"
