"""Typer options several commands share, defined once: each parses its value through a range of
`apexctl.forge.ranges` (so NaN, infinities, huge numbers and wrong types stop at parse time with one line) and says
that range in its help."""

from __future__ import annotations

import dataclasses
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import typer

from apexctl.console import say
from apexctl.forge import ranges
from apexctl.forge.ranges import FloatRange, IntRange

Config = TypeVar("Config")


def config_from(cls: type[Config], options: Mapping[str, Any], **computed: Any) -> Config:
    """The config dataclass `cls` filled from a command's options of the same names (pass `locals()`), with
    `computed` (renamed or parsed values) on top: the command's signature stays the one list of its options."""
    names = {field.name for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    if stray := set(computed) - names:
        raise TypeError(f"{cls.__name__} has no fields {sorted(stray)}")
    return cls(**{name: options[name] for name in names if name in options} | computed)


def command_line() -> str:
    """This run's command line, quoted as a shell takes it: what the reports record as the command that made them."""
    return shlex.join(["apexctl", *sys.argv[1:]])


def comma_list(text: str | None) -> tuple[str, ...] | None:
    """The items of a comma-separated option, blanks dropped; None when the option is not given."""
    if not text:
        return None
    return tuple(item.strip() for item in text.split(",") if item.strip())


def ranged(kind: IntRange | FloatRange, *decls: str, help: str) -> Any:
    """A Typer option whose value must lie in `kind` (its range is appended to the help)."""
    return typer.Option(*decls, parser=kind.parse, help=f"{help} Accepts {kind.describe()}.")


def seed(help: str = "Random seed; the same seed gives the same result.", *decls: str) -> Any:
    """Every command's seed: 0 to 2^32-1."""
    return ranged(ranges.SEED, *(decls or ("--seed",)), help=help)


def hours(help: str, *decls: str) -> Any:
    """Simulated hours of one market: (0, 168]."""
    return ranged(ranges.HOURS, *(decls or ("--hours",)), help=help)


def force(help: str = "Replace a non-empty output folder (all at once, when the new one is complete).") -> Any:
    """--force: the one way to replace a non-empty output folder."""
    return typer.Option("--force", help=help)


#: Every command's default --seed.
SEED_DEFAULT = 0


def path_text(text: str | Path) -> str:
    """Parser of a path option kept as text (where '-' means stdout): an empty value is refused by name, since the
    checks after it would see the current folder (`Path("")` is `.`) and report that instead."""
    if str(text) == "":
        raise typer.BadParameter("the value is empty: give a file or folder name")
    return str(text)


def path(text: str | Path) -> Path:
    """Parser of every `Path` option and argument: `path_text`'s check, then the path."""
    return Path(path_text(text))


def path_option(*decls: str, help: str, text: bool = False, **options: Any) -> Any:
    """An option naming a file or folder: a `Path`, or with `text` the value as given (where '-' is stdout), never
    empty."""
    if text:
        return typer.Option(*decls, parser=path_text, help=help, **options)
    return typer.Option(*decls, parser=path, metavar="<path>", help=help, **options)


def output(help: str, *, text: bool = False) -> Any:
    """-o/--output: where a command writes (checked by `forge.outputs` before any work starts)."""
    return path_option("-o", "--output", help=help, text=text)


def ray(work: str, same: str) -> Any:
    """--ray: spread `work` over a Ray cluster; `same` says what stays identical without it."""
    return typer.Option(
        "--ray",
        help=f"Spread {work} over a Ray cluster: an address (ray://host:10001) or 'auto' (join the local cluster, or "
        f"start one). {same}",
    )


def symbol(help: str) -> Any:
    """--symbol: which instrument (its meaning per command is in `help`)."""
    return typer.Option("--symbol", help=help)


def dsg(
    help: str = "DSG JSON document of the market's agent populations (default: the built-in DSG).", *, text: bool = True
) -> Any:
    """--dsg: the simulated market's populations (apex.dsg), as text or (`text=False`) a `Path`."""
    return path_option("--dsg", help=help, text=text)


def rv_bars(help: str) -> Any:
    """--rv-bars: the realized-volatility window of the bar features, in bars."""
    return ranged(ranges.RV_BARS, "--rv-bars", help=help)


def vmd_modes(help: str) -> Any:
    """--vmd-modes: VMD modes of the bar features (0 = none)."""
    return ranged(ranges.VMD_MODES, "--vmd-modes", help=help)


def vmd_window(help: str) -> Any:
    """--vmd-window: the VMD window of the bar features, in bars."""
    return ranged(ranges.VMD_WINDOW, "--vmd-window", help=help)


def given(ctx: typer.Context, exclude: tuple[str, ...] = ()) -> list[str]:
    """The options of this command given on the command line (not defaulted), as spelled in --help (`--pop`),
    except the parameters named in `exclude`."""
    # Compared by name: typer carries its own copy of click, whose enum is not `click`'s.
    return [
        max(param.opts, key=len)
        for param in ctx.command.params
        if param.name not in exclude
        and getattr(ctx.get_parameter_source(param.name or ""), "name", None) == "COMMANDLINE"
    ]


def only_with(ctx: typer.Context, needed: str, present: bool, dependents: tuple[str, ...]) -> None:
    """A note on stderr when options that only act with `needed` (their help says "With NEEDED:") were given
    without it: they are ignored, and the user is told so rather than left to wonder."""
    ignored = [option for option in given(ctx) if option in dependents] if not present else []
    if ignored:
        say(("note:", "yellow"), f" {', '.join(ignored)}: only used with {needed}, which is not given; ignored")
