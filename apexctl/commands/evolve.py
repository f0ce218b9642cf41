"""`apexctl evolve`: evolve GP strategies on bar features; fitness (TTT) from the Rust backtester."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from apexctl.console import err, progress, wrote
from apexctl.forge.evolve import EvolveConfig, evolve, write


def evolve_command(
    features: Annotated[
        str,
        typer.Option("--features", help="Bar-grain 'features' table (apexctl features ... --grain 1m); '-' = stdin."),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "-o", "--output", help="Output folder (must not exist or be empty): hall_of_fame/, generations.parquet."
        ),
    ],
    pop: Annotated[int, typer.Option("--pop", help="Population size.")] = 500,
    gens: Annotated[int, typer.Option("--gens", help="Generations after the initial population.")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the same hall of fame.")] = 1,
    symbol: Annotated[
        str | None, typer.Option("--symbol", help="Symbol to evolve on when the table holds several.")
    ] = None,
    train_fraction: Annotated[
        float,
        typer.Option(
            "--train-fraction",
            help="Share of the bars (the earliest) used for fitness; the rest is the held-out span the hall of "
            "fame is re-scored on.",
        ),
    ] = 0.7,
    tournament: Annotated[int, typer.Option("--tournament", help="Tournament size of selection.")] = 3,
    cx_prob: Annotated[float, typer.Option("--cx-prob", help="Probability of crossover per pair.")] = 0.6,
    mut_prob: Annotated[float, typer.Option("--mut-prob", help="Probability of mutation per individual.")] = 0.3,
    max_depth: Annotated[
        int, typer.Option("--max-depth", help="Tree height limit after variation (bloat control).")
    ] = 10,
    hall_of_fame: Annotated[int, typer.Option("--hall-of-fame", help="Trees kept in the hall of fame.")] = 20,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="Spread the tree batches over a Ray cluster: an address (ray://host:10001) or 'auto' (join the "
            "local cluster, or start one). Same hall of fame as without.",
        ),
    ] = None,
) -> None:
    """Evolve GP trading strategies (DEAP) with TTT fitness from the Rust backtester; writes the hall of fame."""
    config = EvolveConfig(
        features=features,
        output=output,
        pop=pop,
        gens=gens,
        seed=seed,
        symbol=symbol,
        train_fraction=train_fraction,
        tournament=tournament,
        cx_prob=cx_prob,
        mut_prob=mut_prob,
        max_depth=max_depth,
        hall_size=hall_of_fame,
        ray=ray,
    )
    with progress(transient=True) as bar:
        task = bar.add_task("generation 0", total=gens + 1)

        def on_generation(row: dict) -> None:
            bar.update(task, advance=1, description=f"generation {row['generation']}: best {row['best']:.3f}")

        result = evolve(config, on_generation)
    write(result, config)
    table = Table(title=f"hall of fame: {result.market.symbol}, pop {pop}, {gens} generations, seed {seed}")
    for column in ("rank", "size", "train fitness", "train PnL", "held-out fitness", "held-out PnL", "trades"):
        table.add_column(column, justify="right")
    for entry in result.hall_of_fame[:10]:
        train, held = entry["train"], entry["held_out"]
        table.add_row(
            str(entry["rank"]),
            str(entry["size"]),
            f"{train['fitness']:.3f}",
            f"{train['pnl']:+.2f}",
            f"{held['fitness']:.3f}",
            f"{held['pnl']:+.2f}",
            f"{int(train['trades'])}/{int(held['trades'])}",
        )
    err.print(table)
    err.print(f"{result.evaluations:,} trees evaluated in Rust in {result.seconds:.1f} s")
    wrote(str(output / "hall_of_fame"), f"{len(result.hall_of_fame)} trees with train and held-out scores")
    wrote(str(output / "generations.parquet"), f"{gens + 1} generation rows")
