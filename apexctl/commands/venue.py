"""`apexctl venue`: run the local Bybit-V5-compatible exchange (the simulated market on loopback)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from apexctl.commands import _options
from apexctl.forge import outputs, ranges
from apexctl.forge.venue import DEFAULT_SYMBOLS, VenueOptions, run


def venue(
    symbols: Annotated[
        str, typer.Option("--symbols", help="Comma-separated symbols to trade (instrument presets).")
    ] = ",".join(DEFAULT_SYMBOLS),
    seed: Annotated[
        int, _options.seed("Market seed; the same seed, speed and external orders replay the same market.")
    ] = _options.SEED_DEFAULT,
    dsg: Annotated[
        Path | None, _options.dsg("DSG JSON of the agent populations (default: the built-in DSG).", text=False)
    ] = None,
    speed: Annotated[
        float, _options.ranged(ranges.VENUE_SPEED, "--speed", help="Simulated seconds per wall-clock second.")
    ] = 1.0,
    accounts: Annotated[
        Path | None,
        _options.path_option(
            "--accounts",
            help='Accounts file: JSON array of {"name", "api_key", "api_secret", "balance"?, "latency_ms"?}: '
            'balance in USDT ("2500.5" or 2500.5, default 10000), latency_ms the order-entry delay in simulated ms '
            "(0 to 10000, default 5). Without it one account is generated and printed.",
        ),
    ] = None,
    faults: Annotated[
        Path | None,
        _options.path_option(
            "--faults",
            help="Fault plan (TOML): drops, u skips, duplicates, disconnects, restarts, "
            "latency spikes, rejects, 10006 bursts; see examples/venue/faults.toml.",
        ),
    ] = None,
    fault_log: Annotated[
        Path | None,
        _options.path_option("--fault-log", help="Log each injected fault here (JSON lines with its time)."),
    ] = None,
    port: Annotated[
        int, _options.ranged(ranges.PORT, "--port", help="Loopback port for REST and both WebSockets; 0 picks one.")
    ] = 0,
    ready: Annotated[
        Path | None,
        _options.path_option(
            "--ready",
            help='Write {"rest", "ws_public", "ws_private", "accounts": [{"name", "api_key", "api_secret"}]} here '
            "once listening (atomically, owner-only); removed when the venue stops.",
        ),
    ] = None,
    duration: Annotated[
        str | None,
        typer.Option(
            "--duration",
            help="Stop after this long: seconds, or a number with a unit ms, s, m, h or d (90, 1.5s, 10m); default: "
            "until SIGINT/SIGTERM.",
        ),
    ] = None,
) -> None:
    """Serve the simulated market over Bybit's V5 protocol on 127.0.0.1: REST (market, orders, positions, executions,
    wallet), public WS /v5/public/linear (orderbook.1/50/200/1000, publicTrade, tickers, kline) and private WS
    /v5/private (order, execution, position, wallet). Point any Bybit client (pybit, the Nexus) at its URLs."""
    inputs = [dsg, accounts, faults]
    outputs.check([outputs.OutFile(ready)] if ready is not None else [], inputs, option="--ready")
    outputs.check([outputs.OutFile(fault_log)] if fault_log is not None else [], inputs, option="--fault-log")
    for path in (ready, fault_log):
        if path is not None:  # as for every output, its folders are created (the binary only writes the file)
            path.parent.mkdir(parents=True, exist_ok=True)
    options = _options.config_from(VenueOptions, locals(), symbols=_options.comma_list(symbols) or ())
    code = run(options)
    if code != 0:
        raise typer.Exit(code)
