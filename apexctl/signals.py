"""SIGINT and SIGTERM as one interruption: an exception that unwinds (so temporary outputs are removed) and a flag the
Rust core polls (so a long Rust call stops within a second). Standard library only: the launcher installs it before
anything heavy is imported.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

#: Exit status of an interrupted run: 128 + the signal number (130 for SIGINT, 143 for SIGTERM).
SIGNALS = (signal.SIGINT, signal.SIGTERM)

_received: list[int] = []


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
    """Asks every running Rust computation to stop (they poll a process-wide flag); harmless before `_core` loads."""
    core = sys.modules.get("apexctl._core")
    if core is not None:
        core.cancel_request()


def _handle(signum: int, _frame: FrameType | None) -> None:
    _received.append(signum)
    request_cancel()
    if len(_received) == 1:
        raise Interrupted(signum)
    if len(_received) >= 3:
        # A third signal while the first one's cleanup runs: the user wants out now, cleanup or not.
        os._exit(128 + signum)
    # The second signal is ignored so the cleanup the first one started (temporary files, workers) can finish.


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
