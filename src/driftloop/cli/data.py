"""`driftloop ingest` (read new data now) and `driftloop batches` (what came in, and why a batch
was quarantined). Called by `cli.main`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from driftloop.cli import console
from driftloop.store import entities

if TYPE_CHECKING:
    from driftloop.store import summaries

SPEC = typer.Option(Path("driftloop.yaml"), "--spec", "-s", help="The pipeline spec.")


def ingest(spec: Path = SPEC) -> None:
    """Read new data from the source, validate it, and record accepted / quarantined batches
    (from a stream, at most `source.max_batches` batches: run it again for more).

    Ingesting takes the pipeline's lease like a tick does, so it never races a running
    controller; while one holds the lease, it is the one that ingests."""
    from driftloop.controller import ingest as ingesting
    from driftloop.controller import lease as leases
    from driftloop.controller import project as projects

    project = console.guard(lambda: projects.open_project(spec))
    holder = leases.holder_name("ingest")
    ttl = project.spec.lease_timeout
    try:
        with (
            console.stdout.status("reading the source ..."),
            leases.hold(project.store, project.name, holder, ttl) as held,
        ):
            batches = None if held is None else console.guard(lambda: ingesting.ingest(project))
    finally:
        project.store.release_lease(project.name, holder)
    if batches is None:
        lease = project.store.get_lease(project.name)
        console.info(
            f"{lease.holder if lease else 'a controller'} holds the lease of {project.name!r} "
            "and ingests on its ticks; nothing to do here"
        )
        project.close()
        return
    accepted = sum(batch.status == "accepted" for batch in batches)
    console.ok(
        f"{len(batches)} new batch(es): {accepted} accepted, {len(batches) - accepted} quarantined"
    )
    if batches:
        show_batches(batches)
    project.close()


def batches(
    spec: Path = SPEC,
    quarantined: bool = typer.Option(
        False, "--quarantined", "-q", help="Only quarantined batches."
    ),
) -> None:
    """List the pipeline's batches with their status and, for quarantined ones, the reasons."""
    from driftloop.controller import project as projects

    project = console.guard(lambda: projects.open_project(spec))
    listed = project.store.list_batches(project.name, status="quarantined" if quarantined else None)
    if not listed:
        console.info("no batches yet: run `driftloop ingest`")
    else:
        from driftloop.store import summaries

        scored = {
            point.batch_id: point for point in summaries.live_metric(project.store, project.name)
            if point.batch_id is not None
        }
        show_batches(listed, scored)
    project.close()


def show_batches(
    listed: list[entities.Batch], scored: dict[int, summaries.LivePoint] | None = None
) -> None:
    """A table of batches, then the reasons of each quarantined one (long lines fit no column).
    With `scored` (batch id → the champion's evaluation of it), the metric realised on each
    batch ("live") and the accuracy estimated from calibrated confidences before its labels
    were used ("est. acc.")."""
    extra = ("live", "est. acc.") if scored is not None else ()
    table = console.table("id", "file", "rows", "period", "status", "reasons", *extra)
    for batch in listed:
        status = (
            "[green]accepted[/green]" if batch.status == "accepted" else "[red]quarantined[/red]"
        )
        period = f"{batch.start:%Y-%m-%d} → {batch.end:%m-%d}" if batch.start and batch.end else ""
        found = sum(len(reasons) for reasons in batch.reasons.values())
        table.add_row(
            str(batch.id),
            Path(batch.source_uri).name,
            str(batch.rows),
            period,
            status,
            str(found) if found else "",
            *(_scores(scored.get(batch.id)) if scored is not None else ()),
        )
    console.print(table)
    for batch in listed:
        if batch.reasons:
            console.print(
                f"[red]batch {batch.id}[/red] ({Path(batch.source_uri).name}) quarantined:"
            )
            for reason in (r for reasons in batch.reasons.values() for r in reasons):
                console.print(f"  • {reason}", highlight=False)


def _scores(point: summaries.LivePoint | None) -> tuple[str, str]:
    """The realised metric and the estimated accuracy of a batch, as table cells."""
    if point is None:
        return "", ""
    live = "" if point.value is None else f"{point.value:.4f}"
    return live, "" if point.estimated is None else f"{point.estimated:.4f}"
