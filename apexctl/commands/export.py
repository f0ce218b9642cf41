"""`apexctl export`: write a verified model bundle for the live engine, or `--check` an existing one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from apexctl.commands import _options
from apexctl.console import err, safe, say, wrote
from apexctl.errors import UsageError
from apexctl.forge import ranges
from apexctl.forge.export import GP_MODEL, ExportConfig, check, describe_bars, export


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
        Path | None, _options.path_option("--hall-of-fame", help="hall_of_fame/ folder written by `apexctl evolve`.")
    ] = None,
    rank: Annotated[int, _options.ranged(ranges.RANK, "--rank", help="Rank of the hall-of-fame tree to export.")] = 1,
    maml: Annotated[Path | None, _options.path_option("--maml", help="model.pt of `apexctl train maml`.")] = None,
    iel: Annotated[Path | None, _options.path_option("--iel", help="model.pt of `apexctl train iel`.")] = None,
    symbol: Annotated[str | None, _options.symbol("Symbol of the bundle (default: the hall of fame's).")] = None,
    slot: Annotated[str | None, typer.Option("--slot", help="Slot name (default: the output folder's name).")] = None,
    force: Annotated[bool, _options.force("Replace a non-empty output folder.")] = False,
    check_dir: Annotated[
        Path | None,
        _options.path_option(
            "--check", help="Verify this existing bundle like the live engine does; exit 2 on a problem."
        ),
    ] = None,
    engine_features: Annotated[
        str | None,
        typer.Option(
            "--engine-features",
            help="With --check: the feature row an engine computes, names in order, comma-separated; the bundle's "
            "feature row must equal it position by position.",
        ),
    ] = None,
) -> None:
    """Export the GP tree and ONNX networks as a bundle (validated before it is published), or --check a bundle."""
    if check_dir is not None:
        export_options = {
            "-o": output,
            "--hall-of-fame": hall_of_fame,
            "--maml": maml,
            "--iel": iel,
            "--symbol": symbol,
            "--slot": slot,
            "--rank": rank if rank != 1 else None,
            "--force": force or None,
        }
        given = [option for option, value in export_options.items() if value is not None]
        if given:
            raise UsageError(
                "--check takes only a bundle folder (and --engine-features); drop the export options "
                f"({', '.join(given)})"
            )
        names = [n.strip() for n in engine_features.split(",")] if engine_features is not None else None
        if names is not None and not all(names):
            raise UsageError(
                f"--engine-features: name {names.index('') + 1} of {len(names)} is empty (a doubled or trailing "
                "comma?); give the engine's feature names in order, e.g. --engine-features ret_1,rv_20"
            )
        report = check(check_dir, names, live=True)
        title = safe(f"bundle {check_dir}: {report['symbol']} slot {report['slot']}, OK")
        err.print(_summary(report, title), markup=False)
        files = len(report["files"])
        hashes = "hash" if files == 1 else "hashes"
        err.print(f"verified {files} file {hashes} and {len(report['models'])} model(s) on sample rows")
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
    if not any(m["name"] == GP_MODEL for m in result.manifest["models"]):
        say(
            ("note:", "yellow"),
            f" {output} has no {GP_MODEL!r} model (no --hall-of-fame): it can be inferred from, but the live engine "
            "does not trade it",
        )
    for source in result.unrecorded:
        say(
            ("note:", "yellow"),
            f" {source} records no bars (it predates the record): the bundle says it learned from "
            f"{describe_bars(result.bars or {})}, as {result.bars_source} records, and the live engine feeds it those; "
            "if it was made from another features table, make it again to record its own",
        )
    wrote(str(output), f"bundle of {len(result.manifest['models'])} model(s), verified by the Rust engine")
