"""The `apexctl` Typer app: one command per subcommand module, each imported only when it runs, and every outcome
mapped to one line and an exit status (0 done, 1 a remote service unreachable or failing (`NetworkError`: retry later),
2 a user mistake or an unusable input, 3 another run holds the outputs' lock (`Busy`), 130/143 interrupted by
SIGINT/SIGTERM)."""

from __future__ import annotations

import ast
import errno
import functools
import importlib
import importlib.util
import inspect
import os
import traceback
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import typer
import typer.core
import typer.main

try:
    from typer._click import exceptions as click_errors  # typer vendors click since 0.2x
except ImportError:  # pragma: no cover - older typer on top of click
    from click import exceptions as click_errors  # type: ignore[no-redef]

from apexctl import __version__, signals
from apexctl.console import err, say, show_feedback
from apexctl.errors import ApexError, first_line


def _flags_show_no_value() -> None:
    """Typer 0.2x labels an on/off flag `<bool>` in --help (`--force <bool>`, `--help <bool>`), as if it took a
    value, which it refuses; a flag is shown bare, as click shows it."""
    shown = getattr(typer.core.TyperOption, "display_type_rich", None)
    if shown is None:  # pragma: no cover - a typer without per-option type labels
        return

    def display_type_rich(self: typer.core.TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    typer.core.TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_show_no_value()

#: Each subcommand, in the order `apexctl --help` lists them: its module in `apexctl.commands` and the Typer callback
#: (or, for a group of commands, the Typer app) it defines there. Together the modules import polars, DEAP, tigramite
#: and the rest of the Forge, seconds of start-up that `apexctl --help`, `--version` and every single command would
#: otherwise pay for all of them.
COMMANDS: dict[str, tuple[str, str]] = {
    "fetch": ("fetch", "fetch"),
    "features": ("features", "features"),
    "causal": ("causal", "causal"),
    "chimera": ("chimera", "chimera"),
    "evolve": ("evolve", "evolve_command"),
    "simulate": ("simulate", "simulate"),
    "export": ("export", "export_command"),
    "venue": ("venue", "venue"),
    "trade": ("trade", "trade"),
    "judge": ("judge", "judge"),
    "train": ("train", "train_app"),
}

#: Settings every level of the command tree shares.
TYPER_SETTINGS: dict[str, Any] = {
    "add_completion": False,
    "pretty_exceptions_enable": False,
    "rich_markup_mode": "rich",
}


def target(name: str) -> Callable[..., Any] | typer.Typer:
    """What subcommand `name` runs: its callback, or its Typer app (importing its module)."""
    module, attribute = COMMANDS[name]
    return getattr(importlib.import_module(f"apexctl.commands.{module}"), attribute)


def _no_options() -> None:
    """The holder group's own callback: makes typer build a group, so the command inside keeps its name."""


def register(into: typer.Typer, name: str) -> None:
    """Registers subcommand `name` on the Typer app `into` (importing its module)."""
    command = target(name)
    if isinstance(command, typer.Typer):
        into.add_typer(command, name=name)
    else:
        into.command(name, short_help=summary(inspect.getdoc(command)))(command)


def summary(help_text: str | None) -> str | None:
    """The first paragraph of a help text on one line: the root's command listing prints a command's short help
    as written (typer's rich markup mode keeps its line breaks), so a docstring wrapped in the source would print
    ragged."""
    if help_text is None:
        return None
    return " ".join(inspect.cleandoc(help_text).split("\n\n")[0].split())


def _build(name: str) -> typer.core.TyperCommand | typer.core.TyperGroup:
    """Subcommand `name` as click runs it, built as typer would build it inside the root app."""
    holder = typer.Typer(**TYPER_SETTINGS)
    holder.callback()(_no_options)
    register(holder, name)
    group = typer.main.get_command(holder)
    assert isinstance(group, typer.core.TyperGroup)
    return group.commands[name]  # type: ignore[return-value]


def _help_text(name: str) -> str | None:
    """The help of subcommand `name` as typer takes it (the callback's docstring, or the `help=` of its Typer app),
    read from its module's source without importing it; None where the source does not say it plainly."""
    module, attribute = COMMANDS[name]
    spec = importlib.util.find_spec(f"apexctl.commands.{module}")
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    for node in ast.parse(Path(spec.origin).read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef) and node.name == attribute:
            return ast.get_docstring(node)
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == attribute for t in node.targets)
            and isinstance(node.value, ast.Call)
        ):
            for keyword in node.value.keywords:
                if keyword.arg == "help" and isinstance(keyword.value, ast.Constant):
                    return str(keyword.value.value)
    return None


class _Commands(MutableMapping[str, Any]):
    """The subcommands by name (what typer's group reads), each built on first use."""

    def __init__(self) -> None:
        self._built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in COMMANDS:
            raise KeyError(name)
        if name not in self._built:
            self._built[name] = _build(name)
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS)

    def __setitem__(self, name: str, command: Any) -> None:
        raise TypeError(f"the subcommands are the ones apexctl.cli.COMMANDS names, not {name!r}")

    def __delitem__(self, name: str) -> None:
        raise TypeError(f"the subcommands are the ones apexctl.cli.COMMANDS names, not {name!r}")


class _LazyGroup(typer.core.TyperGroup):
    """The root group: builds a subcommand when it runs or shows its own help; the root's help lists every
    subcommand from its help text alone, so no command module is imported to print it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = _Commands()
        self._listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if self._listing and cmd_name in COMMANDS and (text := _help_text(cmd_name)) is not None:
            return typer.core.TyperCommand(cmd_name, help=text, short_help=summary(text))
        return self.commands.get(cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="apexctl",
    cls=_LazyGroup,
    help="Evolve crypto trading strategies offline and run them live on Bybit. Stages read and write files "
    "(Parquet tables, JSON documents), so they compose in shells, cron jobs and the Justfile; '-' means stdin/stdout.",
    no_args_is_help=True,
    **TYPER_SETTINGS,
)

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


def _named_command(argv: Sequence[str]) -> str:
    """The command `argv` names (`apexctl export`, `apexctl train maml`), for an error raised before click knew it."""
    words = ["apexctl"]
    if argv and argv[0] in COMMANDS:
        words.append(argv[0])
        if isinstance(target(argv[0]), typer.Typer) and len(argv) > 1 and not argv[1].startswith("-"):
            words.append(argv[1])
    return " ".join(words)


def _usage(exc: click_errors.UsageError, argv: Sequence[str]) -> str:
    """A click usage error as one line: the command, then its message without pydantic's "Value error, " prefix."""
    message = exc.format_message().replace("Value error, ", "")
    # The option parser raises some errors (`--force=true`: a flag given a value) without a context.
    command = exc.ctx.command_path if exc.ctx is not None else _named_command(argv)
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
        return _error(_usage(exc, argv))
    except typer.Abort:
        return _error("aborted")
    except ApexError as exc:
        if debug:
            traceback.print_exc()  # then the same line and status as without APEX_DEBUG
        _error(str(exc))
        # 2 unless the class says otherwise: Busy 3, NetworkError 1 (see apexctl.errors).
        return getattr(exc, "exit_code", EXIT_ERROR)
    except KeyboardInterrupt:
        status = EXIT_INTERRUPTED
    except SystemExit as exc:  # rich leaves this way when stdout is a closed pipe
        return exc.code if isinstance(exc.code, int) else 1
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            return 1  # the reader of our output went away (e.g. `| head`); nothing left to say
        if debug:
            traceback.print_exc()
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
