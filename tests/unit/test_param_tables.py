"""The Rust parameter tables reach Python once: `_core.param_table`'s rows, the CLI ranges built from them, and the
bindings' keywords merged over the same defaults and refused by the same bounds."""

from __future__ import annotations

import numpy as np
import pytest

from apexctl import _core
from apexctl.errors import ConfigError
from apexctl.forge import ranges

TABLES = ("backtest", "sim_run", "execution")


@pytest.mark.parametrize("table", TABLES)
def test_every_default_lies_inside_its_own_range(table: str) -> None:
    rows = ranges.table_rows(table)
    assert rows, table
    for name, default in ranges.table_defaults(table).items():
        assert ranges.table_range(table, name).parse(default) == default, (table, name)
        assert rows[name][7], f"{table}.{name} has a doc"


def test_the_cli_ranges_are_the_tables() -> None:
    assert (ranges.HOURS.low, ranges.HOURS.high, ranges.HOURS.low_open, ranges.HOURS.high_open) == (0, 168, True, False)
    assert ranges.IEL_INTERVAL_S.low == 0.1
    assert ranges.IEL_HORIZON_S.high == 3600
    assert ranges.IEL_SIZE_LOTS.low == 1
    assert _core.backtest_defaults() == ranges.table_defaults("backtest")


def test_unknown_tables_and_keywords_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="no parameter table `nope`"):
        _core.param_table("nope")
    with pytest.raises(TypeError, match="unknown sim_run parameter `hourz`"):
        _core.sim_run("BTCUSDT", hourz=0.01)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unknown execution parameter `horizon`"):
        _core.ExecEnv("BTCUSDT", 1, horizon=10.0)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="one seed per job"):
        _core.sim_batch("BTCUSDT", np.zeros((1, len(_core.dsg_params()))), np.zeros(1, np.uint64), [""], seed=1)
    with pytest.raises(TypeError, match="sim_run parameter `hours`"):
        _core.sim_run("BTCUSDT", hours="long")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: _core.sim_run("BTCUSDT", hours=169.0), "hours"),
        (lambda: _core.sim_run("BTCUSDT", hours=0.01, book_depth=0), "book_depth"),
        (lambda: _core.sim_run("BTCUSDT", hours=0.01, capital=float("nan")), "capital"),
        (lambda: _core.ExecEnv("BTCUSDT", 1, latency_ms=-1.0), "latency_ms"),
        (lambda: _core.ExecEnv("BTCUSDT", 1, size_lots=0), "size_lots"),
    ],
)
def test_a_value_outside_its_bounds_is_a_config_error_naming_it(call, name: str) -> None:
    with pytest.raises(ConfigError, match=rf"{name} must be"):
        call()
