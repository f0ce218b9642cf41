"""The consoles every command prints through: messages and progress on stderr, so stdout can carry a table."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

err = Console(stderr=True, highlight=False)


def progress(transient: bool = False) -> Progress:
    """A progress display on stderr; rich shows it only when stderr is a terminal."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=transient,
    )


def wrote(path: str, what: str) -> None:
    """The one line each stage prints per output it wrote."""
    if path == "-":
        err.print(f"[green]wrote[/] {what} to stdout")
    else:
        err.print(f"[green]wrote[/] {what} to {path}")
