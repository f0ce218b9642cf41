"""Every error apexctl raises on purpose: the Rust core's exceptions re-exported, plus the Python-side ones."""

from apexctl._core import ApexError, DataError, InternalError
from apexctl.signals import Interrupted

__all__ = [
    "ApexError",
    "Busy",
    "DataError",
    "InputError",
    "InternalError",
    "Interrupted",
    "NetworkError",
    "SchemaError",
    "UsageError",
    "first_line",
]


class UsageError(ApexError):
    """Options that do not make sense together, or a value outside what an option accepts."""


class InputError(ApexError):
    """An input that cannot be read: missing, unreadable, corrupt, or malformed (the message names file and place)."""


class SchemaError(InputError):
    """An artifact of the wrong kind, of an unknown or newer schema version, or with missing or mistyped columns."""


class Busy(ApexError):
    """Another run holds the lock of this command's outputs (exit 3: nothing was done; try again later)."""

    exit_code = 3


class NetworkError(ApexError):
    """A remote service that failed after the retries: the message says which endpoint and what it answered."""


def first_line(exc: BaseException) -> str:
    """The first non-empty line of a foreign exception's message (libraries add advice over several lines), or its
    type name when it has no message: what to quote inside one of our one-line errors."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__
