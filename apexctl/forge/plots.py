"""PNG charts of the Forge's logs, for people who look rather than read a table (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import polars as pl


def _pyplot():
    # Imported on first use: matplotlib costs a noticeable part of a second, and most commands never plot.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _integer_ticks():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def generations_png(log: pl.DataFrame, path: Path) -> None:
    """`evolve`'s fitness by generation (best and median training fitness; with `--dsg`, the adversarial PnL of the
    simulated members on a second axis) written to `path`."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(8, 4.5), dpi=100)
    generation = log["generation"].to_list()
    axis.plot(generation, log["best"].to_list(), marker="o", label="best training fitness")
    axis.plot(generation, log["median"].to_list(), marker=".", linestyle="--", label="median training fitness")
    axis.set_xlabel("generation")
    axis.xaxis.set_major_locator(_integer_ticks())
    axis.set_ylabel("training fitness (TTT score)")
    axis.grid(alpha=0.3)
    handles, labels = axis.get_legend_handles_labels()
    if log["best_adversarial"].null_count() < log.height:
        second = axis.twinx()
        second.plot(
            generation, log["best_adversarial"].to_list(), color="tab:red", marker="s", label="best simulator PnL"
        )
        second.set_ylabel("simulator PnL (USDT, mean over seeds)")
        more_handles, more_labels = second.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    axis.legend(handles, labels, loc="lower right")
    axis.set_title("evolve: fitness by generation")
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)


def pareto_png(front: pl.DataFrame, path: Path) -> None:
    """The dual-fitness Pareto front (training fitness against the simulator's PnL, one point per tree, joined in
    rank order) written to `path`."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.5, 5), dpi=100)
    ordered = front.sort("rank")
    x, y = ordered["train_fitness"].to_list(), ordered["adversarial_pnl"].to_list()
    axis.plot(x, y, color="tab:blue", alpha=0.4)
    axis.scatter(x, y, color="tab:blue", zorder=3)
    for rank, px, py in zip(ordered["rank"].to_list(), x, y, strict=True):
        axis.annotate(str(rank), (px, py), textcoords="offset points", xytext=(4, 4), fontsize=8)
    axis.set_xlabel("training fitness (backtest TTT score)")
    axis.set_ylabel("adversarial fitness (simulator PnL, USDT)")
    axis.grid(alpha=0.3)
    axis.set_title(f"evolve --dsg: Pareto front ({front.height} trees)")
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)
