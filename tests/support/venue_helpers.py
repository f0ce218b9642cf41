"""Starts an `apex-venue` process for a test on a free loopback port and stops it afterwards."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from apexctl.forge.venue import find_binary

ACCOUNTS = [
    {"name": "alice", "api_key": "aliceKEY0000000001", "api_secret": "aliceSECRET000000000000000000000001"},
    {"name": "bob", "api_key": "bobKEY000000000002", "api_secret": "bobSECRET00000000000000000000000002"},
]


@contextmanager
def running_venue(tmp: Path, *args: str, accounts: list[dict] | None = None, timeout: float = 60.0) -> Iterator[dict]:
    """A venue with the test accounts; yields the ready document plus "process" and "fault_log"."""
    accounts_file = tmp / "accounts.json"
    accounts_file.write_text(json.dumps(accounts or ACCOUNTS))
    ready = tmp / "ready.json"
    fault_log = tmp / "faults.jsonl"
    command = [str(find_binary()), "--port", "0", "--ready", str(ready), "--accounts", str(accounts_file)]
    command += ["--fault-log", str(fault_log), *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if process.poll() is not None:
                raise RuntimeError(f"apex-venue exited {process.returncode}: {process.stderr.read()}")
            if time.monotonic() > deadline:
                raise TimeoutError("apex-venue did not write its ready file")
            time.sleep(0.05)
        document = json.loads(ready.read_text())
        document["process"] = process
        document["fault_log"] = fault_log
        yield document
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def book_checksum(bids: list[list[str]], asks: list[list[str]]) -> int:
    """The venue's top-50 checksum: CRC-32 of `bid1p:bid1q:ask1p:ask1q:bid2p:...` (levels interleaved, best first)."""
    parts: list[str] = []
    for i in range(50):
        for side in (bids, asks):
            if i < len(side):
                parts += [side[i][0], side[i][1]]
    return zlib.crc32(":".join(parts).encode())


def venue_checksum(rest: str, symbol: str, depth: int, u: int) -> int | None:
    """The venue's checksum of its book at update `u`, or None when it no longer keeps it."""
    response = requests.get(
        f"{rest}/apex/v1/book-checksum", params={"symbol": symbol, "depth": depth, "u": u}, timeout=5
    )
    if response.status_code == 404:
        return None
    return response.json()["result"]["checksum"]


def unreachable_ready(path: Path) -> Path:
    """A venue ready file naming a port nothing listens on: for runs that must stop before they connect."""
    document = {
        "rest": "http://127.0.0.1:9",
        "ws_public": "ws://127.0.0.1:9/v5/public/linear",
        "ws_private": "ws://127.0.0.1:9/v5/private",
        "accounts": [],
    }
    path.write_text(json.dumps(document))
    return path


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05):
    """Polls until `predicate()` is truthy; returns its value or raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("condition not met in time")


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
