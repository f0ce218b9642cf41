"""`apexctl export`: write a verified model bundle for the live engine, or `--check` an existing one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from apexctl.commands import _options
from apexctl.console import err, safe, wrote
from apexctl.errors import UsageError
from apexctl.forge import ranges
from apexctl.forge.export import ExportConfig, check, export


def _summary(report: dict, title: str) -> Table:
    table = Table(title=title)
    for column in ("model", "kind", "file", "features", "window", "outputs", "sha256"):
        table.add_column(column, justify="right" if column in {"features", "window", "outputs"} else "left")
    for model in report["models"]:
        table.add_row(
            safe(model["name"]),
            model["kind"],
            safe(model["file"]),
            str(model["features"]),
            str(model["window"]),
            str(model["outputs"]),
            report["files"][model["file"]][:16],
        )
    return table


def export_command(
    output: Annotated[
        Path | None,
        _options.output("Bundle folder to write, e.g. bundles/BTCUSDT/a/ (must be empty or new)."),
    ] = None,
    hall_of_fame: Annotated[
        Path | None, typer.Option("--hall-of-fame", help="hall_of_fame/ folder written by `apexctl evolve`.")
    ] = None,
    rank: Annotated[int, _options.ranged(ranges.RANK, "--rank", help="Rank of the hall-of-fame tree to export.")] = 1,
    maml: Annotated[Path | None, typer.Option("--maml", help="model.pt of `apexctl train maml`.")] = None,
    iel: Annotated[Path | None, typer.Option("--iel", help="model.pt of `apexctl train iel`.")] = None,
    symbol: Annotated[str | None, _options.symbol("Symbol of the bundle (default: the hall of fame's).")] = None,
    slot: Annotated[str | None, typer.Option("--slot", help="Slot name (default: the output folder's name).")] = None,
    force: Annotated[bool, _options.force("Replace a non-empty output folder.")] = False,
    check_dir: Annotated[
        Path | None,
        typer.Option("--check", help="Verify this existing bundle like the live engine does; exit 2 on a problem."),
    ] = None,
    engine_features: Annotated[
        str | None,
        typer.Option("--engine-features", help="With --check: the engine's feature names in order, comma-separated."),
    ] = None,
) -> None:
    """Export the GP tree and ONNX networks as a bundle (validated before it is published), or --check a bundle."""
    if check_dir is not None:
        if output is not None or hall_of_fame is not None or maml is not None or iel is not None:
            raise UsageError("--check takes only a bundle folder (and --engine-features); drop the export options")
        names = [n.strip() for n in engine_features.split(",")] if engine_features is not None else None
        report = check(check_dir, names)
        title = safe(f"bundle {check_dir}: {report['symbol']} slot {report['slot']}, OK")
        err.print(_summary(report, title), markup=False)
        err.print(f"verified {len(report['files'])} file hashes and {len(report['models'])} model(s) on sample rows")
        return
    if output is None:
        raise UsageError("missing -o/--output (the bundle folder to write), or use --check BUNDLE")
    if engine_features is not None:
        raise UsageError("--engine-features goes with --check")
    config = _options.config_from(ExportConfig, locals(), command=_options.command_line())
    result = export(config)
    title = safe(f"bundle {result.manifest['symbol']} slot {result.manifest['slot']}")
    err.print(_summary(result.report, title), markup=False)
    for name, diff in result.parity.items():
        err.print(f"{name}: onnxruntime vs PyTorch max |diff| {diff:.2e} on sample inputs")
    wrote(str(output), f"bundle of {len(result.manifest['models'])} model(s), verified by the Rust engine")
