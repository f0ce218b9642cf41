"""Runs the live engine (`apex-nexus`): checks the options, launches a local venue child when the venue is local and
no ready file is given (its accounts funded with the slots' capital, keys generated into the run folder, mode 0600),
starts the engine with the run folder, shows the status table while it runs, forwards SIGINT/SIGTERM, and returns
the engine's exit code (0 stopped as asked, 1 runtime failure, 2 bad input, 3 run folder in use)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from apexctl.console import safe
from apexctl.errors import UsageError
from apexctl.forge import venue as venue_runner
from apexctl.forge.durations import parse_duration

BINARY = "apex-nexus"
VENUES = ("local", "testnet", "mainnet")


@dataclass(frozen=True)
class TradeOptions:
    """What `apexctl trade` runs."""

    config: Path
    out: Path
    venue: str | None = None
    venue_ready: Path | None = None
    duration: str | None = None
    confirm_mainnet: bool = False
    table: bool = True

    def validate(self) -> dict:
        """Checks what can be checked before anything starts; returns the parsed config (the engine checks it in
        full again, naming the same fields)."""
        if not self.config.is_file():
            raise UsageError(f"--config: {self.config} is not a file")
        try:
            document = tomllib.loads(self.config.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise UsageError(f"{self.config}: {error}") from None
        kind = self.venue if self.venue is not None else document.get("venue", {}).get("kind")
        if kind not in VENUES:
            raise UsageError(f"--venue must be one of {', '.join(VENUES)}, got {kind!r}")
        if kind == "mainnet":
            if not self.confirm_mainnet:
                raise UsageError("refusing mainnet (real money) without --i-understand-mainnet")
            if not (os.environ.get("BYBIT_API_KEY") and os.environ.get("BYBIT_API_SECRET")):
                raise UsageError("refusing mainnet: BYBIT_API_KEY and BYBIT_API_SECRET must be set")
        if self.venue_ready is not None and not self.venue_ready.is_file():
            raise UsageError(f"--venue-ready: {self.venue_ready} is not a file")
        if self.out.exists() and not self.out.is_dir():
            raise UsageError(f"--out: {self.out} exists and is not a folder")
        if self.duration is not None:
            # The engine's units (a bare number would be minutes to `parse_duration` and seconds to the engine).
            if not self.duration.strip().endswith(("ms", "s", "m", "h")):
                raise UsageError(f"--duration {safe(self.duration)!r} needs a unit: ms, s, m or h (e.g. 90s, 10m)")
            parse_duration(self.duration, "--duration")
        return document


def find_binary() -> Path:
    """The `apex-nexus` binary ($APEX_NEXUS_BIN overrides)."""
    return venue_runner.find_executable(BINARY, "APEX_NEXUS_BIN")


def _accounts_file(document: dict, out: Path) -> Path:
    """Accounts of a launched venue: one per account the slots name, funded with their slots' capital; keys are
    fresh each launch and live only in this owner-only file and the venue's ready file."""
    balances: dict[str, float] = {}
    for slot in document.get("slot", []):
        name = slot.get("account", "main")
        balances[name] = balances.get(name, 0.0) + float(slot.get("capital", 0.0))
    accounts = [
        {"name": name, "api_key": secrets.token_hex(9), "api_secret": secrets.token_hex(18), "balance": str(capital)}
        for name, capital in sorted(balances.items())
    ]
    path = out / "venue-accounts.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(accounts, handle)
    return path


