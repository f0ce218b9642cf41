"""The consoles every command prints through: messages and progress on stderr, so stdout can carry a table."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

err = Console(stderr=True, highlight=False)


def safe(text: object) -> str:
    """`text` with every control or invisible formatting character escaped (\\x1b, \\n, \\x00, U+202E ...), so a
    message quoting input (a file name, a CSV header, a column name) is one line and cannot drive the terminal."""
    value = str(text)
    if value.isprintable():
        return value
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in value)


def progress(transient: bool = False) -> Progress:
    """A progress display on stderr when it is a terminal; elsewhere nothing at all (rich would still end a
    transient display with an empty line, which then stands before the next message)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=transient,
        disable=not err.is_terminal,
    )


def say(*parts: str | tuple[str, str]) -> None:
    """One line on stderr from plain parts (never read as markup; control characters escaped); a part may be a
    (text, style) pair."""
    pieces = [(safe(p[0]), p[1]) if isinstance(p, tuple) else safe(p) for p in parts]
    err.print(Text.assemble(*pieces), soft_wrap=True)


def wrote(path: str, what: str) -> None:
    """The one line each stage prints per output it wrote."""
    where = "stdout" if path == "-" else path
    say(("wrote", "green"), f" {what} to {where}")
