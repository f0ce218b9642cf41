"""Benchmark: how long `apexctl` takes to start and answer (`--version`, `--help`, a command's `--help`), each a fresh
process as a shell or cron starts it, vs the same CLI with every command module imported before argv is parsed (what
every run paid before commands were loaded on demand). Best of --repeats wall times per command line."""

from __future__ import annotations

import os
import subprocess
import sys

from common import arguments, best_of

#: Runs the CLI as `python -m apexctl` does, after importing every command module (and so the whole Forge) first.
EAGER = (
    "from apexctl import cli\n"
    "for name in cli.COMMANDS:\n"
    "    cli.target(name)\n"
    "from apexctl.launch import main\n"
    "main()\n"
)

COMMAND_LINES = (["--version"], ["--help"], ["trade", "--help"], ["simulate", "--help"], ["fetch", "--help"])


def best_start(prefix: list[str], args: list[str], repeats: int) -> float:
    """Best wall time in seconds of `prefix + args` run to completion, output discarded."""
    env = {**os.environ, "COLUMNS": "120"}
    argv = [*prefix, *args]
    return best_of(
        lambda: subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        repeats,
    )


def main() -> None:
    parser = arguments(__doc__, seed=None, repeats=5)
    args = parser.parse_args()
    print(
        f"apexctl start-up: best of {args.repeats} fresh processes per command line, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"  {'command line':<24} {'on demand':>10} {'all loaded':>11} {'ratio':>7}")
    for line in COMMAND_LINES:
        lazy = best_start([sys.executable, "-m", "apexctl"], line, args.repeats)
        eager = best_start([sys.executable, "-c", EAGER], line, args.repeats)
        print(f"  {' '.join(['apexctl', *line]):<24} {lazy:9.2f}s {eager:10.2f}s {eager / lazy:6.1f}x")


if __name__ == "__main__":
    main()
