"""Every error apexctl raises on purpose: the Rust core's exceptions re-exported, plus the Python-side ones.

One hierarchy, defined in the Rust core so that its errors and Python's are the same classes: ApexError >
UsageError (a bad option value), InputError > {SchemaError, DataError (malformed input data), IoError},
ConfigError (a setting the core refuses: both a UsageError and a DataError), InternalError; plus Busy,
NetworkError and RequestRefused here. The CLI prints any of them as one line: exit 2 for what the user must change
(RequestRefused too), 1 for a NetworkError (the service was unreachable or kept failing: retry later), 3 for Busy.
"""

from apexctl._core import (
    ApexError,
    ConfigError,
    DataError,
    InputError,
    InternalError,
    IoError,
    SchemaError,
    UsageError,
)
from apexctl.signals import Interrupted

__all__ = [
    "ApexError",
    "Busy",
    "ConfigError",
    "DataError",
    "InputError",
    "InternalError",
    "Interrupted",
    "IoError",
    "NetworkError",
    "RequestRefused",
    "SchemaError",
    "UsageError",
    "first_line",
]


class Busy(ApexError):
    """Another run holds the lock of this command's outputs (exit 3: nothing was done; try again later)."""

    exit_code = 3


class NetworkError(ApexError):
    """A remote service that could not be reached or kept failing after the retries (exit 1: nothing is wrong with
    the request; a cron job retries later). The message says which endpoint and what it answered."""

    exit_code = 1


class RequestRefused(NetworkError):
    """The service answered and refused what was asked (an unknown symbol, a parameter it rejects): exit 2, as for
    any input the user must change; retrying the same request gets the same answer."""

    exit_code = 2


def first_line(exc: BaseException) -> str:
    """The first non-empty line of a foreign exception's message (libraries add advice over several lines), or its
    type name when it has no message: what to quote inside one of our one-line errors."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__
