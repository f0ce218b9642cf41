"""`apexctl chimera`: fit the simulator's DSG to a target market with CMA-ES (method of simulated moments)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from apexctl.commands import _options
from apexctl.console import err, progress, wrote
from apexctl.forge import outputs, ranges
from apexctl.forge.cmaes import POPSIZE, SEEDS, SIGMA, ChimeraConfig, fit, report_paths, target_files, write_fit


def chimera(
    target: Annotated[
        str,
        typer.Option(
            "--target",
            help="Folder holding the target market's trades.parquet and book.parquet (bars.parquet optional), as "
            "written by `apexctl fetch -o DIR` (real Bybit data or simulated).",
        ),
    ],
    output: Annotated[
        Path,
        _options.output(
            "DSG JSON to write (apex.dsg). The fit report (NAME.report.json: each moment's target, simulated "
            "value, error and weight; each parameter's initial and final value and bounds; which parameters the "
            "moments identify) and the generation log (NAME.generations.parquet) are written next to it.",
        ),
    ],
    budget: Annotated[
        int,
        _options.ranged(
            ranges.BUDGET,
            "--budget",
            help="Candidate DSGs CMA-ES may evaluate (each simulated on --seeds seeds); at least one generation "
            "(--popsize). On top: the initial DSG on 6+ calibration seeds, CMA-ES's final mean, and --sensitivity.",
        ),
    ] = 200,
    init: Annotated[
        str | None,
        typer.Option(
            "--init",
            help="DSG JSON to start from (default: the built-in DSG); parameters not searched keep its values.",
        ),
    ] = None,
    seeds: Annotated[
        int,
        _options.ranged(
            SEEDS,
            "--seeds",
            help="Simulated markets per candidate; every candidate uses the same seeds (common random numbers) and "
            "its moments are their mean.",
        ),
    ] = 4,
    hours: Annotated[
        float, _options.hours("Simulated time per market in hours (short spans keep the fit fast).")
    ] = 0.25,
    seed: Annotated[
        int, _options.seed("Random seed of CMA-ES and of the simulations; same seed, same DSG.")
    ] = _options.SEED_DEFAULT,
    params: Annotated[
        str | None,
        typer.Option(
            "--params",
            help="Comma-separated DSG parameter names to search (e.g. noise.market_rate,market_maker.agents), at "
            "least 2 (CMA-ES needs a dimension of 2 or more); the others keep their --init value. Default: every "
            "parameter. See the report's 'identifiability' for which ones the moments pin down.",
        ),
    ] = None,
    symbol: Annotated[
        str | None,
        _options.symbol("Symbol of the target data to fit (default: the first in name order)."),
    ] = None,
    popsize: Annotated[
        int | None,
        _options.ranged(POPSIZE, "--popsize", help="CMA-ES population per generation (default 4 + 3 ln(dimension))."),
    ] = None,
    sigma: Annotated[
        float,
        _options.ranged(
            SIGMA, "--sigma", help="Initial CMA-ES step size in normalized coordinates (each bound range = 1)."
        ),
    ] = 0.3,
    sensitivity: Annotated[
        bool,
        typer.Option(
            "--sensitivity/--no-sensitivity",
            help="After the fit, move each searched parameter once and report whether the moments notice "
            "(one more candidate per parameter).",
        ),
    ] = True,
    ray: Annotated[
        str | None,
        _options.ray("the simulations", "Same results as without."),
    ] = None,
) -> None:
    """Infer the DSG: CMA-ES fits the simulator's agent populations to the target market's statistics."""
    inputs = [*target_files(target), init]
    outputs.check([outputs.OutFile(output)], inputs)  # first: the names of the others derive from it
    report_path, log_path = report_paths(output)
    outputs.check([outputs.OutFile(report_path), outputs.OutFile(log_path)], inputs)
    config = _options.config_from(ChimeraConfig, locals(), sigma0=sigma, params=_options.comma_list(params))
    with progress(transient=True) as bar:
        task = bar.add_task("starting", total=budget)

        def on_phase(text: str) -> None:
            bar.update(task, description=text)

        def on_generation(row: dict) -> None:
            bar.update(
                task,
                advance=row["evaluations"],
                description=f"generation {row['generation']}: best {row['best_so_far']:.3f} sigma {row['sigma']:.3f}",
            )

        result = fit(config, on_generation, on_phase)
    write_fit(result, output)
    table = Table(title=f"chimera fit of {result.symbol}: objective per moment (z = error / scale)")
    for column in ("moment", "target", "initial", "fitted", "z"):
        table.add_column(column, justify="right")
    for m in result.report["moments"]:
        if m["weight"]:
            cells = [m["target"], m["initial"], m["simulated"], m["z"]]
            table.add_row(m["name"], *("-" if v is None else f"{v:.3g}" for v in cells))
    err.print(table)
    objective = result.report["objective"]
    err.print(
        f"objective {objective['initial']:.3f} -> {objective['final']:.3f} after {result.evaluations} candidates "
        f"in {result.seconds:.1f} s"
    )
    absent = [m["name"] for m in result.report["moments"] if m["target"] is None]
    if absent:
        err.print(f"not computable on the target, left out of the objective: {', '.join(absent)}")
    unidentified = [row["param"] for row in result.report["identifiability"] if not row["identified"]]
    if unidentified:
        err.print(f"not identified by the moments: {', '.join(unidentified)}")
    wrote(str(output), "the fitted DSG")
    wrote(str(report_path), "the fit report")
    wrote(str(log_path), f"{result.generations.height} generation rows")
