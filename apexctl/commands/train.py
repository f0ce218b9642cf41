"""`apexctl train`: train the small neural models the live engine runs (one subcommand per model)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

train_app = typer.Typer(
    name="train",
    help="Train the small neural models the live engine runs; each writes a model.pt checkpoint for `apexctl export`.",
    no_args_is_help=True,
)


# --- apexctl train iel ---------------------------------------------------------------------------------------------


@train_app.command("iel")
def iel(
    output: Annotated[
        Path, typer.Option("-o", "--output", help="The policy checkpoint (model.pt); OUTPUT.report.json beside it.")
    ],
    dsg: Annotated[
        str | None, typer.Option("--dsg", help="DSG JSON document of the market (default: the built-in DSG).")
    ] = None,
    symbol: Annotated[str, typer.Option("--symbol", help="Instrument preset of the simulated market.")] = "BTCUSDT",
    episodes: Annotated[int, typer.Option("--episodes", help="Training episodes (simulated parent orders).")] = 2048,
    envs: Annotated[int, typer.Option("--envs", help="Environments stepped in parallel per PPO batch.")] = 64,
    eval_episodes: Annotated[
        int, typer.Option("--eval-episodes", help="Held-out episodes each policy is evaluated on.")
    ] = 256,
    side: Annotated[str, typer.Option("--side", help="Side of the parent order: buy or sell.")] = "buy",
    size: Annotated[int, typer.Option("--size", help="Parent order size in lots of the instrument.")] = 2000,
    horizon_s: Annotated[float, typer.Option("--horizon-s", help="Time allowed to complete the parent, s.")] = 30.0,
    interval_s: Annotated[float, typer.Option("--interval-s", help="Time between decisions, s.")] = 3.0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the same model.")] = 0,
) -> None:
    """Train the IEL execution policy (PPO in apex-sim) and compare it with always-aggressive/always-passive."""
    # Imported here, not at the top: torch takes seconds to import and every other apexctl command would pay for it.
    from rich.table import Table

    from apexctl.console import err, progress, wrote
    from apexctl.forge.sim import load_dsg

    dsg_text, _ = load_dsg(dsg)
    from apexctl.forge.iel import IelConfig, save, train

    config = IelConfig(
        symbol=symbol,
        dsg_json=dsg_text,
        side=side,
        size_lots=size,
        horizon_s=horizon_s,
        interval_s=interval_s,
        episodes=episodes,
        envs=envs,
        eval_episodes=eval_episodes,
        seed=seed,
    )
    config.validate()
    with progress() as bar:
        task = bar.add_task("PPO", total=config.episodes // config.envs)

        def advance(done: int, total: int, mean_is: float) -> None:
            bar.update(task, completed=done, description=f"PPO (batch IS {mean_is:5.2f} bps)")

        result = train(config, on_iteration=advance)
    if dsg is not None:
        from apexctl.forge.io import sha256_file

        result.card.training_data = {dsg: sha256_file(dsg)}
    report_path = save(result, output, command=shlex.join(["apexctl", *sys.argv[1:]]))
    table = Table(title=f"held-out implementation shortfall, {config.eval_episodes} episodes", show_header=True)
    for column in ("policy", "IS bps", "s.e.", "maker share"):
        table.add_column(column)
    for name, entry in result.report["policies"].items():
        table.add_row(name, f"{entry['mean_is_bps']:.3f}", f"{entry['se_bps']:.3f}", f"{entry['maker_fraction']:.0%}")
    err.print(table)
    paired = result.report["iel_minus_best_baseline"]
    err.print(
        f"iel − {result.report['best_baseline']}: {paired['mean_bps']:+.3f} bps (paired s.e. {paired['se_bps']:.3f})"
    )
    wrote(str(output), "the IEL policy")
    wrote(str(report_path), "the evaluation report")


# --- end apexctl train iel -----------------------------------------------------------------------------------------
