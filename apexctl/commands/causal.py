"""`apexctl causal`: the causal parents (feature, lag) of a target column of a features table, by PCMCI (tigramite)."""

from __future__ import annotations

from typing import Annotated

import typer

from apexctl.commands import _options
from apexctl.console import wrote
from apexctl.forge import outputs, ranges
from apexctl.forge.causal import SHUFFLES, CausalConfig, CondTest, Fdr, run


def causal(
    input_path: Annotated[
        str,
        typer.Argument(metavar="FEATURES", help="A 'features' Parquet table (from `apexctl features`); '-' = stdin."),
    ],
    output: Annotated[str, _options.output("Output 'apex.causal' JSON file; '-' = stdout.", text=True)],
    target: Annotated[
        str,
        typer.Option(
            "--target",
            help="Target column, or fwd_return_<h> (e.g. fwd_return_5m) = log(close\\[t+h]/close\\[t]) per symbol, "
            "computed from close when absent (h a multiple of the table's bar interval).",
        ),
    ] = "fwd_return_5m",
    tau_max: Annotated[int, _options.ranged(ranges.LAGS, "--tau-max", help="Largest lag (rows) searched.")] = 10,
    tau_min: Annotated[
        int,
        _options.ranged(
            ranges.LAGS,
            "--tau-min",
            help="Smallest lag searched; 0 by default because a row's features are known at its close, when the "
            "forward return from that row starts.",
        ),
    ] = 0,
    test: Annotated[
        CondTest, typer.Option("--test", help="Conditional independence test: parcorr (linear), cmiknn, gpdc.")
    ] = CondTest.parcorr,
    pc_alpha: Annotated[
        float,
        _options.ranged(ranges.OPEN_SHARE, "--pc-alpha", help="Significance level of the PC1 parent pre-selection."),
    ] = 0.2,
    alpha: Annotated[
        float,
        _options.ranged(ranges.OPEN_SHARE, "--alpha", help="Significance level of the reported parents (MCI)."),
    ] = 0.05,
    fdr: Annotated[
        Fdr,
        typer.Option(
            "--fdr",
            help="False-discovery-rate correction over all tested links: fdr_bh (Benjamini-Hochberg, the default) or "
            "none (raw p-values: about 5% of the noise links then pass --alpha 0.05).",
        ),
    ] = Fdr.fdr_bh,
    features: Annotated[
        str | None,
        typer.Option("--features", help="Comma-separated feature columns (default: every numeric feature column)."),
    ] = None,
    symbol: Annotated[
        str | None,
        _options.symbol("Use one symbol (default: every symbol, as datasets of the same process)."),
    ] = None,
    jobs: Annotated[
        int | None,
        _options.ranged(ranges.WORKERS, "--jobs", help="Worker processes for the MCI tests (default: CPU count)."),
    ] = None,
    seed: Annotated[int, _options.seed("Seed of the randomized tests (cmiknn, gpdc).")] = _options.SEED_DEFAULT,
    shuffles: Annotated[
        int,
        _options.ranged(
            SHUFFLES, "--shuffles", help="Permutations of the cmiknn shuffle test (tigramite's default 500)."
        ),
    ] = 500,
) -> None:
    """Find the causal parents of a target (PCMCI restricted to the target, parallel MCI), with data hygiene.

    Dropped columns (constant, near-duplicate, missing) are listed on stderr and in the JSON with their reason.
    """
    outputs.check([outputs.OutFile(output)], [input_path])
    config = _options.config_from(CausalConfig, locals(), features=_options.comma_list(features))
    doc = run(input_path, output, config)
    wrote(output, f"{len(doc['parents'])} causal parents of {target} ({doc['settings']['samples_used']:,} samples)")
