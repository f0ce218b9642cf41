"""`apexctl evolve`: evolve GP strategies on bar features; TTT fitness from the Rust backtester (+ simulator PnL)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from apexctl.commands import _options
from apexctl.console import err, progress, wrote
from apexctl.errors import UsageError
from apexctl.forge import outputs, ranges
from apexctl.forge.evolve import (
    HALL_SIZE,
    MAX_DEPTH,
    TOURNAMENT,
    TRAIN_FRACTION,
    EvolveConfig,
    evolve,
    load_checkpoint_config,
    write,
)

DEFAULT_GENS = 10


#: What `--resume` takes besides the run folder: the rest are the checkpoint's settings.
RESUME_OPTIONS = ("resume", "gens", "features", "ray")


def evolve_command(
    ctx: typer.Context,
    output: Annotated[
        Path,
        _options.output(
            "Output folder (new or empty, unless --resume): hall_of_fame/, generations.parquet, checkpoint/.",
        ),
    ],
    features: Annotated[
        str | None,
        typer.Option(
            "--features",
            help="Bar-grain 'features' table (apexctl features ... --grain 1m); '-' = stdin. Required unless "
            "--resume: it then defaults to the path the checkpoint recorded (made absolute when the run started), "
            "and when given must be the same table (its sha256 is checked against the checkpoint's), so a run that "
            "read stdin or whose table moved can continue.",
        ),
    ] = None,
    pop: Annotated[int, _options.ranged(ranges.POPULATION, "--pop", help="Population size.")] = 500,
    gens: Annotated[
        int | None,
        _options.ranged(
            ranges.GENERATIONS,
            "--gens",
            help=f"Generations after the initial population (default {DEFAULT_GENS}). With --resume: the total to "
            "reach, counting the generations already run, so more than those.",
        ),
    ] = None,
    seed: Annotated[
        int, _options.seed("Random seed; the same seed gives the same hall of fame.")
    ] = _options.SEED_DEFAULT,
    symbol: Annotated[str | None, _options.symbol("Symbol to evolve on when the table holds several.")] = None,
    train_fraction: Annotated[
        float,
        _options.ranged(
            TRAIN_FRACTION,
            "--train-fraction",
            help="Share of the bars (the earliest) used for fitness; the rest is the held-out span the hall of "
            "fame is re-scored on.",
        ),
    ] = 0.7,
    tournament: Annotated[int, _options.ranged(TOURNAMENT, "--tournament", help="Tournament size of selection.")] = 3,
    cx_prob: Annotated[
        float, _options.ranged(ranges.PROBABILITY, "--cx-prob", help="Probability of crossover per pair.")
    ] = 0.6,
    mut_prob: Annotated[
        float, _options.ranged(ranges.PROBABILITY, "--mut-prob", help="Probability of mutation per individual.")
    ] = 0.3,
    max_depth: Annotated[
        int,
        _options.ranged(
            MAX_DEPTH,
            "--max-depth",
            help="Tree height limit (a leaf is 0) of every tree variation makes (bloat control); trees also stay "
            "within the loader's 4096 nodes.",
        ),
    ] = 10,
    hall_of_fame: Annotated[
        int,
        _options.ranged(
            HALL_SIZE,
            "--hall-of-fame",
            help="Distinct behaviours kept in the hall of fame (trees with equal training-span signals count once, "
            "the smallest kept).",
        ),
    ] = 20,
    surrogate: Annotated[
        bool | None,
        typer.Option(
            "--surrogate/--no-surrogate",
            help="Surrogate-assisted evolution: a LightGBM model ranks each generation's new trees from cheap "
            "features (shape, primitive and feature counts, signal on a short training slice; with --dsg also the "
            "backtest metrics) and only the top --eval-fraction plus a random holdout get the expensive fitness; "
            "the rest keep the estimate, flagged, and never enter the hall of fame. Default: on with --dsg (the "
            "simulator fitness is the expensive one), off otherwise (a backtest costs about as much per tree as the "
            "surrogate's own features, so screening it saves little).",
        ),
    ] = None,
    eval_fraction: Annotated[
        float,
        _options.ranged(
            ranges.SHARE,
            "--eval-fraction",
            help="With --surrogate: share of the new trees (best predicted first) given the true evaluation.",
        ),
    ] = 0.02,
    surrogate_min_corr: Annotated[
        float,
        _options.ranged(
            ranges.CORRELATION,
            "--surrogate-min-corr",
            help="With --surrogate: when the model's Spearman correlation on the holdout falls under this, the "
            "evaluated share doubles (up to 1.0) each generation; it halves back to --eval-fraction once the "
            "correlation recovers.",
        ),
    ] = 0.3,
    seed_dna: Annotated[
        str | None,
        typer.Option(
            "--seed-dna",
            help="A GP JSON tree (apex.gp_tree), a hall_of_fame/ folder, or a recycling request (apex.recycle, "
            "written by the live engine when a slot dies; `apexctl judge --report DIR` copies the pending ones to "
            "DIR/recycle/): the initial population starts from these trees (a request's dna.gp_tree) and mutated "
            "copies of them (--seed-share of it), the rest random. A request is validated against its schema and "
            "recorded in hall_of_fame/index.json (seed_requests) and the tables' provenance.",
        ),
    ] = None,
    seed_share: Annotated[
        float,
        _options.ranged(
            ranges.SHARE, "--seed-share", help="Share of the initial population made from --seed-dna/--causal."
        ),
    ] = 0.25,
    causal: Annotated[
        str | None,
        typer.Option(
            "--causal",
            help="An apex.causal document (apexctl causal): GP terminals are restricted to its parents' features, "
            "their lags become window lengths, and lag(feature, lag) trees seed the initial population.",
        ),
    ] = None,
    dsg: Annotated[
        str | None,
        _options.dsg(
            "Dual fitness: an apex.dsg document (apexctl chimera), or 'default' for the built-in DSG. Each tree "
            "is also traded in the simulator populated by it (adversarial fitness: PnL, mean over --sim-seeds) next "
            "to its backtest TTT fitness (causal fitness); NSGA-II selects on both; terminals are restricted to "
            "features the simulator computes; OUT/pareto.parquet gets the Pareto front. --pop must be a multiple "
            "of 4.",
        ),
    ] = None,
    sim_seeds: Annotated[
        str,
        typer.Option(
            "--sim-seeds",
            help="With --dsg: comma-separated simulator seeds the PnL is averaged over, each a whole number from 0 to "
            "4294967295.",
        ),
    ] = "1,2",
    sim_hours: Annotated[float, _options.hours("With --dsg: simulated hours per seed.", "--sim-hours")] = 1.0,
    sim_symbol: Annotated[
        str | None,
        typer.Option(
            "--sim-symbol",
            help="With --dsg: simulator instrument preset (default: the evolved symbol when it has one, else BTCUSDT).",
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the run checkpointed in OUT/checkpoint/ (its settings and data) exactly as if it had "
            "not stopped. --gens raises the total (more than the generations already run); --features gives the "
            "same table at another path (needed when the run read stdin); --ray runs it on another cluster (same "
            "results). Any other option is refused: the run keeps the settings it started with.",
        ),
    ] = False,
    ray: Annotated[
        str | None,
        _options.ray("the tree batches", "Same hall of fame as without."),
    ] = None,
) -> None:
    """Evolve GP trading strategies (DEAP) with TTT fitness from the Rust backtester; writes the hall of fame."""
    inputs = [features, seed_dna, causal, None if dsg == "default" else dsg]
    outputs.check([outputs.OutFolder(output, keep=resume, hint="add --resume to continue its run")], inputs)
    if resume:
        ignored = _options.given(ctx, exclude=("output", *RESUME_OPTIONS))
        if ignored:
            raise UsageError(
                f"--resume continues {output} with the settings it started with: drop {', '.join(ignored)} (only "
                "--gens, --features and --ray may be given)"
            )
        config = load_checkpoint_config(output, gens, features)
        if ray is not None:
            config = dataclasses.replace(config, ray=ray)
        outputs.check([outputs.OutFolder(output, keep=True)], [config.features, config.seed_dna, config.causal])
    else:
        if features is None:
            raise UsageError("--features is required (unless --resume continues a checkpointed run)")
        _options.only_with(ctx, "--dsg", dsg is not None, ("--sim-seeds", "--sim-hours", "--sim-symbol"))
        config = _options.config_from(
            EvolveConfig,
            locals(),
            gens=DEFAULT_GENS if gens is None else gens,
            hall_size=hall_of_fame,
            surrogate=dsg is not None if surrogate is None else surrogate,
            sim_seeds=_seeds(sim_seeds),
        )
    with progress(transient=True) as bar:
        task = bar.add_task("generation 0", total=config.gens + 1)

        def on_generation(row: dict) -> None:
            note = f", surrogate rho {row['surrogate_spearman']:.2f}" if row["surrogate_spearman"] is not None else ""
            bar.update(
                task,
                completed=row["generation"] + 1,
                description=f"generation {row['generation']}: best {row['best']:.3f}, "
                f"{row['evaluations']:,} evaluated{note}",
            )

        # One run per folder at a time: its checkpoint is rewritten every generation.
        with outputs.lock(output):
            result = evolve(config, on_generation, resume=resume)
            write(result, config, locked=True)
    title = f"hall of fame: {result.market.symbol}, pop {config.pop}, {config.gens} generations, seed {config.seed}"
    table = Table(title=title)
    columns = ["rank", "size", "train fitness", "train PnL", "held-out fitness", "held-out PnL", "trades"]
    for column in columns + (["sim PnL"] if config.dual else []):
        table.add_column(column, justify="right")
    for entry in result.hall_of_fame[:10]:
        train, held = entry["train"], entry["held_out"]
        cells = [
            str(entry["rank"]),
            str(entry["size"]),
            f"{train['fitness']:.3f}",
            f"{train['pnl']:+.2f}",
            f"{held['fitness']:.3f}",
            f"{held['pnl']:+.2f}",
            f"{int(train['trades'])}/{int(held['trades'])}",
        ]
        if config.dual:
            cells.append(f"{entry['adversarial']['mean_pnl']:+.2f}")
        table.add_row(*cells)
    err.print(table)
    err.print(f"{result.evaluations:,} true evaluations (Rust) in {result.seconds:.1f} s")
    wrote(str(output / "hall_of_fame"), f"{len(result.hall_of_fame)} trees with train and held-out scores")
    wrote(str(output / "generations.parquet"), f"{result.generations.height} generation rows")
    if config.dual:
        wrote(str(output / "pareto.parquet"), f"{len(result.pareto)} trees on the (backtest, simulator) Pareto front")


def _seeds(text: str) -> tuple[int, ...]:
    seeds = tuple(ranges.SEED.check(part, "--sim-seeds") for part in text.split(",") if part.strip())
    if not seeds:
        raise UsageError("--sim-seeds: give at least one seed (comma-separated)")
    return seeds
