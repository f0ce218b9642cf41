"""SIGINT and SIGTERM as one interruption: an exception that unwinds (so temporary outputs are removed) and a flag the
Rust core polls (so a long Rust call stops within a second). Standard library only: the launcher installs it before
anything heavy is imported.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from types import FrameType

#: Exit status of an interrupted run: 128 + the signal number (130 for SIGINT, 143 for SIGTERM).
SIGNALS = (signal.SIGINT, signal.SIGTERM)

_received: list[int] = []
#: While positive, a signal is only recorded; `deferred()` raises it when the protected section ends.
_deferring = [0]


class Interrupted(KeyboardInterrupt):
    """The run was interrupted by SIGINT (Ctrl-C) or SIGTERM. A KeyboardInterrupt, so every `finally` and every
    cleanup that already handles Ctrl-C handles SIGTERM the same way."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def request_cancel() -> None:
    """Asks every running Rust computation to stop (they poll a process-wide flag); harmless before `_core` loads
    (or while it loads: the module is then in sys.modules without its functions yet)."""
    cancel = getattr(sys.modules.get("apexctl._core"), "cancel_request", None)
    if cancel is not None:
        cancel()


def _handle(signum: int, _frame: FrameType | None) -> None:
    _received.append(signum)
    request_cancel()
    if len(_received) == 1 and not _deferring[0]:
        raise Interrupted(signum)
    if len(_received) >= 3:
        # A third signal while the first one's cleanup runs: the user wants out now, cleanup or not.
        os._exit(128 + signum)
    # The second signal is ignored so the cleanup the first one started (temporary files, workers) can finish.


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Holds back the interruption until the block has ended: for sections that must not be cut in the middle, like
    the Rust extension's initialization (the numpy crate aborts the import with a panic if an exception enters the
    numpy import it runs)."""
    _deferring[0] += 1
    try:
        yield
    finally:
        _deferring[0] -= 1
    if _received and not _deferring[0]:
        raise Interrupted(_received[0])


def install() -> None:
    """Makes SIGINT and SIGTERM raise `Interrupted` in the main thread (call once, from the entry point)."""
    for signum in SIGNALS:
        signal.signal(signum, _handle)


def received() -> int | None:
    """The first interrupting signal received by this process, if any."""
    return _received[0] if _received else None


def exit_code(default: int = 130) -> int:
    """128 + the first signal received (130 SIGINT, 143 SIGTERM), or `default` when no signal arrived."""
    first = received()
    return 128 + first if first is not None else default


def worker_defaults() -> None:
    """For forked worker processes: the parent handles Ctrl-C (and terminates its workers), so a worker ignores
    SIGINT and dies quietly on SIGTERM instead of printing a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