def _launch_venue(document: dict, config: Path, out: Path) -> tuple[subprocess.Popen, Path]:
    section = document.get("venue", {})
    ready = out / "venue-ready.json"
    ready.unlink(missing_ok=True)
    symbols = sorted({slot.get("symbol", "") for slot in document.get("slot", [])} - {""})
    faults = section.get("faults")
    options = venue_runner.VenueOptions(
        symbols=tuple(symbols) or venue_runner.DEFAULT_SYMBOLS,
        seed=int(section.get("seed", 0)),
        speed=float(section.get("speed", 1.0)),
        accounts=_accounts_file(document, out),
        faults=(config.parent / faults) if faults else None,
        fault_log=(out / "venue-faults.jsonl") if faults else None,
        ready=ready,
    )
    options.validate()
    log = open(out / "venue.log", "ab")  # noqa: SIM115 - the child owns it while it runs
    child = subprocess.Popen([str(venue_runner.find_binary()), *options.arguments()], stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while not ready.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            raise UsageError(f"the local venue did not start; see {out / 'venue.log'}")
        time.sleep(0.05)
    return child, ready


def _table(status: dict):
    from rich.table import Table

    table = Table(
        title=f"apex-nexus {status.get('state', '?')}: {status.get('bars', 0)} bars, "
        f"{status.get('orders', 0)} orders, {status.get('fills', 0)} fills, "
        f"tick-to-order p99 {(status.get('latency_us') or {}).get('p99', 0):.0f} us"
    )
    for column in ("slot", "model", "equity", "position", "weight", "last decision", "p99 latency", "book"):
        table.add_column(column)
    slots = status.get("slots", [])
    total = sum(s.get("capital", 0.0) for s in slots) or 1.0
    for s in slots:
        table.add_row(
            s["slot"],
            s["model"],
            f"{s['equity']:.2f}",
            f"{s['position']:g}",
            f"{s['capital'] / total:.2f}",
            s["last_decision"],
            "-" if s.get("latency_p99_us") is None else f"{s['latency_p99_us']:.0f} us",
            s["book"],
        )
    return table


def run(options: TradeOptions) -> int:
    """Runs the engine in the foreground until it stops; returns its exit code."""
    document = options.validate()
    binary = find_binary()
    options.out.mkdir(parents=True, exist_ok=True)
    kind = options.venue or document["venue"]["kind"]
    venue_child = None
    ready = options.venue_ready
    if kind == "local" and ready is None and not document.get("venue", {}).get("ready"):
        venue_child, ready = _launch_venue(document, options.config, options.out)
    args = [str(binary), "--config", str(options.config), "--out", str(options.out)]
    if options.venue:
        args += ["--venue", options.venue]
    if ready is not None:
        args += ["--venue-ready", str(ready)]
    if options.duration is not None:
        args += ["--duration", options.duration]
    if options.confirm_mainnet:
        args.append("--i-understand-mainnet")
    from apexctl import _ort

    _ort.use_wheel_library()
    env = dict(os.environ)
    log = open(options.out / "nexus.log", "ab")  # noqa: SIM115 - the child owns it while it runs
    engine = subprocess.Popen(args, stdout=log, stderr=log, env=env)

    def forward(signum: int, _frame: object) -> None:
        if engine.poll() is None:
            engine.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = _watch(engine, options, log)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if venue_child is not None:
            venue_child.terminate()
            try:
                venue_child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                venue_child.kill()
                venue_child.wait()
    return code


def _watch(engine: subprocess.Popen, options: TradeOptions, log) -> int:
    """Shows the status table on a terminal while the engine runs (its log goes straight to nexus.log), then relays
    its one-line error (exit 2: bad config, bundle, keys) to stderr."""
    if options.table and sys.stdout.isatty():
        from rich.live import Live

        status_path = options.out / "status.json"
        with Live(refresh_per_second=2) as live:
            while engine.poll() is None:
                with contextlib.suppress(OSError, ValueError, KeyError):
                    live.update(_table(json.loads(status_path.read_text())))
                time.sleep(0.5)
    code = engine.wait()
    log.close()
    if code != 0:
        lines = (options.out / "nexus.log").read_bytes().splitlines()
        last = next((line for line in reversed(lines) if line.startswith(b"apex-nexus: ")), None)
        if last is not None:
            sys.stderr.write(last.decode(errors="replace") + "\n")
    return code
