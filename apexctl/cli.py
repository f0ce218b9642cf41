"""The `apexctl` Typer app: registers one command per subcommand module and maps every outcome to one line and an
exit status (0 done, 2 a user mistake or an unusable input, 3 another run holds the outputs' lock (`Busy`), 130/143
interrupted by SIGINT/SIGTERM)."""

from __future__ import annotations

import errno
import functools
import os
from collections.abc import Sequence

import typer

try:
    from typer._click import exceptions as click_errors  # typer vendors click since 0.2x
except ImportError:  # pragma: no cover - older typer on top of click
    from click import exceptions as click_errors  # type: ignore[no-redef]

from apexctl import __version__, signals
from apexctl.commands import causal, chimera, evolve, export, features, fetch, judge, simulate, trade, train, venue
from apexctl.console import err, say, show_feedback
from apexctl.errors import ApexError, Busy, first_line

app = typer.Typer(
    name="apexctl",
    help="Evolve crypto trading strategies offline and run them live on Bybit. Stages read and write files "
    "(Parquet tables, JSON documents), so they compose in shells, cron jobs and the Justfile; '-' means stdin/stdout.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


app.command("fetch")(fetch.fetch)
app.command("features")(features.features)
app.command("causal")(causal.causal)
app.command("chimera")(chimera.chimera)
app.command("evolve")(evolve.evolve_command)
app.command("simulate")(simulate.simulate)
app.command("export")(export.export_command)
app.command("venue")(venue.venue)
app.command("trade")(trade.trade)
app.command("judge")(judge.judge)
app.add_typer(train.train_app, name="train")

#: Exit status of a run stopped by a user mistake or an unusable input (and of a usage error, as click has it).
EXIT_ERROR = 2
#: What typer turns a KeyboardInterrupt into.
EXIT_INTERRUPTED = 130


def _version(value: bool) -> None:
    if value:
        typer.echo(f"apexctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """apexctl: the Forge (offline) and the Nexus (live)."""
    show_feedback()


#: Longest message printed: an error quoting a whole input (a huge JSON node) is cut, not dumped.
MAX_MESSAGE = 2_000


def _error(message: str) -> int:
    if len(message) > MAX_MESSAGE:
        message = f"{message[:MAX_MESSAGE]}... ({len(message) - MAX_MESSAGE} more characters)"
    say(("apexctl: error: ", "bold red"), message)
    return EXIT_ERROR


def _usage(exc: click_errors.UsageError) -> str:
    """A click usage error as one line: the command, then its message without pydantic's "Value error, " prefix."""
    message = exc.format_message().replace("Value error, ", "")
    command = exc.ctx.command_path if exc.ctx is not None else "apexctl"
    name = command.removeprefix("apexctl").strip()
    return f"{name + ': ' if name else ''}{message} (see '{command} --help')"


@functools.cache
def _command() -> typer.core.TyperGroup:
    """The click command tree of the app, built once per process (typer builds it on every call otherwise)."""
    return typer.main.get_command(app)


def run(argv: Sequence[str]) -> int:
    """Runs the CLI on `argv` in this process and returns the exit status; every message is one line on stderr.

    Only a bug escapes as an exception (its traceback is what to report); APEX_DEBUG=1 shows the traceback of
    handled errors too.
    """
    debug = os.environ.get("APEX_DEBUG") == "1"
    try:
        status = _command().main(args=list(argv), prog_name="apexctl", standalone_mode=False)
    except click_errors.NoArgsIsHelpError:
        return EXIT_ERROR  # typer printed the help while making the exception
    except click_errors.UsageError as exc:
        return _error(_usage(exc))
    except typer.Abort:
        return _error("aborted")
    except Busy as exc:
        _error(str(exc))
        return Busy.exit_code
    except ApexError as exc:
        if debug:
            raise
        return _error(str(exc))
    except KeyboardInterrupt:
        status = EXIT_INTERRUPTED
    except SystemExit as exc:  # rich leaves this way when stdout is a closed pipe
        return exc.code if isinstance(exc.code, int) else 1
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            return 1  # the reader of our output went away (e.g. `| head`); nothing left to say
        if debug:
            raise
        # The file system refused (disk full, permissions changed during the run): name the file, one line.
        where = f"{exc.filename}: " if exc.filename else ""
        return _error(f"{where}{exc.strerror or first_line(exc)}")
    except Exception:
        if signals.received() is None:
            raise
        # A native call cut short by the signal fails in its own way (a half-converted value): what the user did was
        # interrupt the run, so that is what is reported.
        status = EXIT_INTERRUPTED
    if status == EXIT_INTERRUPTED:
        err.print("apexctl: interrupted")
        return signals.exit_code(EXIT_INTERRUPTED)
    return status if isinstance(status, int) else 0


def main() -> None:
    """Console-script entry point (kept for callers of `apexctl.cli:main`): see `apexctl.launch.main`."""
    from apexctl.launch import main as launch

    launch()
