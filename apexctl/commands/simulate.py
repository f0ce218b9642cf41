"""`apexctl simulate`: trade one strategy inside the simulated market; write fills, equity and a summary."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from apexctl.commands import _options
from apexctl.console import err, say, wrote
from apexctl.forge import outputs, ranges
from apexctl.forge.sim import (
    INSTRUMENTS,
    STRATEGIES,
    StrategySim,
    check_symbol,
    simulate_strategy,
    with_tree_bars,
    write_simulation,
)


def simulate(
    ctx: typer.Context,
    output: Annotated[
        Path,
        _options.output(
            "Output folder (new or empty, or --force): fills.parquet, equity.parquet, summary.json, published "
            "together when all are written.",
        ),
    ],
    strategy: Annotated[
        str,
        typer.Option(
            "--strategy",
            help=f"Strategy to trade: one of {', '.join(STRATEGIES)} (FAST/SLOW are bar counts of the two means).",
        ),
    ] = "ma_crossover",
    dsg: Annotated[
        str | None,
        _options.dsg("DSG JSON document of the market's populations (default: the built-in DSG)."),
    ] = None,
    symbol: Annotated[str, _options.symbol(f"Instrument preset: {', '.join(INSTRUMENTS)}.")] = "BTCUSDT",
    seed: Annotated[
        int, _options.seed("Random seed; the same seed and DSG give identical results.")
    ] = _options.SEED_DEFAULT,
    hours: Annotated[float, _options.hours("Simulated time in hours.")] = 1.0,
    capital: Annotated[
        float, _options.ranged(ranges.CAPITAL, "--capital", help="Starting capital of the strategy, USDT.")
    ] = 200.0,
    tree: Annotated[
        str | None,
        typer.Option(
            "--tree",
            help="Trade a GP tree (apex.gp_tree JSON, e.g. evolve's hall_of_fame/001.json) instead of --strategy: "
            "the simulator computes its bar features as it streams (the features `evolve --dsg` trees use), on the "
            "bars and with the options the hall of fame's index.json records for it (given options win, with a "
            "note).",
        ),
    ] = None,
    rv_bars: Annotated[
        int,
        _options.rv_bars("With --tree: rv window in bars, as the tree's features table used."),
    ] = ranges.FEATURE_DEFAULTS["rv_bars"],
    vmd_modes: Annotated[
        int,
        _options.vmd_modes("With --tree: VMD modes, as the tree's features table used."),
    ] = ranges.FEATURE_DEFAULTS["vmd_modes"],
    vmd_window: Annotated[
        int,
        _options.vmd_window(
            "With --tree: VMD window in bars, as the tree's features table used.",
        ),
    ] = ranges.FEATURE_DEFAULTS["vmd_window"],
    force: Annotated[bool, _options.force()] = False,
) -> None:
    """Trade a strategy in the agent-based market (1-minute decisions, a tree's on its bars; Bybit fees, latency) and
    report its PnL."""
    outputs.check([outputs.OutFolder(output, replace=force)], [dsg, tree])
    _options.only_with(ctx, "--tree", tree is not None, ("--rv-bars", "--vmd-modes", "--vmd-window"))
    if tree is not None and "--strategy" in _options.given(ctx):
        say(("note:", "yellow"), " --strategy is ignored: --tree trades the tree instead")
    symbol = check_symbol(symbol)
    config = _options.config_from(StrategySim, locals(), dsg_path=dsg)
    given = {option.removeprefix("--").replace("-", "_") for option in _options.given(ctx)}
    config, notes = with_tree_bars(config, given)
    for line in notes:
        say(("note:", "yellow"), f" {line}")
    frames, summary, inputs = simulate_strategy(config)
    fills_path, equity_path, summary_path = write_simulation(
        config, frames, summary, output, inputs=inputs, force=force
    )
    table = Table(title=f"{summary['strategy']} on {symbol}, {hours:g} h, seed {seed}", show_header=False)
    ttt = summary["time_to_target_s"]
    for name, value in (
        ("PnL", f"{summary['pnl']:+.4f} USDT ({summary['return']:+.2%})"),
        ("fees", f"{summary['fees']:.4f} USDT"),
        ("max drawdown", f"{summary['max_drawdown']:.2%}"),
        ("time to 2x", "not reached" if ttt is None or not math.isfinite(ttt) else f"{ttt / 60:.1f} min"),
        ("ruined", "yes" if summary["ruined"] else "no"),
        ("fills", f"{summary['fills']:,}"),
        ("market", f"{summary['market']['trades']:,} trades, {summary['market']['events']:,} events"),
    ):
        table.add_row(name, value)
    err.print(table)
    wrote(str(fills_path), f"{frames['fills'].height:,} fills")
    wrote(str(equity_path), f"{frames['equity'].height:,} equity points")
    wrote(str(summary_path), "the summary")
