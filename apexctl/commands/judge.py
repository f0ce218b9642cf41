"""`apexctl judge`: judges live ledgers per slot and model against the Forge's backtest (JSON, PNGs, one HTML page)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from apexctl.commands import _options
from apexctl.console import progress, say, wrote
from apexctl.forge import judge as judging
from apexctl.forge import outputs


def judge(
    ledgers: Annotated[
        list[Path],
        typer.Argument(
            parser=_options.path,
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
            text=True,
        ),
    ],
    report: Annotated[
        Path | None,
        _options.path_option(
            "--report",
            help="Report folder: new, empty or an earlier report, replaced as a whole each run. It gets report.html "
            "(self-contained, the PNGs embedded), equity-SLOT.png, weights.png, slippage.png, judgment.json, and "
            "recycle/ with a copy of every pending recycling request (feed them to `apexctl evolve --seed-dna`).",
        ),
    ] = None,
) -> None:
    """Judge live ledgers per slot and model: equity and drawdown, time to target (live against the bundle's held-out
    backtest estimate), deaths, swaps, capital weights, realized slippage and fees against the backtest's
    assumptions, and the recycling requests still pending (a death no swap has answered). Growth, drawdown and TTT
    measure trading only: capital the CWO moved between slots is no growth and no loss.

    Exit codes: 0 judged, nothing pending; 4 judged, and recycling requests are pending (listed in the JSON, copied
    to REPORT/recycle/); 2 bad input (a ledger missing, given twice, not SQLite, not a ledger, corrupt, holding a
    value of the wrong type or not finite, or of a newer version: one line naming the file, and the table, row and
    column of a bad value; nothing written); 3 another judge holds the lock of REPORT (or of -o without --report):
    this run did nothing. Everything is written atomically, and only once every ledger is read and judged."""
    judging.refuse_repeated(ledgers)
    options = judging.JudgeOptions(tuple(ledgers), output, report)
    folders = []
    if report is not None:
        hint = "an earlier judge report (it holds report.html and judgment.json)"
        folders.append(outputs.OutFolder(report, replace=judging.is_report(report), hint=hint, option="--report"))
    outputs.check([outputs.OutFile(output), *folders], list(ledgers))
    with judging.locked(options):
        with progress(transient=True) as bar:
            task = bar.add_task("reading ledgers", total=len(ledgers))
            result = judging.judge(ledgers, on_ledger=lambda path: bar.update(task, advance=1, description=str(path)))
        lines = [_slot_line(slot) for ledger in result.document["ledgers"] for slot in ledger["slots"]]
        judging.write(result, options)  # only once everything is computed: a failure before it writes nothing
    for line in lines:
        say(line)
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


def _fixed(value: float | None, digits: int, scale: float = 1.0, spec: str = "") -> str:
    """A number of the judgment for the summary line; `-` for null (where a measure of extreme but finite ledger
    values overflowed, a drawdown from a tiny peak say, the document holds null)."""
    return "-" if value is None else f"{scale * value:{spec}.{digits}f}"


def _slot_line(slot: dict[str, Any]) -> str:
    """One slot's summary line (stderr)."""
    ttt = slot["ttt"] or {}
    if ttt.get("seconds") is not None:
        reached = f"TTT {_fixed(ttt['seconds'], 0)} s"
    else:
        reached = f"{_fixed(ttt.get('fraction_reached') or 0.0, 0, 100)} % of target"
    equity = slot["equity"]
    # Growth, drawdown and TTT exclude the capital the CWO moved; the equity is the money held, so say what moved.
    moved = f" ({_fixed(equity['transferred'], 2, spec='+,')} moved by the CWO)" if equity.get("transferred") else ""
    return (
        f"{slot['slot']} ({slot['symbol']}, {slot['state']}): equity {_fixed(equity['final'], 2, spec=',')}{moved}, "
        f"log growth {_fixed(equity['log_growth'], 4, spec='+')}, "
        f"max drawdown {_fixed(equity['max_drawdown'], 1, 100)} %, {reached}, "
        f"{len(slot['deaths'])} death(s), {len(slot['swaps'])} swap(s)"
    )
