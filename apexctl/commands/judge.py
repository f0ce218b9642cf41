"""`apexctl judge`: judges live ledgers per slot and model against the Forge's backtest (JSON, PNGs, one HTML page)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from apexctl.commands import _options
from apexctl.console import progress, say, wrote
from apexctl.forge import judge as judging
from apexctl.forge import outputs


def judge(
    ledgers: Annotated[
        list[Path],
        typer.Argument(
            help="Ledgers (OUT/ledger.sqlite of `apexctl trade`, version 1 or 2), read-only: a ledger an engine is "
            "still writing is fine.",
            metavar="LEDGER",
            show_default=False,
        ),
    ],
    output: Annotated[
        str,
        _options.output(
            "The apex.judgment JSON document (apexctl/schemas/judgment.schema.json); '-' = stdout.",
        ),
    ],
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Report folder: new, empty or an earlier report, replaced as a whole each run. It gets report.html "
            "(self-contained, the PNGs embedded), equity-SLOT.png, weights.png, slippage.png, judgment.json, and "
            "recycle/ with a copy of every pending recycling request (feed them to `apexctl evolve --seed-dna`).",
        ),
    ] = None,
) -> None:
    """Judge live ledgers per slot and model: equity and drawdown, time to target (live against the bundle's held-out
    backtest estimate), deaths, swaps, capital weights, realized slippage and fees against the backtest's
    assumptions, and the recycling requests still pending (a death no swap has answered).

    Exit codes: 0 judged, nothing pending; 4 judged, and recycling requests are pending (listed in the JSON, copied
    to REPORT/recycle/); 2 bad input (a ledger missing, not SQLite, not a ledger, corrupt or of a newer version:
    one line naming the file; nothing written); 3 another judge holds the lock of REPORT (or of -o without
    --report): this run did nothing. Everything is written atomically."""
    options = judging.JudgeOptions(tuple(ledgers), output, report)
    folders = []
    if report is not None:
        hint = "an earlier judge report (it holds report.html and judgment.json)"
        folders.append(outputs.OutFolder(report, replace=judging.is_report(report), hint=hint))
    outputs.check([outputs.OutFile(output), *folders], list(ledgers), option="-o/--report")
    with judging.locked(options):
        with progress(transient=True) as bar:
            task = bar.add_task("reading ledgers", total=len(ledgers))
            result = judging.judge(ledgers, on_ledger=lambda path: bar.update(task, advance=1, description=str(path)))
        judging.write(result, options)
    for ledger in result.document["ledgers"]:
        for slot in ledger["slots"]:
            ttt = slot["ttt"] or {}
            reached = f"TTT {ttt['seconds']:.0f} s" if ttt.get("seconds") is not None else (
                f"{100 * (ttt.get('fraction_reached') or 0.0):.0f} % of target"
            )  # fmt: skip
            growth = slot["equity"]["log_growth"]
            say(
                f"{slot['slot']} ({slot['symbol']}, {slot['state']}): equity {slot['equity']['final']:,.2f}, "
                f"log growth {'-' if growth is None else f'{growth:+.4f}'}, "
                f"max drawdown {100 * slot['equity']['max_drawdown']:.1f} %, {reached}, "
                f"{len(slot['deaths'])} death(s), {len(slot['swaps'])} swap(s)"
            )
    pending = result.pending
    if report is not None:
        wrote(str(report / "report.html"), "the report (PNGs embedded)")
    if output != "-":
        wrote(output, f"the judgment of {len(ledgers)} ledger(s)")
    if pending:
        say(f"{len(pending)} recycling request(s) pending (exit {judging.EXIT_PENDING})")
        for entry in pending:
            say(f"  {entry['slot']}: {entry['status']}: {entry['copied_to'] or entry['error'] or entry['path']}")
    code = judging.exit_code(result)
    if code:
        raise typer.Exit(code)
