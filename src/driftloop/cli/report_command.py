"""`driftloop report`: write the drift report of a batch (newest accepted by default; an
archived batch is read from the archive), or of the inputs served on a day (`--served`, from
the prediction archive), against
a model version's training profile (the champion's by default) as one self-contained HTML file,
with the pipeline's live metric and drift over time. Registered by `cli.main`; the backtest's
report is `driftloop backtest --out`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from driftloop.cli import console, options


def report(
    spec: Path = options.SPEC,
    out: Path = typer.Option(Path("driftloop-report.html"), "--out", "-o", help="HTML file."),
    batch: int | None = typer.Option(None, help="Batch id; default: the newest accepted one."),
    version: int | None = typer.Option(
        None, help="Model version whose training data is the reference; default: the champion."
    ),
    served: str | None = typer.Option(
        None, help="Instead of a batch, the inputs served on this day (YYYY-MM-DD), read from "
        "the prediction archive."),
) -> None:
    """Write the drift report: each column's test, p-values, effect and histograms."""
    from driftloop.controller import project as projects
    from driftloop.drift import histograms
    from driftloop.drift import report as drift_reports
    from driftloop.ui import drift_report, responsible_views, views

    started = time.perf_counter()
    project = console.guard(lambda: projects.open_project(spec))
    try:
        store, name = project.store, project.name
        number = version or store.aliases.get(name, "champion")
        if number is None:
            console.fail("no champion yet, so no reference data: run `driftloop tick` first")
        reference = console.guard(lambda: store.versions.get(name, number))
        if reference.profile_id is None:
            console.fail(f"v{number} has no training profile to compare with; choose --version")
        profile = store.profiles.get(reference.profile_id).profile
        if served is not None:
            frame, current = console.guard(lambda: _served(project, served))
        elif batch is None:
            newest = store.batches.list(name, status="accepted")
            if not newest:
                console.fail("no accepted batch yet: run `driftloop ingest` first")
            chosen = newest[-1]
        else:
            chosen = console.guard(lambda: store.batches.get(batch))
        if served is None:
            frame, current = _batch_rows(project, chosen)
        found = console.guard(lambda: drift_reports.detect_drift(profile, frame,
                                                                 project.spec.drift))
        shapes = histograms.column_histograms(profile, frame, [c.name for c in found.columns])
        sides = drift_report.Sides(
            reference=f"v{number}'s training data ({reference.metrics.get('train_rows', '?')} "
                      "rows, profiled)",
            current=current)
        fairness = store.findings.list(name, "fairness", last=1)
        html = drift_report.render_drift(
            found, shapes, sides, title=f"driftloop drift: {name}",
            history=views.charts(store, name),
            importance=responsible_views.importance_shares(store, name, number),
            fairness=fairness[0].report if fairness else None)
    finally:
        project.close()
    out.write_text(html, encoding="utf-8")
    console.ok(f"wrote {out}: {len(found.columns)} columns, {len(found.drifted_columns)} drifted, "
               f"{out.stat().st_size / 1024:.0f} KB in {time.perf_counter() - started:.1f} s")


def _batch_rows(project: Any, chosen: Any) -> tuple[Any, str]:
    """The rows of an accepted batch (from the archive if retention moved its file there)."""
    name = project.name
    # a quarantined batch keeps its rows as read (for requeue): not data to compare
    accepted = chosen.status == "accepted" and chosen.pipeline == name
    if not accepted or chosen.data_uri is None or chosen.data_sha256 is None:
        console.fail(f"batch {chosen.id} has no stored rows (it is {chosen.status}, of another "
                     f"pipeline, or its file was deleted); choose an accepted batch of {name!r}")
    frame = console.guard(lambda: project.artifacts.get_frame(chosen.data_uri,
                                                              chosen.data_sha256))
    return frame, f"batch {chosen.id} ({chosen.rows} rows, {chosen.source_uri})"


def _served(project: Any, day: str) -> tuple[Any, str]:
    """The inputs served on `day`, from the prediction archive."""
    from datetime import UTC, datetime, timedelta

    from driftloop.store import archive

    try:
        start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        console.fail(f"--served {day!r} is not a day; write YYYY-MM-DD")
    archived = archive.Archive(project.store, project.artifacts).read_predictions(
        project.name, since=start, until=start + timedelta(days=1))
    spec = project.spec
    frame = archive.served_rows(archived, spec.target, spec.timestamp or "at", labelled=False)
    if frame.empty:
        console.fail(f"the prediction archive holds nothing served on {day}")
    return frame, f"inputs served on {day} ({len(frame)} predictions, archived)"

