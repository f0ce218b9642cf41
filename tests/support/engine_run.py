"""Runs `apexctl trade` as a child process while a test acts on it, then checks that it ended by itself with exit 0."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager


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
