"""The Rust parameter tables reach Python once: `_core.param_table`'s rows, the CLI ranges built from them, and the
bindings' keywords merged over the same defaults and refused by the same bounds."""

from __future__ import annotations

import numpy as np
import pytest

from apexctl import _core
from apexctl.errors import ConfigError
from apexctl.forge import ranges

TABLES = ("backtest", "sim_run", "execution", "features")
TREE = '{"schema": "apex.gp_tree", "version": 1, "features": ["close"], "root": {"feature": "close"}}'


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
    assert ranges.FEATURE_DEFAULTS == {"rv_bars": 30, "vmd_modes": 3, "vmd_window": 64}
    assert (ranges.RV_BARS.low, ranges.VMD_MODES.high, ranges.VMD_WINDOW.low) == (1, 16, 4)


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
    with pytest.raises(TypeError, match="unknown simulator GP run parameter `rv_window`"):
        _core.sim_gp_fitness([TREE], None, [1], hours=0.01, rv_window=5)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="takes its seeds as `seeds`"):
        _core.sim_gp_fitness([TREE], None, [1], hours=0.01, seed=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unknown features parameter `modes`"):
        _core.sim_feature_names(modes=2)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: _core.sim_run("BTCUSDT", hours=169.0), "hours"),
        (lambda: _core.sim_run("BTCUSDT", hours=0.01, book_depth=0), "book_depth"),
        (lambda: _core.sim_run("BTCUSDT", hours=0.01, capital=float("nan")), "capital"),
        (lambda: _core.ExecEnv("BTCUSDT", 1, latency_ms=-1.0), "latency_ms"),
        (lambda: _core.ExecEnv("BTCUSDT", 1, size_lots=0), "size_lots"),
        (lambda: _core.sim_gp_fitness([TREE], None, [1], hours=0.01, rv_bars=0), "rv_bars"),
        (lambda: _core.sim_gp_run(TREE, None, 1, hours=0.01, vmd_modes=17), "vmd_modes"),
        (lambda: _core.sim_gp_run(TREE, None, 1, hours=0.01, vmd_modes=8, vmd_window=10), "vmd_window"),
        (lambda: _core.sim_gp_fitness([TREE], None, [1], hours=500.0), "hours"),
        (lambda: _core.sim_feature_warmup(vmd_window=2), "vmd_window"),
    ],
)
def test_a_value_outside_its_bounds_is_a_config_error_naming_it(call, name: str) -> None:
    with pytest.raises(ConfigError, match=rf"{name} must be"):
        call()
