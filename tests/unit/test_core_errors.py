"""Each error of the Rust core arrives as its precise exception, and Rust's and Python's classes are one hierarchy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from apexctl import _core, errors
from apexctl.errors import (
    ApexError,
    ConfigError,
    DataError,
    InputError,
    IoError,
    SchemaError,
    UsageError,
)
from tests.conftest import run_cli


def test_one_hierarchy_shared_by_rust_and_python():
    for name in ("ApexError", "UsageError", "InputError", "SchemaError", "DataError", "IoError", "ConfigError"):
        assert getattr(errors, name) is getattr(_core, name), name
    assert issubclass(UsageError, ApexError)
    assert issubclass(InputError, ApexError)
    assert issubclass(SchemaError, InputError)
    assert issubclass(DataError, InputError)
    assert issubclass(IoError, InputError)
    assert issubclass(ConfigError, UsageError)
    assert issubclass(ConfigError, DataError)
    assert not issubclass(DataError, UsageError)


def raised(call, *args, **kwargs) -> type[BaseException]:
    with pytest.raises(ApexError) as info:
        call(*args, **kwargs)
    return type(info.value)


BARS = {
    "ts": np.arange(4, dtype=np.int64) * 60_000_000_000,
    "open": np.full(4, 100.0),
    "high": np.full(4, 101.0),
    "low": np.full(4, 99.0),
    "close": np.full(4, 100.0),
    "volume": np.ones(4),
}
DSG_TYPO = '{"schema": "apex.dsg", "version": 1, "params": {"noise.agentz": 1}}'
NAN_CLOSE = np.array([100.0, np.nan, 100.0, 100.0])


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        # Settings the core refuses: a preset, a DSG parameter, a strategy, a bound, a side, VMD settings.
        (lambda: _core.sim_run("DOGEUSDT", hours=0.01), ConfigError),
        (
            lambda: _core.dsg_normalize('{"schema": "apex.dsg", "version": 1, "params": {"noise.agentz": 1}}'),
            ConfigError,
        ),
        (lambda: _core.sim_strategy_check("moon"), ConfigError),
        (lambda: _core.sim_run("BTCUSDT", hours=0.01, strategy="ma_crossover:9:3"), ConfigError),
        (lambda: _core.backtest_run(np.zeros((1, 4)), BARS, fee=0.5), ConfigError),
        (lambda: _core.backtest_run(np.zeros((1, 4)), BARS, start=3, end=2), ConfigError),
        (lambda: _core.ExecEnv("BTCUSDT", side="up"), ConfigError),
        (lambda: _core.vmd(np.zeros(64), modes=0), ConfigError),
        # Malformed input data.
        (
            lambda: _core.backtest_run(np.zeros((1, 4)), BARS | {"close": np.array([100.0, np.nan, 100, 100])}),
            DataError,
        ),
        (lambda: _core.vmd(np.array([0.0] * 63 + [np.nan])), DataError),
        (lambda: _core.bybit_parse_lines(b"{not json\n"), DataError),
        (lambda: _core.gp_validate('{"schema": "apex.gp_tree"}', ["x"]), DataError),
    ],
)
def test_each_error_is_its_precise_class(call, expected):
    assert raised(call) is expected


def test_bundle_errors_are_io_and_schema_errors(tmp_path):
    assert raised(_core.bundle_check, tmp_path / "absent") is IoError
    (tmp_path / "manifest.json").write_text(json.dumps({"schema": "apex.dsg", "version": 1}))
    assert raised(_core.bundle_check, tmp_path) is SchemaError


def test_a_config_error_is_one_line_and_exit_2(tmp_path):
    result = run_cli("simulate", "-o", str(tmp_path / "out"), "--hours", "0.01", "--strategy", "ma_crossover:0:5")
    assert result.returncode == 2
    assert result.stderr.count(b"\n") == 1
    assert b"--strategy: ma_crossover:0:5: FAST (0) must be at least 1" in result.stderr
