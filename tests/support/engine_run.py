"""Runs `apexctl trade` as a child process while a test acts on it, then checks that it ended with exit 0; waits on
its ledger by condition, so that a test waits for what it needs rather than for a span of wall time."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.venue_helpers import wait_for


@contextmanager
def running_engine(command: list[str], *, tail: int = 2000) -> Iterator[subprocess.Popen]:
    """Starts `command` (its stdout dropped, its stderr kept); after the block waits up to 60 s for it to end and
    asserts exit 0, with the last `tail` characters of its stderr as the message."""
    engine = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield engine
        _, stderr = engine.communicate(timeout=60)
    finally:
        # A failed block or a run past the timeout must not leave an engine trading on the venue.
        if engine.poll() is None:
            engine.kill()
            engine.wait()
    assert engine.returncode == 0, stderr.decode()[-tail:]


def stop(engine: subprocess.Popen) -> None:
    """Asks the engine to stop as a user would (SIGTERM: its normal stop, exit 0); `running_engine` waits for it."""
    if engine.poll() is None:
        engine.send_signal(signal.SIGTERM)


def stop_and_wait(engine: subprocess.Popen) -> None:
    """`stop`, then waits up to 60 s for the engine to end, so what the venue shows next is all the engine did (its
    stop cancels and books what raced it); `running_engine` still checks the exit code and keeps the stderr read."""
    stop(engine)
    engine.communicate(timeout=60)


def ledger_count(ledger: Path, query: str, *args: object) -> int:
    """The first value of `query` (a COUNT) on the ledger; 0 while the ledger is not there or is busy."""
    try:
        with sqlite3.connect(ledger, timeout=1) as db:
            row = db.execute(query, args).fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0] or 0) if row else 0


def wait_for_count(ledger: Path, query: str, *args: object, count: int = 1, seconds: float = 30.0) -> bool:
    """Polls until `query` (a COUNT) reaches `count`, or `seconds` pass (the assertions then say what is missing)."""
    try:
        return bool(wait_for(lambda: ledger_count(ledger, query, *args) >= count, timeout=seconds, interval=0.2))
    except TimeoutError:
        return False
