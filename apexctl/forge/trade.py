"""Runs the live engine (`apex-nexus`): checks the options, launches a local venue child when the venue is local and
no ready file is given (its accounts funded with the slots' capital, keys generated into the run folder, mode 0600),
starts the engine with the run folder, shows the status table while it runs, forwards SIGINT/SIGTERM, and returns
the engine's exit code (0 stopped as asked, 1 runtime failure, 2 bad input, 3 run folder in use)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from apexctl import _core
from apexctl.console import safe
from apexctl.errors import Busy, InternalError, UsageError
from apexctl.forge import outputs, ranges
from apexctl.forge import venue as venue_runner
from apexctl.forge.durations import MAX_DURATION_NS, run_seconds
from apexctl.forge.ranges import FloatRange, IntRange

BINARY = "apex-nexus"
VENUES = ("local", "testnet", "mainnet")
#: The symbols a local venue can list: the simulator's instrument presets, the list apex-venue checks `--symbols`
#: against (read from the core rather than `forge.sim.INSTRUMENTS`, which would import polars into every trade run).
LOCAL_SYMBOLS = tuple(symbol for symbol, *_ in _core.sim_presets())
#: An account name as the engine accepts it (apex-nexus's config check); a launched venue's accounts carry these names.
ACCOUNT_NAME = re.compile(r"[A-Za-z0-9_-]+")


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
        """Checks what can be checked before anything starts (the options, and every config value this module reads
        itself); returns the parsed config (the engine checks it in full again, naming the same fields)."""
        if not self.config.is_file():
            raise UsageError(f"--config: {self.config} is not a file")
        try:
            document = tomllib.loads(self.config.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise UsageError(f"{self.config}: {error}") from None
        if self.venue is not None and self.venue not in VENUES:
            raise UsageError(f"--venue must be one of {', '.join(VENUES)}, got {safe(self.venue)!r}")
        # The engine parses the whole config whichever venue --venue picks, so the config's own kind must be valid.
        checks = _ConfigChecks(safe(self.config))
        section = checks.venue(document)
        kind = self.venue if self.venue is not None else section["kind"]
        checks.slots(document, local=kind == "local")
        if kind == "local" and self.venue_ready is None and not section.get("ready"):
            checks.faults(section, self.config.parent)
        if kind == "mainnet" and not self.confirm_mainnet:
            raise UsageError("refusing mainnet (real money) without --i-understand-mainnet")
        if self.venue_ready is not None and not self.venue_ready.is_file():
            raise UsageError(f"--venue-ready: {self.venue_ready} is not a file")
        if self.out.exists() and not self.out.is_dir():
            raise UsageError(f"--out: {self.out} exists and is not a folder")
        # The run writes its log, ledger and the venue's keys there: a folder it cannot write is named up front.
        outputs.check([outputs.OutFile(self.out / "nexus.log")], [self.config], option="--out")
        if self.duration is not None:
            run_seconds(self.duration, "--duration", MAX_DURATION_NS)
        return document


def _shown(value: object) -> str:
    """A TOML value as an error message quotes it: a string in quotes (escaped), a table or an array by its kind,
    a boolean as TOML spells it, a number or a date as it is."""
    if isinstance(value, str):
        return repr(safe(value))
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return safe(value)


class _ConfigChecks:
    """Checks every config value `apexctl trade` itself reads (the venue it launches and the accounts it funds), each
    refusal one line naming the file and the key as the engine names it (venue.speed, slot[0].capital); the engine
    checks the rest of the file before it connects."""

    def __init__(self, where: str) -> None:
        self.where = where

    def refuse(self, key: str, accepted: str, value: object) -> UsageError:
        """The error for `value` of `key` (None: TOML has no null, so the key is absent)."""
        if value is None:
            return UsageError(f"{self.where}: {key} is missing: expected {accepted}")
        return UsageError(f"{self.where}: {key}: expected {accepted}, got {_shown(value)}")

    def number(self, value: object, kind: FloatRange, key: str) -> float:
        """`value` if it is a number in `kind` (finite)."""
        # TOML's integers are numbers too (capital = 200); a bool is not, nor a quoted number, which the engine refuses.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.refuse(key, kind.describe(), value)
        return kind.check(value, f"{self.where}: {key}")

    def whole(self, value: object, kind: IntRange, key: str) -> int:
        """`value` if it is an integer in `kind` (the engine refuses 7.0 where it reads a count)."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.refuse(key, kind.describe(), value)
        return kind.check(value, f"{self.where}: {key}")

    def text(self, value: object, key: str, accepted: str) -> str:
        """`value` if it is a string with more than blanks in it."""
        if not isinstance(value, str) or not value.strip():
            raise self.refuse(key, accepted, value)
        return value

    def venue(self, document: dict) -> dict:
        """The `[venue]` table, its kind one of VENUES and the launched venue's settings in the venue's ranges."""
        section = document.get("venue")
        if not isinstance(section, dict):
            raise self.refuse("venue", f"a [venue] table with kind = one of {', '.join(VENUES)}", section)
        kind = section.get("kind")
        if kind not in VENUES:
            raise self.refuse("venue.kind", f"one of {', '.join(VENUES)}", kind)
        if "speed" in section:
            self.number(section["speed"], ranges.VENUE_SPEED, "venue.speed")
        if "seed" in section:
            self.whole(section["seed"], ranges.SEED, "venue.seed")
        for key in ("ready", "faults"):
            if key in section:
                self.text(section[key], f"venue.{key}", "a file name (relative to the config file)")
        return section

    def faults(self, section: dict, base: Path) -> None:
        """The fault plan a launched venue reads, when the config names one."""
        if "faults" in section and not (base / section["faults"]).is_file():
            path = base / section["faults"]
            raise UsageError(f"{self.where}: venue.faults: {safe(path)} is not a file (a fault plan, TOML)")

    def slots(self, document: dict, local: bool) -> None:
        """Every `[[slot]]`: a name, a symbol (on a local venue, one it lists), a capital in the simulator's range and
        an account name the engine accepts."""
        slots = document.get("slot")
        if not slots:
            raise UsageError(f"{self.where}: no [[slot]]: the engine needs at least one slot to trade")
        if not isinstance(slots, list):
            raise self.refuse("slot", "an array of tables ([[slot]])", slots)
        for index, slot in enumerate(slots):
            if not isinstance(slot, dict):
                raise self.refuse(f"slot[{index}]", "a table ([[slot]])", slot)
            name = self.text(slot.get("name"), f"slot[{index}].name", "the slot's name")
            # The engine's key (slot[0].capital), then the slot's name: what the user finds in the file.
            named = f'("{safe(name)}")'
            symbol = self.text(slot.get("symbol"), f"slot[{index}].symbol {named}", "a symbol such as BTCUSDT")
            if local and symbol not in LOCAL_SYMBOLS:
                listed = f"a symbol the local venue lists: {', '.join(LOCAL_SYMBOLS)}"
                raise self.refuse(f"slot[{index}].symbol {named}", listed, symbol)
            self.number(slot.get("capital"), ranges.CAPITAL, f"slot[{index}].capital {named}")
            account = slot.get("account", "main")
            if not isinstance(account, str) or not ACCOUNT_NAME.fullmatch(account):
                accepted = "an account name of letters, digits, - and _"
                raise self.refuse(f"slot[{index}].account {named}", accepted, account)


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
    # The venue reads a balance as a plain decimal of at most 8 places: str() would write 1e-05 for a small capital.
    accounts = [
        {"name": name, "api_key": secrets.token_hex(9), "api_secret": secrets.token_hex(18), "balance": f"{total:.8f}"}
        for name, total in sorted(balances.items())
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
    child = subprocess.Popen(
        [str(venue_runner.find_binary()), *options.arguments()], stdout=log, stderr=log, env=venue_runner.launched_env()
    )
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
    from apexctl import _ort

    _ort.use_wheel_library()  # the engine loads the bundles' ONNX models, in the check below too
    _engine_check(binary, options)
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
    env = venue_runner.launched_env()
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


def _engine_check(binary: Path, options: TradeOptions) -> None:
    """The engine's own checks of the whole config, every bundle and the keys (`apex-nexus --check`), run before
    OUT is made or a venue launched: a bad bundle path or engine setting is one line, and nothing is started."""
    args = [str(binary), "--config", str(options.config), "--out", str(options.out), "--check"]
    if options.venue:
        args += ["--venue", options.venue]
    if options.confirm_mainnet:
        args.append("--i-understand-mainnet")
    checked = subprocess.run(args, capture_output=True, check=False)
    if checked.returncode == 0:
        return
    lines = checked.stderr.decode(errors="replace").splitlines()
    last = next((line for line in reversed(lines) if line.startswith("apex-nexus: ")), None)
    if checked.returncode == 2 and last is not None:
        raise UsageError(last.removeprefix("apex-nexus: "))
    if checked.returncode == 3 and last is not None:  # another engine runs in OUT: nothing started, nothing written
        raise Busy(last.removeprefix("apex-nexus: "))
    said = last or (lines[-1] if lines else "no output")
    raise InternalError(f"{binary} --check exited {checked.returncode}: {said}")


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
            said = last.decode(errors="replace")
            # Bad input (2) and a held folder (3) read as every apexctl refusal does; a runtime failure names the
            # engine, whose log holds the rest.
            if code in (2, 3):
                said = "apexctl: error: " + said.removeprefix("apex-nexus: ")
            sys.stderr.write(said + "\n")
    return venue_runner.killed("apex-nexus", code, f"; its log is {options.out / 'nexus.log'}")
