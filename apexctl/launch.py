"""The `apexctl` entry point: interrupts handled from the first instant, the CLI run, then a deterministic exit.

The process leaves through `os._exit` once every output is closed and the streams are flushed: interpreter
shutdown with pyarrow (and its thread pools) loaded can abort with SIGABRT at random (apache/arrow#34314), which
would turn a finished run's exit status into 134. Nothing here may import more than the standard library before
the signal handlers are in place, so Ctrl-C during the seconds of start-up imports ends with one line too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

from apexctl import signals


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe or stream: nothing more to say on it
            stream.flush()


def main() -> None:
    """Runs `apexctl` with the process's arguments and exits with its status (never returns)."""
    try:
        signals.install()
        with signals.deferred():
            import apexctl._core  # noqa: F401  (its initialization loads numpy's C API, which must not be cut)
        from apexctl.cli import run

        code = run(sys.argv[1:])
    except KeyboardInterrupt:
        # Interrupted before the CLI could take over (start-up imports) or while it printed its last line.
        code = signals.exit_code()
        print("apexctl: interrupted", file=sys.stderr)
    # From here on a late signal must not change the outcome: block them while the streams are flushed.
    signal.pthread_sigmask(signal.SIG_BLOCK, set(signals.SIGNALS))
    _flush()
    os._exit(code)
