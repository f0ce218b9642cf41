"""The accepted range of every kind of value an option takes (seed, hours, probability, counts ...), defined once.

The CLI parses options through these (`apexctl/commands/_options.py`), and the Forge's configs check the same ranges,
so a value is refused with the same one-line message whether it comes from the command line or from Python.
Floats must be finite everywhere: NaN and infinities are never a meaningful setting.
"""

from __future__ import annotations

import functools
import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from apexctl import _core
from apexctl.console import safe
from apexctl.errors import UsageError

#: A symbol as Bybit and the live engine spell it: upper-case letters and digits (BTCUSDT).
SYMBOL = re.compile(r"[A-Z0-9]+")


def check_symbol_name(symbol: str, where: str) -> str:
    """`symbol` unless it is not spelled as Bybit and the live engine spell one (the engine refuses any other, and
    compares a bundle's with its slot's to the letter): UsageError naming `where`."""
    if not SYMBOL.fullmatch(symbol):
        raise UsageError(
            f"{where}: {safe(symbol)!r} is not a symbol the live engine trades: upper-case letters and digits, "
            "e.g. BTCUSDT"
        )
    return symbol


#: Largest seed: NumPy's legacy seeding, LightGBM and pycma take 32-bit seeds, so every command takes 0..2^32-1.
SEED_MAX = 2**32 - 1

Value = TypeVar("Value", int, float)


class _Range(ABC, Generic[Value]):
    """What both kinds of range share: `check`, which turns `parse`'s ValueError into a UsageError naming the option
    (so a Forge config refuses a value with the line the CLI would print)."""

    @abstractmethod
    def parse(self, text: Any) -> Value:
        """The value `text` stands for; ValueError saying why when it is not one of the range."""

    def check(self, value: Value, option: str) -> Value:
        """`value` if `parse` accepts it (in range; finite, for floats), else UsageError naming `option`."""
        try:
            return self.parse(value)
        except ValueError as exc:
            raise UsageError(f"{option}: {exc}") from None


@dataclass(frozen=True)
class IntRange(_Range[int]):
    """Whole numbers in [low, high]."""

    low: int
    high: int

    def describe(self) -> str:
        return f"a whole number from {self.low} to {self.high}"

    def parse(self, text: str | int) -> int:
        """The integer `text` stands for; ValueError (saying what is expected) otherwise."""
        if isinstance(text, bool):
            raise ValueError(f"expected {self.describe()}, got {text}")
        if isinstance(text, int):
            value = text
        else:
            stripped = str(text).strip()
            digits = stripped[1:] if stripped[:1] in "+-" else stripped
            if not digits.isdigit() or len(digits) > 30:
                raise ValueError(f"expected {self.describe()}, got {str(text)!r}")
            value = int(stripped)
        if not self.low <= value <= self.high:
            raise ValueError(f"{value} is out of range: expected {self.describe()}")
        return value


@dataclass(frozen=True)
class FloatRange(_Range[float]):
    """Finite numbers between low and high; an open end excludes the bound itself."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        return f"a finite number in {left}{self.low:g}, {self.high:g}{right}"

    def parse(self, text: str | float) -> float:
        """The finite number `text` stands for, in range; ValueError (saying what is expected) otherwise."""
        if isinstance(text, bool):
            raise ValueError(f"expected {self.describe()}, got {text}")
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise ValueError(f"expected {self.describe()}, got {str(text)!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a finite number: expected {self.describe()}")
        below = value <= self.low if self.low_open else value < self.low
        above = value >= self.high if self.high_open else value > self.high
        if below or above:
            raise ValueError(f"{value:g} is out of range: expected {self.describe()}")
        return value


# ---------------------------------------------------------------------------------------------------- Rust tables


@functools.cache
def table_rows(table: str) -> dict[str, tuple]:
    """The rows of the Rust parameter table `table` (`_core.param_table`): name -> (name, default, low, high,
    low_open, high_open, integer, doc)."""
    return {row[0]: row for row in _core.param_table(table)}


def table_range(table: str, name: str) -> IntRange | FloatRange:
    """The range of parameter `name` of a Rust parameter table, as the CLI parses it (one definition: the table)."""
    _, _, low, high, low_open, high_open, integer, _ = table_rows(table)[name]
    if integer:
        # An unbounded count end is the largest 64-bit count either way (the Rust field's own limit).
        low_int = int(low) + int(low_open) if math.isfinite(low) else -(2**63)
        high_int = int(high) - int(high_open) if math.isfinite(high) else 2**63 - 1
        return IntRange(low_int, high_int)
    return FloatRange(low, high, low_open=low_open, high_open=high_open)


def table_defaults(table: str) -> dict[str, int | float]:
    """The defaults of a Rust parameter table's rows (counts as int)."""
    return {name: int(row[1]) if row[6] else row[1] for name, row in table_rows(table).items()}


