"""The consoles every command prints through: messages and progress on stderr, so stdout can carry a table."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
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


class _SayHandler(logging.Handler):
    """Shows the Forge's notes (`apexctl.forge.feedback`) as `say` lines."""

    def emit(self, record: logging.LogRecord) -> None:
        say(*getattr(record, "parts", (record.getMessage(),)))


class _Bar:
    def __init__(self, bar: Progress, task: TaskID) -> None:
        self.bar, self.task = bar, task

    def advance(self, amount: float = 1, description: str | None = None) -> None:
        if description is None:
            self.bar.advance(self.task, amount)
        else:
            self.bar.update(self.task, advance=amount, description=description)


@contextlib.contextmanager
def _progress_steps(description: str, total: float | None) -> Iterator[_Bar]:
    with progress(transient=True) as bar:
        yield _Bar(bar, bar.add_task(description, total=total))


def show_feedback() -> None:
    """Shows the Forge's notes and progress on stderr (what every command wants; once per process)."""
    from apexctl.forge import feedback

    if not any(isinstance(h, _SayHandler) for h in feedback.log.handlers):
        feedback.log.addHandler(_SayHandler())
        feedback.log.setLevel(logging.INFO)
        feedback.log.propagate = False
    feedback.set_display(_progress_steps)
