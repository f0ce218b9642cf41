"""Shared test fixtures: paths to the real Bybit messages kept under tests/data, tiny inputs of every command, and
CLI runners (a subprocess, as a user runs it; in this process, for the option sweep)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from apexctl import _core
from apexctl.forge.features import book_arrays

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


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """Tiny inputs of every subcommand (see tests/support/artifacts.py), built once."""
    from tests.support.artifacts import build

    return build(tmp_path_factory.mktemp("tiny"))


@dataclass
class Ran:
    """The outcome of an in-process CLI run."""

    code: int
    stderr: str
    stdout: bytes


def run_here(*args: str) -> Ran:
    """Runs `apexctl ARGS` in this process through the CLI's own entry (`apexctl.cli.run`: errors mapped to one line
    and an exit status, as the console script does); captures stderr and stdout. Interrupt handling and the exit
    through os._exit are the launcher's, tested with real subprocesses."""
    from apexctl.cli import run

    err = io.StringIO()
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = run(list(args))
        out.flush()
    return Ran(code, err.getvalue(), out.buffer.getvalue())  # type: ignore[attr-defined]


def replay_book(frame):
    """Replays a `book` table (polars frame) through `_core.book_replay`: counters per symbol code, incidents."""
    codes = frame["symbol"].cast(pl.Categorical).to_physical().cast(pl.UInt32).to_numpy()
    return _core.book_replay(book_arrays(frame, codes))


E2E = Path(__file__).resolve().parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every end-to-end test (tests/e2e/: venue, engine, pipeline, long simulations) is `slow`."""
    for item in items:
        if E2E in item.path.resolve().parents:
            item.add_marker(pytest.mark.slow)
