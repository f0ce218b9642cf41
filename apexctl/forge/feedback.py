"""How Forge code tells the user what it does without printing: notes go to the `apexctl` logger and long work
reports through `steps`, both shown only where the caller (the CLI, `console.show_feedback`) installed a display."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Protocol

#: The logger every note goes to; a record's `parts` (text or (text, style) pairs) is what the CLI shows.
log = logging.getLogger("apexctl")


class Steps(Protocol):
    """Progress of one long piece of work."""

    def advance(self, amount: float = 1, description: str | None = None) -> None: ...


class _Silent:
    def advance(self, amount: float = 1, description: str | None = None) -> None:
        del amount, description


StepsFactory = Callable[[str, float | None], contextlib.AbstractContextManager[Steps]]
#: The installed display, under "steps" (absent: progress is shown nowhere).
_display: dict[str, StepsFactory] = {}


def set_display(factory: StepsFactory | None) -> None:
    """Where `steps` shows progress (None: nowhere)."""
    if factory is None:
        _display.pop("steps", None)
    else:
        _display["steps"] = factory


@contextlib.contextmanager
def steps(description: str, total: float | None) -> Iterator[Steps]:
    """Progress of work of `total` units (None: unknown), shown on the installed display, if any."""
    factory = _display.get("steps")
    if factory is None:
        yield _Silent()
        return
    with factory(description, total) as shown:
        yield shown


def note(*parts: str | tuple[str, str]) -> None:
    """One line for the user: plain parts, or (text, style) pairs."""
    log.info("".join(p if isinstance(p, str) else p[0] for p in parts), extra={"parts": parts})


def wrote(path: str, what: str) -> None:
    """The one line each stage shows per output it wrote."""
    where = "stdout" if path == "-" else path
    note(("wrote", "green"), f" {what} to {where}")
