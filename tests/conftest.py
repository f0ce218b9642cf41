"""Shared test fixtures: paths to the real Bybit messages kept under tests/data, and CLI runners."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from apexctl import _core

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


def replay_book(frame):
    """Replays a `book` table (polars frame) through `_core.book_replay`: counters per symbol code, incidents."""
    return _core.book_replay(
        ts=frame["ts"].to_numpy(),
        symbol=frame["symbol"].cast(pl.Categorical).to_physical().cast(pl.UInt32).to_numpy(),
        kind=(frame["kind"] == "delta").cast(pl.UInt8).to_numpy(),
        side=frame["side"].to_numpy(),
        price=frame["price"].fill_null(np.nan).to_numpy(),
        size=frame["size"].fill_null(np.nan).to_numpy(),
        update_id=frame["update_id"].to_numpy(),
        seq=frame["seq"].to_numpy(),
    )
