"""Runs the `apex-venue` binary (the local Bybit-V5 exchange): finds it, turns a typed config into its arguments,
forwards SIGINT/SIGTERM to it and returns its exit code."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from apexctl.console import safe
from apexctl.errors import UsageError
from apexctl.forge import ranges
from apexctl.forge.durations import run_seconds
from apexctl.forge.feedback import note

BINARY = "apex-venue"
DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


@dataclass(frozen=True)
class VenueOptions:
    """What `apexctl venue` forwards to the binary."""

    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    seed: int = 0
    dsg: Path | None = None
    speed: float = 1.0
    accounts: Path | None = None
    faults: Path | None = None
    fault_log: Path | None = None
    port: int = 0
    ready: Path | None = None
    #: As the command line spells it (`90`, `1.5s`, `10m`): the binary reads the same spelling.
    duration: str | None = None

    def validate(self) -> None:
        """Catches what is wrong before the binary starts (it checks again, naming the same field)."""
        if not self.symbols or any(not s or not s.isalnum() for s in self.symbols):
            raise UsageError(
                f"--symbols must be comma-separated symbols such as BTCUSDT, got {','.join(self.symbols)!r}"
            )
        ranges.VENUE_SPEED.check(self.speed, "--speed")
        ranges.PORT.check(self.port, "--port")
        if self.duration is not None:
            run_seconds(self.duration, "--duration")
        ranges.SEED.check(self.seed, "--seed")
        for name, path in (("--dsg", self.dsg), ("--accounts", self.accounts), ("--faults", self.faults)):
            if path is not None and not path.is_file():
                raise UsageError(f"{name}: {path} is not a file")
        if self.dsg is not None:  # strict here: the binary's JSON reader would let a repeated key's last value win
            from apexctl.forge.sim import load_dsg

            load_dsg(str(self.dsg))

    def arguments(self) -> list[str]:
        """The binary's command line (without the program)."""
        args = ["--symbols", ",".join(self.symbols), "--seed", str(self.seed), "--speed", repr(self.speed)]
        args += ["--port", str(self.port)]
        for name, value in (
            ("--dsg", self.dsg),
            ("--accounts", self.accounts),
            ("--faults", self.faults),
            ("--fault-log", self.fault_log),
            ("--ready", self.ready),
            ("--duration", self.duration),
        ):
            if value is not None:
                args += [name, str(value)]
        return args


def find_executable(name: str, variable: str) -> Path:
    """The Rust binary `name`: $`variable`, else beside this Python (the venv's bin, where `just setup` links it), else
    on PATH."""
    explicit = os.environ.get(variable)
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise UsageError(f"{variable}={explicit} is not an executable file")
        return path
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which(name)
    if found:
        return Path(found)
    raise UsageError(f"the {name} binary was not found beside {sys.executable} or on PATH; run `just setup`")


def launched_env() -> dict[str, str]:
    """The environment of a binary this process launches: its own, plus `_core.LAUNCHER_ENV` naming this process, so
    it stops when apexctl dies, even by SIGKILL (`apex_core::process::launcher_gone`)."""
    from apexctl import _core

    return {**os.environ, _core.LAUNCHER_ENV: str(os.getpid())}


def killed(name: str, code: int, where: str = "") -> int:
    """For a child that ended by a signal (Popen's negative status): one line naming it and the signal, and exit 1
    (a runtime failure), instead of the shell's 256 - signal with nothing said. Other statuses pass through."""
    if code >= 0:
        return code
    try:
        what = signal.Signals(-code).name
    except ValueError:
        what = f"signal {-code}"
    note(("apexctl: error: ", "bold red"), f"{name} was killed by {what}{where}")
    return 1


def find_binary() -> Path:
    """The `apex-venue` binary ($APEX_VENUE_BIN overrides)."""
    return find_executable(BINARY, "APEX_VENUE_BIN")


#: How the binary starts its error line; `run` reports it as apexctl's own one-line error.
BINARY_ERROR = f"{BINARY}: error: "


def run(options: VenueOptions) -> int:
    """Runs the venue in the foreground until it stops; SIGINT/SIGTERM reach it and it shuts down cleanly. The
    binary's stderr is relayed line by line (control characters escaped); its error line becomes apexctl's (exit 2
    for a bad input, as from any other command)."""
    options.validate()
    binary = find_binary()
    child = subprocess.Popen([str(binary), *options.arguments()], stderr=subprocess.PIPE, env=launched_env())
    errors: list[str] = []

    def relay() -> None:
        assert child.stderr is not None
        for raw in child.stderr:
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            if line.startswith(BINARY_ERROR):
                errors.append(line.removeprefix(BINARY_ERROR))
            else:
                sys.stderr.write(safe(line) + "\n")
                sys.stderr.flush()

    relaying = threading.Thread(target=relay, name="venue-stderr", daemon=True)
    relaying.start()

    def forward(signum: int, _frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        relaying.join(timeout=5)
    if errors and code == 2:
        raise UsageError(errors[-1])
    if errors:  # a failure of the venue itself (exit 1): the same one line, with the binary's status
        note(("apexctl: error: ", "bold red"), errors[-1])
    return killed(BINARY, code)
