"""`apexctl features`: microstructure features of book, trades or bars tables, written as a `features` table."""

from __future__ import annotations

from typing import Annotated

import typer

from apexctl.commands import _options
from apexctl.console import wrote
from apexctl.forge import outputs, ranges
from apexctl.forge.features import FeatureConfig, Grain, run


def features(
    inputs: Annotated[
        list[str],
        typer.Argument(
            metavar="IN...",
            help="Input tables: 'book', 'trades' and/or 'bars' (klines) Parquet files, recognized by their "
            "apex.schema metadata; several files allowed; '-' reads one from stdin.",
        ),
    ],
    output: Annotated[str, _options.output("Output 'features' Parquet file; '-' = stdout.", text=True)],
    grain: Annotated[
        Grain,
        typer.Option(
            "--grain",
            help="One row per: 'update' = book message (needs a book table); 'trade' = trade (signed volume, TFI; "
            "needs trades); '1m' '5m' '15m' '1h' = bar opening at multiples of the interval in UTC, built from "
            "trades or from klines (a bars table), with book aggregates when a book table is given too.",
        ),
    ] = Grain.update,
    tfi_windows: Annotated[
        str,
        typer.Option(
            "--tfi-windows",
            help="Comma-separated windows of the trade flow imbalance at grain 'trade' (e.g. 500ms,1s,10s,5m): "
            "TFI_w = sum(side*size)/sum(size) over the trades in (t-w, t]. Units ms, s, m, h, d; at most 32 "
            "windows; each column is named in its largest whole unit (60s -> tfi_1m).",
        ),
    ] = "1s,10s,60s",
    rv_bars: Annotated[
        int,
        _options.rv_bars(
            "Bar grains: realized volatility rv = sqrt(sum of the last N squared log returns).",
        ),
    ] = ranges.FEATURE_DEFAULTS["rv_bars"],
    mtfa: Annotated[
        bool,
        typer.Option(
            "--mtfa/--no-mtfa",
            help="Bar grains: append close/volume/clv/ret/rv of the last CLOSED bar of every higher interval among "
            "5m, 15m, 1h (columns like clv_5m); a higher bar is used only once it has closed at the row's close.",
        ),
    ] = True,
    vmd_modes: Annotated[
        int,
        _options.vmd_modes(
            "Bar grains: number K of variational-mode-decomposition modes of the close (columns vmd_1..vmd_K, "
            "lowest frequency first); 0 turns VMD off.",
        ),
    ] = ranges.FEATURE_DEFAULTS["vmd_modes"],
    vmd_window: Annotated[
        int,
        _options.vmd_window(
            "Bar grains: bars in the rolling VMD window; each row decomposes only the window ending at it.",
        ),
    ] = ranges.FEATURE_DEFAULTS["vmd_window"],
) -> None:
    """Compute microstructure features (OFI, book pressure, microprice, TFI, CLV, returns, rv, MTFA, VMD).

    Columns are listed in the apexctl.forge.features module docstring and the README section "Features".
    """
    outputs.check([outputs.OutFile(output)], inputs)
    config = _options.config_from(
        FeatureConfig, locals(), tfi_windows=tuple(w for w in tfi_windows.split(",") if w.strip())
    )
    written = run(inputs, output, config)
    wrote(output, f"{written.rows:,} feature rows ({config.grain.value}, {written.columns} columns)")
