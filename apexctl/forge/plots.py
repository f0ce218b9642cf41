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


def _times(ns: list[int]) -> list:
    import datetime as dt

    return [dt.datetime.fromtimestamp(t / 1e9, tz=dt.UTC) for t in ns]


def equity_png(times: list[int], equity: list[float], capital: float, target: float, title: str, path: Path) -> None:
    """`judge`'s equity curve of one slot (with its starting capital and target) over its drawdown from the running
    peak, written to `path`."""
    plt = _pyplot()
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(8, 5.5), dpi=100, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    when = _times(times)
    top.plot(when, equity, color="tab:blue", label="equity")
    top.axhline(capital, color="grey", linestyle=":", label=f"start {capital:,.2f}")
    low, high = min([capital, *equity]), max([capital, *equity])
    if target <= high + (high - low):
        top.axhline(target, color="tab:green", linestyle="--", label=f"target {target:,.2f}")
    else:  # far above the curve: a line there would flatten the curve into the floor
        top.plot([], [], color="tab:green", linestyle="--", label=f"target {target:,.2f} (off the chart)")
    top.set_ylabel("equity (USDT)")
    top.grid(alpha=0.3)
    top.legend(loc="best")
    top.set_title(title)
    peak, drawdown = capital, []
    for value in equity:
        peak = max(peak, value)
        drawdown.append(-100.0 * (1.0 - value / peak) if peak > 0 else 0.0)
    bottom.fill_between(when, drawdown, 0.0, color="tab:red", alpha=0.4, step="post")
    bottom.set_ylabel("drawdown (%)")
    bottom.grid(alpha=0.3)
    bottom.set_xlabel("exchange time (UTC)")
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)


def weights_png(series: dict[str, list[tuple[int, float]]], path: Path) -> None:
    """`judge`'s capital weights over time, one step line per slot (the CWO's reweights), written to `path`."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(8, 4.5), dpi=100)
    for name, points in sorted(series.items()):
        if points:
            axis.step(_times([t for t, _ in points]), [w for _, w in points], where="post", label=name)
    axis.set_ylabel("weight (share of the live capital)")
    axis.set_xlabel("exchange time (UTC)")
    axis.set_ylim(bottom=0.0)
    axis.grid(alpha=0.3)
    if any(series.values()):
        axis.legend(loc="best", fontsize=8)
    else:
        axis.text(0.5, 0.5, "no reweight recorded", ha="center", va="center", transform=axis.transAxes)
    axis.set_title("judge: capital weights over time")
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)


def slippage_png(rows: list[tuple[str, float | None, float | None]], path: Path) -> None:
    """`judge`'s realized against assumed slippage (bps, worse is positive), one pair of bars per (slot, tactic)
    label, written to `path`."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(max(6.0, 0.9 * len(rows) + 2), 4.5), dpi=100)
    labels = [label for label, _, _ in rows]
    positions = list(range(len(rows)))
    realized = [r if r is not None else 0.0 for _, r, _ in rows]
    assumed = [a if a is not None else 0.0 for _, _, a in rows]
    axis.bar([p - 0.2 for p in positions], realized, width=0.4, color="tab:orange", label="realized (vs mid)")
    axis.bar([p + 0.2 for p in positions], assumed, width=0.4, color="tab:grey", label="backtest assumption")
    axis.axhline(0.0, color="black", linewidth=0.8)
    axis.set_xticks(positions, labels, rotation=30, ha="right", fontsize=8)
    axis.set_ylabel("slippage (bps, worse is positive)")
    axis.grid(alpha=0.3, axis="y")
    if rows:
        axis.legend(loc="best")
    else:
        axis.text(0.5, 0.5, "no fill with a recorded mid", ha="center", va="center", transform=axis.transAxes)
    axis.set_title("judge: realized slippage by slot and tactic")
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)
