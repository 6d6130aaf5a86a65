"""`driftloop notifications`: the webhook outbox of a pipeline, and putting given-up ones back."""

from __future__ import annotations

from pathlib import Path

import typer

from driftloop.cli import console, options


def notifications(
    spec: Path = options.SPEC,
    status: str | None = typer.Option(None, help="Only this status: pending, sent or dead."),
    last: int = typer.Option(20, help="How many of the newest to show."),
    retry: bool = typer.Option(False, "--retry", help="Queue the given-up (dead) ones again."),
) -> None:
    """Show the webhook notifications (`notify:` in the spec): event, status, attempts, error.

    The next `driftloop tick` delivers what is due; a receiver that was down gets what it missed,
    in order, each with the same X-Driftloop-Delivery key on every attempt."""
    from driftloop.controller import project as projects
    from driftloop.store import outbox

    project = console.guard(lambda: projects.open_project(spec))
    box = outbox.Outbox(project.store)
    if retry:
        console.ok(f"{box.retry_dead(project.name)} given-up notifications queued again")
    counts = box.counts(project.name)
    grid = console.table("id", "event", "key", "status", "attempts", "next / sent", "error",
                         title=", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or None)
    for item in box.recent(project.name, status=status, last=last):
        when = item.sent_at if item.sent_at is not None else item.next_at
        grid.add_row(str(item.id), item.event, item.event_key, item.status, str(item.attempts),
                     f"{when:%Y-%m-%d %H:%M:%S}", item.last_error or "")
    console.print(grid)
    project.close()
