"""Shared test fixtures: paths to the real Bybit messages kept under tests/data, and CLI runners."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
BYBIT = DATA / "bybit"


@pytest.fixture
def bybit_data() -> Path:
    return BYBIT


def run_cli(*args: str, stdin: bytes | None = None, cwd: Path | None = None, check: bool = False):
    """Runs the real `apexctl` console entry point in a subprocess, as a user would."""
    env = dict(os.environ)
    env.pop("APEX_DEBUG", None)
    result = subprocess.run(
        [sys.executable, "-m", "apexctl", *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        env=env,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"apexctl {' '.join(args)} exited {result.returncode}: {result.stderr.decode()}")
    return result
