"""SIGINT and SIGTERM as one interruption: an exception that unwinds (so temporary outputs are removed) and a flag the
Rust core polls (so a long Rust call stops within a second). Standard library only: the launcher installs it before
anything heavy is imported.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

#: Exit status of an interrupted run: 128 + the signal number (130 for SIGINT, 143 for SIGTERM).
SIGNALS = (signal.SIGINT, signal.SIGTERM)

_received: list[int] = []
#: While positive, a signal is only recorded; `deferred()` raises it when the protected section ends.
_deferring = [0]
#: Interruptions that a native library's callback swallowed (it reports an exception it cannot pass on as
#: "unraisable"); `_redeliverer` signals the main thread again and the handler raises them there.
_swallowed: list[int] = []
_redeliver = threading.Event()


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


#: Seconds the cleanup of an interrupted run may take before the process leaves anyway: a cleanup stuck on a wedged
#: worker or lock must not keep a terminated process alive (a supervisor's SIGTERM has to end it).
GRACE_SECONDS = 30.0


def _leave(signum: int) -> None:
    """Ends the process now with the interrupted status, temporary files or not."""
    with contextlib.suppress(OSError):
        os.write(2, b"apexctl: interrupted (cleanup cut short)\n")
    os._exit(128 + signum)


def _handle(signum: int, _frame: FrameType | None) -> None:
    if _swallowed:
        if not _deferring[0]:
            raise Interrupted(_swallowed.pop())
        return  # `deferred()` raises the interruption when its section ends
    _received.append(signum)
    request_cancel()
    if len(_received) == 1:
        # A watchdog, not a promise: a healthy cleanup ends long before it fires (the process exits with it).
        watchdog = threading.Timer(GRACE_SECONDS, _leave, args=(signum,))
        watchdog.daemon = True
        watchdog.start()
        if not _deferring[0]:
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
        _swallowed.clear()
        raise Interrupted(_received[0])


def _unraisable(unraisable: Any) -> None:
    """Python's report of an exception that could not propagate: an `Interrupted` raised while a native library
    (polars converting a dtype, say) called back into Python goes to the main thread again, where it unwinds the run
    as any interruption does, instead of being printed and lost. Kept to an append and a flag: any Python it ran
    would run inside the same callback."""
    if isinstance(unraisable.exc_value, Interrupted):
        _swallowed.append(unraisable.exc_value.signum)
        _redeliver.set()
        return
    _python_unraisable[0](unraisable)


_python_unraisable = [sys.unraisablehook]


def _redeliverer() -> None:
    """Signals the main thread again for each swallowed interruption, once the native call has had time to return
    (delivered at once, the handler would run inside the same callback); should it land in another one, it repeats."""
    while True:
        _redeliver.wait()
        _redeliver.clear()
        time.sleep(0.01)
        with contextlib.suppress(IndexError):  # the handler may have raised it meanwhile
            _thread.interrupt_main(_swallowed[-1])


def install() -> None:
    """Makes SIGINT and SIGTERM raise `Interrupted` in the main thread (call once, from the entry point); every process
    forked from here on (a worker pool) gets the worker's defaults."""
    for signum in SIGNALS:
        signal.signal(signum, _handle)
    sys.unraisablehook = _unraisable
    if not _forker:
        threading.Thread(target=_redeliverer, name="apexctl-redeliver", daemon=True).start()
        _forker.append(os.getpid())
        _prctl.append(_find_prctl())
        os.register_at_fork(before=lambda: _forker.__setitem__(0, os.getpid()), after_in_child=worker_defaults)


def received() -> int | None:
    """The first interrupting signal received by this process, if any."""
    return _received[0] if _received else None


def exit_code(default: int = 130) -> int:
    """128 + the first signal received (130 SIGINT, 143 SIGTERM), or `default` when no signal arrived."""
    first = received()
    return 128 + first if first is not None else default


#: prctl(2) option: the signal the kernel sends this process when its parent dies.
_PR_SET_PDEATHSIG = 1
#: The process that forked last (set just before each fork): a worker checks it is still its parent.
_forker: list[int] = []
#: libc's prctl, looked up once in the parent: a forked child then neither imports nor calls dlopen (whose locks
#: another thread of the parent may have held at the fork).
_prctl: list[Any] = []


def _find_prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def worker_defaults() -> None:
    """For forked worker processes: the parent handles Ctrl-C (and terminates its workers), so a worker ignores
    SIGINT, dies quietly on SIGTERM instead of printing a traceback, and on Linux is killed by the kernel when its
    parent dies, however the parent ends (even SIGKILL): no worker outlives the run."""
    _received.clear()
    _swallowed.clear()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if not _prctl:
        _prctl.append(_find_prctl())
    if _prctl[0] is not None:
        _prctl[0](_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if _forker and os.getppid() != _forker[0]:  # the parent died before the request took effect
            os._exit(128 + signal.SIGKILL)
