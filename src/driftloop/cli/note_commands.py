"""`driftloop notes`: leave a note on a model version, a decision or a batch, and read them."""

from __future__ import annotations

import getpass
from pathlib import Path

import typer

from driftloop.cli import console, options

app = typer.Typer(help="Notes on versions, decisions and batches.", no_args_is_help=True)


@app.command("add")
def add(
    target: str = typer.Argument(..., help="version, decision or batch"),
    number: int = typer.Argument(..., help="Its number (version) or id (decision, batch)."),
    text: str = typer.Argument(..., help="The note."),
    author: str | None = typer.Option(None, help="Who writes it; default: the OS user."),
    spec: Path = options.SPEC,
) -> None:
    """Leave a note (shown by `driftloop models show` and on the dashboard's lineage page)."""
    from driftloop.controller import project as projects
    from driftloop.store import notes

    project = console.guard(lambda: projects.open_project(spec))
    note = console.guard(lambda: notes.Notes(project.store).add(
        project.name, target, number, author=author or getpass.getuser(), text=text))
    console.ok(f"note {note.id} on {target} {number}")
    project.close()


@app.command("list")
def show(
    target: str | None = typer.Option(None, help="Only notes on version, decision or batch."),
    number: int | None = typer.Option(None, "--id", help="Only notes on this one."),
    spec: Path = options.SPEC,
) -> None:
    """The pipeline's notes, oldest first, with times in this machine's time zone."""
    from driftloop.controller import project as projects
    from driftloop.store import notes

    project = console.guard(lambda: projects.open_project(spec))
    grid = console.table("at (local)", "on", "author", "note")
    for note in notes.Notes(project.store).of(project.name, target, number):
        grid.add_row(f"{note.at.astimezone():%Y-%m-%d %H:%M %Z}",
                     f"{note.target} {note.target_id}", note.author, note.text)
    console.print(grid)
    project.close()
