"""`apexctl train`: the group of neural-model trainers (`maml`, and `iel` beside it), each a thin Typer function.

torch is imported inside each command, once its input is checked, so the rest of the CLI starts without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from apexctl.commands import _options
from apexctl.console import err, progress, wrote
from apexctl.forge import maml_data, outputs, ranges
from apexctl.forge.maml_data import MamlConfig, prepare

train_app = typer.Typer(
    help="Train the small neural models the live engine runs (checkpoints for `apexctl export`).",
    no_args_is_help=True,
)


@train_app.command("maml")
def maml(
    features: Annotated[
        str,
        typer.Option("--features", help="Bar-grain 'features' table (apexctl features ... --grain 1m); '-' = stdin."),
    ],
    output: Annotated[
        str,
        _options.output("Output checkpoint (model.pt); the report goes beside it (model.report.json).", text=True),
    ],
    arch: Annotated[
        str, typer.Option("--arch", help="mlp (over the current feature row) or gru (over a window of rows).")
    ] = "mlp",
    window: Annotated[
        int | None,
        _options.ranged(ranges.WINDOW, "--window", help="Rows per GRU input (default 16); the MLP always reads 1 row."),
    ] = None,
    hidden: Annotated[
        str,
        typer.Option(
            "--hidden", help="Hidden widths, one layer per entry (e.g. 32,32); GRU layers must share one width."
        ),
    ] = "32,32",
    horizon: Annotated[
        int,
        _options.ranged(
            ranges.WINDOW, "--horizon", help="Bars ahead of the predicted return log(close[t+h]/close[t])."
        ),
    ] = 5,
    task_bars: Annotated[
        int,
        _options.ranged(
            maml_data.TASK_BARS, "--task-bars", help="Consecutive bars per task (one symbol, one time window)."
        ),
    ] = 60,
    support: Annotated[
        float,
        _options.ranged(ranges.OPEN_SHARE, "--support", help="Share of a task's bars (the first) in its support set."),
    ] = 0.5,
    holdout: Annotated[
        float,
        _options.ranged(
            ranges.OPEN_SHARE, "--holdout", help="Share of each symbol's tasks (the latest) held out for evaluation."
        ),
    ] = 0.25,
    tasks_per_batch: Annotated[
        int, _options.ranged(maml_data.TASKS_PER_BATCH, "--tasks-per-batch", help="Tasks per meta-step.")
    ] = 8,
    inner_steps: Annotated[
        int,
        _options.ranged(
            maml_data.INNER_STEPS,
            "--inner-steps",
            help="k: SGD steps on a task's support set (training and evaluation).",
        ),
    ] = 3,
    inner_lr: Annotated[
        float, _options.ranged(ranges.LEARNING_RATE, "--inner-lr", help="Learning rate of the inner SGD steps.")
    ] = 0.1,
    meta_lr: Annotated[
        float,
        _options.ranged(
            ranges.LEARNING_RATE, "--meta-lr", help="Adam learning rate of the outer loop (and of the baseline)."
        ),
    ] = 1e-3,
    steps: Annotated[
        int,
        _options.ranged(maml_data.STEPS, "--steps", help="Meta-steps (the baseline gets the same number)."),
    ] = 300,
    order: Annotated[
        int,
        _options.ranged(
            maml_data.ORDER,
            "--order",
            help="2 = differentiate through the inner steps; 1 = first-order MAML (cheaper).",
        ),
    ] = 2,
    size_weight: Annotated[
        float,
        _options.ranged(
            maml_data.SIZE_WEIGHT,
            "--size-weight",
            help="Weight of the size (Huber) loss next to the sign (BCE) loss.",
        ),
    ] = 1.0,
    inputs: Annotated[
        str | None,
        typer.Option(
            "--inputs",
            help="Comma-separated input columns (default: every numeric column but ts and price levels: "
            "open/high/low/close, close_<h>, vmd_<k>).",
        ),
    ] = None,
    seed: Annotated[int, _options.seed("Seed of the initial weights and the task batches.")] = _options.SEED_DEFAULT,
    threads: Annotated[
        int,
        _options.ranged(
            ranges.WORKERS, "--threads", help="torch CPU threads (results are reproducible for a given count)."
        ),
    ] = 1,
) -> None:
    """Meta-train a sign/size return model with MAML over (symbol, time window) tasks; compare with a baseline.

    Writes the meta-trained network (model.pt, for `apexctl export`) and its report (model.report.json).
    The report gives the held-out loss after 0..k adaptation steps, meta-trained vs trained on the pooled tasks.
    """
    widths = tuple(maml_data.WIDTH.check(w, "--hidden") for w in hidden.split(",") if w.strip())
    config = _options.config_from(
        MamlConfig,
        locals(),
        hidden=widths,
        window=window if window is not None else (16 if arch == "gru" else 1),
        support_fraction=support,
        inputs=_options.comma_list(inputs),
    )
    if output != "-":
        outputs.check([outputs.OutFile(output)], [features])  # first: the report's name derives from it
        outputs.check([outputs.OutFile(outputs.report_beside(output))], [features])
    prepared = prepare(features, output, config)
    from apexctl.forge.maml import train  # torch: only once the input is known to be usable

    with progress(transient=True) as bar:
        task = bar.add_task("meta-training", total=2 * steps)

        def on_step(phase: str, step: int, loss: float) -> None:
            bar.update(task, advance=1, description=f"{phase} step {step + 1}/{steps}: loss {loss:.4f}")

        report = train(prepared, output, config, command=_options.command_line(), on_step=on_step)
    held = report["held_out"]
    meta_curve, base_curve = held["meta"]["loss"], held["baseline"]["loss"]
    err.print(
        f"held-out loss after {inner_steps} steps: meta {meta_curve[-1]:.4f}, baseline {base_curve[-1]:.4f} "
        f"({report['tasks']['held_out']} tasks; before adaptation: meta {meta_curve[0]:.4f}, "
        f"baseline {base_curve[0]:.4f})"
    )
    wrote(output, f"MAML {arch} model over {len(report['features'])} features")
    wrote(outputs.report_beside(output), "training report")


# --- apexctl train iel ---------------------------------------------------------------------------------------------


@train_app.command("iel")
def iel(
    output: Annotated[
        Path,
        _options.output("The policy checkpoint (model.pt); its report beside it (model.report.json)."),
    ],
    dsg: Annotated[str | None, _options.dsg("DSG JSON document of the market (default: the built-in DSG).")] = None,
    symbol: Annotated[str, _options.symbol("Instrument preset of the simulated market.")] = "BTCUSDT",
    episodes: Annotated[
        int, _options.ranged(ranges.IEL_EPISODES, "--episodes", help="Training episodes (simulated parent orders).")
    ] = 2048,
    envs: Annotated[
        int, _options.ranged(ranges.IEL_ENVS, "--envs", help="Environments stepped in parallel per PPO batch.")
    ] = 64,
    eval_episodes: Annotated[
        int,
        _options.ranged(
            ranges.IEL_EVAL_EPISODES, "--eval-episodes", help="Held-out episodes each policy is evaluated on."
        ),
    ] = 256,
    side: Annotated[str, typer.Option("--side", help="Side of the parent order: buy or sell (any case).")] = "buy",
    size: Annotated[
        int, _options.ranged(ranges.IEL_SIZE_LOTS, "--size", help="Parent order size in lots of the instrument.")
    ] = ranges.IEL_EXEC_DEFAULTS["size_lots"],
    horizon_s: Annotated[
        float, _options.ranged(ranges.IEL_HORIZON_S, "--horizon-s", help="Time allowed to complete the parent, s.")
    ] = ranges.IEL_EXEC_DEFAULTS["horizon_s"],
    interval_s: Annotated[
        float,
        _options.ranged(ranges.IEL_INTERVAL_S, "--interval-s", help="Time between decisions, s (at most --horizon-s)."),
    ] = ranges.IEL_EXEC_DEFAULTS["interval_s"],
    seed: Annotated[int, _options.seed("Random seed; the same seed gives the same model.")] = _options.SEED_DEFAULT,
) -> None:
    """Train the IEL execution policy (PPO in apex-sim) and compare it with always-aggressive/always-passive."""
    # forge.iel imports torch (seconds) only once training starts; rich's table only here.
    from rich.table import Table

    from apexctl.forge.iel import IelConfig, save, train
    from apexctl.forge.sim import check_symbol, load_dsg

    outputs.check([outputs.OutFile(output)], [dsg])  # first: the report's name derives from it
    outputs.check([outputs.OutFile(outputs.report_beside(output))], [dsg])
    symbol = check_symbol(symbol)
    side = side.strip().lower()  # as --symbol: any case
    dsg_text, _ = load_dsg(dsg)
    config = _options.config_from(IelConfig, locals(), dsg_json=dsg_text, size_lots=size)
    config.validate()
    with progress() as bar:
        task = bar.add_task("PPO", total=config.episodes // config.envs)

        def advance(done: int, total: int, mean_is: float) -> None:
            bar.update(task, completed=done, description=f"PPO (batch IS {mean_is:5.2f} bps)")

        result = train(config, on_iteration=advance)
    report_path = save(result, output, command=_options.command_line(), dsg=dsg)
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
