"""`driftloop ingest` (read new data now), `driftloop batches` (what came in, why a batch was
quarantined, which accepted ones carry data-quality signals) and `driftloop batches requeue`
(validate quarantined batches again after a spec fix). Called by `cli.main`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from driftloop.cli import console, json_output, options
from driftloop.core import types
from driftloop.store import entities

if TYPE_CHECKING:
    from driftloop.store import summaries



def ingest(spec: Path = options.SPEC) -> None:
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
            console.busy("reading the source ..."),
            leases.hold(project.store, project.name, holder, ttl) as held,
        ):
            batches = None if held is None else console.guard(lambda: ingesting.ingest(project))
    finally:
        project.store.leases.release(project.name, holder)
    if batches is None:
        lease = project.store.leases.get(project.name)
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


batches_app = typer.Typer(
    help="The pipeline's batches: status, quarantine reasons, data-quality signals; requeue."
)


@batches_app.callback(invoke_without_command=True)
def batches(
    ctx: typer.Context,
    spec: Path = options.SPEC,
    quarantined: bool = typer.Option(
        False, "--quarantined", "-q", help="Only quarantined batches."
    ),
    signals: bool = typer.Option(
        False, "--signals", help="Also print each accepted batch's data-quality signals."
    ),
    last: int = typer.Option(50, "--last", "-n", min=0, help="The newest N batches (0: all)."),
    as_json: options.Json = False,
) -> None:
    """List the pipeline's batches with their status and, for quarantined ones, the reasons;
    the `signals` column counts the columns (and rows) beyond what the first data showed."""
    if ctx.invoked_subcommand is not None:
        return
    from driftloop.controller import project as projects

    project = console.guard(lambda: projects.open_project(spec))
    status: types.BatchStatus | None = "quarantined" if quarantined else None
    listed = project.store.batches.list(project.name, status=status, last=last or None)
    if as_json:
        json_output.emit({"pipeline": project.name,
                          "batches": [json_output.batch(found) for found in listed]})
        project.close()
        return
    if not listed:
        console.info("no batches yet: run `driftloop ingest`")
    else:
        from driftloop.store import summaries

        scored = {
            point.batch_id: point for point in summaries.live_metric(project.store, project.name)
            if point.batch_id is not None
        }
        show_batches(listed, signals=signals, scored=scored)
        older = project.store.batches.count(project.name, status) - len(listed) if last else 0
        if older > 0:
            console.info(f"{older} older batch(es) not shown (--last 0 shows all)")
    project.close()


@batches_app.command("requeue")
def requeue(
    spec: Path = options.SPEC,
    ids: list[int] = typer.Option(
        [], "--id", help="A quarantined batch to requeue (repeat for more); default: all."
    ),
    previous_spec: bool = typer.Option(
        False, "--previous-spec",
        help="Only batches quarantined under other validation settings than the spec's now.",
    ),
    actor: str | None = options.ACTOR,
) -> None:
    """Validate quarantined batches again under the current spec (after fixing it): those that
    pass join the history as new batches, which the next tick sees; audited."""
    from driftloop.controller import lease as leases
    from driftloop.controller import project as projects
    from driftloop.controller import requeue as requeuing

    project = console.guard(lambda: projects.open_project(spec))
    holder = leases.holder_name("requeue")
    try:
        with leases.hold(project.store, project.name, holder, project.spec.lease_timeout) as held:
            if held is None:
                lease = project.store.leases.get(project.name)
                console.fail(
                    f"{lease.holder if lease else 'a controller'} holds the lease of "
                    f"{project.name!r}; stop it or try again when its tick is done"
                )
            chosen = console.guard(lambda: requeuing.select(project, ids, previous_spec))
            who = actor or projects.whoami()
            done = console.guard(lambda: requeuing.requeue(project, chosen, who))
    finally:
        project.store.leases.release(project.name, holder)
    if not chosen:
        console.info("no quarantined batch to requeue")
        project.close()
        return
    moved = ", ".join(f"{old} → {new.id}" for old, new in done.accepted.items())
    console.ok(
        f"requeued {len(chosen)} batch(es): {len(done.accepted)} accepted"
        + (f" ({moved})" if moved else "")
        + f", {len(done.refused)} still quarantined, {len(done.skipped)} unreadable"
    )
    for batch_id, why in done.skipped.items():
        console.print(f"  • batch {batch_id}: {why}", highlight=False)
    shown = [*done.accepted.values(), *done.refused]
    if shown:
        show_batches(sorted(shown, key=lambda b: b.id))
    if done.accepted:
        console.info("the next `driftloop tick` takes the accepted batches in")
    project.close()


def show_batches(
    listed: list[entities.Batch],
    signals: bool = False,
    scored: dict[int, summaries.LivePoint] | None = None,
) -> None:
    """A table of batches, then the reasons of each quarantined one (long lines fit no column)
    and, with `signals`, the data-quality signals of each accepted one. With `scored` (batch
    id → the champion's evaluation of it), the metric realised on each batch ("live") and the
    accuracy estimated from calibrated confidences before its labels were used ("est. acc.")."""
    # Columns only where some batch has something to show: the table must fit a terminal.
    flagged = any(batch.quality for batch in listed)
    scored = {i: p for i, p in (scored or {}).items() if p.value is not None or p.estimated}
    estimated = any(point.estimated is not None for point in scored.values())
    extra = [*(["signals"] if flagged else []), *(["live"] if scored else []),
             *(["est. acc."] if estimated else [])]
    table = console.table("id", "file", "rows", "period", "status", "reasons", *extra)
    for batch in listed:
        period = _period(batch.start, batch.end) if batch.start and batch.end else ""
        found = sum(len(reasons) for reasons in batch.reasons.values())
        live, guess = _scores(scored.get(batch.id))
        table.add_row(
            str(batch.id),
            Path(batch.source_uri).name,
            str(batch.rows),
            period,
            _status(batch),
            str(found) if found else "",
            *([_signals(batch)] if flagged else []),
            *([live] if scored else []),
            *([guess] if estimated else []),
        )
    console.print(table)
    for batch in listed:
        if batch.reasons and batch.status == "quarantined":
            console.print(
                f"[red]batch {batch.id}[/red] ({Path(batch.source_uri).name}) quarantined:"
            )
            for reason in (r for reasons in batch.reasons.values() for r in reasons):
                console.print(f"  • {reason}", highlight=False)
        if signals and batch.quality:
            console.print(
                f"[yellow]batch {batch.id}[/yellow] ({Path(batch.source_uri).name}) "
                "accepted with data-quality signals:"
            )
            for message in (m for messages in batch.quality.values() for m in messages):
                console.print(f"  • {message}", highlight=False)


def _status(batch: entities.Batch) -> str:
    if batch.status == "accepted":
        again = f" (requeued {batch.requeued_from})" if batch.requeued_from else ""
        return f"[green]accepted[/green]{again}"
    if batch.status == "requeued":
        return "[dim]requeued[/dim]"
    return "[red]quarantined[/red]"


def _signals(batch: entities.Batch) -> str:
    """``"⚠ x, y (40 rows)"``: the columns with data-quality signals and the rows they flag."""
    if not batch.quality:
        return ""
    columns = list(batch.quality)
    named = ", ".join(columns[:3]) + (f" +{len(columns) - 3}" if len(columns) > 3 else "")
    return f"[yellow]⚠ {named} ({batch.quality_rows} rows)[/yellow]"


def _period(start: datetime, end: datetime) -> str:
    """A batch's time span, short: the end's year only when it differs from the start's.

    >>> _period(datetime(1997, 1, 1), datetime(1997, 4, 11))
    '1997-01-01 → 04-11'
    >>> _period(datetime(1997, 1, 1), datetime(2003, 4, 11))
    '1997-01-01 → 2003-04-11'
    """
    shown = "%m-%d" if start.year == end.year else "%Y-%m-%d"
    return f"{start:%Y-%m-%d} → {end.strftime(shown)}"


def _scores(point: summaries.LivePoint | None) -> tuple[str, str]:
    """The realised metric and the estimated accuracy of a batch, as table cells."""
    if point is None:
        return "", ""
    live = "" if point.value is None else f"{point.value:.4f}"
    return live, "" if point.estimated is None else f"{point.estimated:.4f}"