# ---------------------------------------------------------------------------------------------------- shared kinds

SEED = IntRange(0, SEED_MAX)
#: Simulated time of one market (simulate, fetch --source sim, chimera --hours, evolve --sim-hours): apex-sim's
#: `RunOptions` table (up to a week).
HOURS = table_range("sim_run", "hours")
PROBABILITY = FloatRange(0.0, 1.0)
#: A share that must leave something on both sides (support, holdout, significance levels).
OPEN_SHARE = FloatRange(0.0, 1.0, low_open=True, high_open=True)
#: A share that may be the whole (eval fraction, seed share).
SHARE = FloatRange(0.0, 1.0, low_open=True)
CORRELATION = FloatRange(-1.0, 1.0)
#: Starting capital of a simulated strategy, USDT (apex-sim's `RunOptions` table).
CAPITAL = table_range("sim_run", "capital")
LEARNING_RATE = FloatRange(0.0, 10.0, low_open=True)
#: The bar-feature options (features --rv-bars/--vmd-modes/--vmd-window, and simulate's and evolve --dsg's the same
#: for a tree's features; 0 VMD modes = off): apex-features' `FeatureOptions` table.
FEATURE_DEFAULTS = table_defaults("features")
RV_BARS = table_range("features", "rv_bars")
VMD_MODES = table_range("features", "vmd_modes")
VMD_WINDOW = table_range("features", "vmd_window")
#: Worker processes or threads.
WORKERS = IntRange(1, 1024)
#: Members of an evolved population.
POPULATION = IntRange(2, 1_000_000)
GENERATIONS = IntRange(1, 100_000)
#: Candidate, episode and step budgets.
BUDGET = IntRange(1, 10_000_000)
#: Rows of a lag or window (causal lags, GRU windows, horizons in bars).
LAGS = IntRange(0, 1_000)
WINDOW = IntRange(1, 10_000)
RANK = IntRange(1, 100_000)
#: The local venue (apexctl venue): simulated seconds per wall-clock second, its loopback port (0 picks one), and how
#: long it runs.
VENUE_SPEED = FloatRange(0.0, 10_000.0, low_open=True)
PORT = IntRange(0, 65_535)

# ---------------------------------------------------------------------------------------------------- train iel
# Here rather than beside IelConfig: `apexctl train` parses them before importing torch (which forge/iel.py needs).

IEL_EPISODES = IntRange(1, 10_000_000)
IEL_ENVS = IntRange(1, 4_096)
IEL_EVAL_EPISODES = IntRange(2, 1_000_000)
# The parent order and decision grid: apex-sim's `ExecConfig` table, so the CLI and the environment never disagree.
IEL_EXEC_DEFAULTS = table_defaults("execution")
IEL_SIZE_LOTS = table_range("execution", "size_lots")
IEL_HORIZON_S = table_range("execution", "horizon_s")
IEL_INTERVAL_S = table_range("execution", "interval_s")
