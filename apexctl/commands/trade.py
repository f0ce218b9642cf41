"""`apexctl trade`: run the live engine (apex-nexus) on the local venue, Bybit's testnet or mainnet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from apexctl.commands import _options
from apexctl.console import wrote
from apexctl.forge.trade import TradeOptions, run


def trade(
    config: Annotated[Path, _options.path_option("--config", help="The engine's TOML config (see examples/nexus/).")],
    venue: Annotated[
        str | None, typer.Option("--venue", help="Override the config's venue: local, testnet or mainnet.")
    ] = None,
    venue_ready: Annotated[
        Path | None,
        _options.path_option(
            "--venue-ready", help="Ready file of a running local venue (else a local venue is launched)."
        ),
    ] = None,
    out: Annotated[
        Path,
        _options.path_option("--out", help="Run folder: ledger.sqlite, nexus.pid, status.json, logs. Reuse to resume."),
    ] = Path("runs/trade"),
    duration: Annotated[
        str | None,
        typer.Option(
            "--duration",
            help="Stop after this long: seconds, or a number with a unit ms, s, m, h or d (90, 1.5s, 10m), at most "
            "7d (default: until SIGINT/SIGTERM).",
        ),
    ] = None,
    i_understand_mainnet: Annotated[
        bool, typer.Option("--i-understand-mainnet", help="Required for --venue mainnet: orders trade real money.")
    ] = False,
) -> None:
    """Trade the config's slots (one exported bundle each) live: per-slot decisions by the shared rule, orders tagged
    by orderLinkId, every intent, fill, position and equity in OUT/ledger.sqlite; restart with the same --out to
    resume and reconcile. Exit codes: 0 stopped as asked, 1 runtime failure, 2 bad input (nothing was connected),
    3 another engine holds OUT."""
    options = _options.config_from(TradeOptions, locals(), confirm_mainnet=i_understand_mainnet)
    code = run(options)
    if code != 0:
        raise typer.Exit(code)
    wrote(str(options.out / "ledger.sqlite"), "the run's ledger (decisions, orders, fills, equity)")
