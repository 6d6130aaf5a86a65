"""Terminal output for every command: one Rich console, tables, and error exits.

Every command prints through here so that messages look the same and a `DriftloopError` turns
into a red one-line message and exit code 1, never a traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from driftloop.core import errors, secrecy

if TYPE_CHECKING:  # imported by `table`: a command that prints no table does not load it
    from rich.table import Table

T = TypeVar("T")
# Piped output (a log file, CI) would be squeezed to 80 columns, truncating tables' numbers.
_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 120


def _console(stderr: bool = False) -> Console:
    """A console of `_WIDTH` that highlights (colours numbers, paths, URLs) only where it shows
    colours: where it shows none (a pipe, a log), the highlighter would change nothing but cost
    the compiling of its patterns, more than a no-op `driftloop tick`'s SQL."""
    made = Console(stderr=stderr, width=_WIDTH)
    if made.color_system is None:
        made = Console(stderr=stderr, width=_WIDTH, highlight=False)
    return made


stdout = _console()
stderr = _console(stderr=True)
print = stdout.print


def ok(message: str) -> None:
    stdout.print(f"[green]✓[/green] {message}")


def info(message: str) -> None:
    stdout.print(f"[dim]{message}[/dim]")


def fail(message: str) -> NoReturn:
    """Print `message` (URLs in it without their passwords) and exit with code 1."""
    shown = secrecy.redact_text(message)
    stderr.print(Text("error: ", style="red") + Text(shown), highlight=False)
    raise typer.Exit(1)


def guard(action: Callable[[], T]) -> T:
    """Run `action`; a driftloop error becomes a clean message and exit code 1."""
    try:
        return action()
    except errors.DriftloopError as exc:
        fail(str(exc))


def busy(message: str) -> contextlib.AbstractContextManager[Any]:
    """A spinner saying `message` on a terminal; nothing where the output is a log or a pipe
    (which never shows it, and a cron job's command need not load Rich's live display)."""
    return stdout.status(message) if stdout.is_terminal else contextlib.nullcontext()


def table(*columns: str, title: str | None = None) -> Table:
    from rich.table import Table

    grid = Table(title=title, header_style="bold")
    for column in columns:
        grid.add_column(column)
    return grid
