"""`driftloop gc`: find (and with ``--yes`` delete) artifact files that no model version or
batch references, such as a model file a killed controller wrote but never recorded, and
archived files (`store.archive`) older than the spec's `retention.archives`.

What counts as unreferenced, and why young files are spared: `store.orphans`. An archived
file that gc deletes keeps its record, marked deleted (what was there, its sha256, when it
went), so `driftloop backtest --archive` knows that history is gone rather than missing.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import typer

from driftloop.cli import console, options


def gc(
    spec: Path = options.SPEC,
    yes: bool = typer.Option(False, "--yes", help="Delete them (default: only list them)."),
    min_age: str = typer.Option(
        "1h", "--min-age", help="Spare files younger than this (a tick may be about to record "
        "one): 90s, 15m, 1h, 2d."),
    actor: str | None = options.ACTOR,
) -> None:
    """List artifact files no model version or batch references, and archived files past
    `retention.archives`; `--yes` deletes them (audited). The artifact folder must belong to
    this pipeline's store alone."""
    from driftloop.controller import project as projects
    from driftloop.core import spec_base

    age = spec_base.parse_duration(min_age)
    if isinstance(age, str):
        try:
            age = timedelta(seconds=float(age))
        except ValueError:
            console.fail(f"--min-age {min_age!r} is not a duration; write e.g. 90s, 15m, 1h, 2d")
    project = console.guard(lambda: projects.open_project(spec))
    try:
        _orphans(project, age, min_age, yes, actor or projects.whoami())
        _archives(project, yes, actor or projects.whoami())
    finally:
        project.close()


def _orphans(project: Any, age: timedelta, min_age: str, yes: bool, actor: str) -> None:
    from driftloop.store import orphans

    found = orphans.find_orphans(project.store, project.artifacts, min_age=age)
    if not found:
        console.ok(f"no unreferenced files older than {min_age} in {project.artifacts.url}")
        return
    table = console.table("file", "bytes", "written", "why",
                          title=f"unreferenced files in {project.artifacts.url}")
    table.columns[0].overflow = "fold"  # a long name wraps whole, never cut with an ellipsis
    for orphan in found:
        written = "" if orphan.modified is None else f"{orphan.modified:%Y-%m-%d %H:%M}"
        why = "an unfinished write" if orphan.partial else "no version or batch refers to it"
        table.add_row(orphan.name, f"{orphan.size:,}", written, why)
    console.print(table)
    total = sum(orphan.size for orphan in found)
    if not yes:
        console.info(f"{len(found)} file(s), {total:,} bytes would go; `driftloop gc --yes` "
                     "deletes them")
        return
    gone = orphans.remove(project.store, project.artifacts, found)
    freed = sum(orphan.size for orphan in gone)
    project.store.audit.add(actor, "artifacts.gc", project.artifacts.url, {
        "files": [orphan.uri for orphan in gone], "bytes": freed, "min_age": min_age})
    console.ok(f"deleted {len(gone)} file(s), {freed:,} bytes")


def _archives(project: Any, yes: bool, actor: str) -> None:
    from driftloop.store import archive

    keep = project.spec.retention.archives
    if keep is None:
        console.ok("archived files are kept for good (retention.archives: null)")
        return
    files = archive.Archive(project.store, project.artifacts)
    found = files.expired(project.clock.now() - keep)
    if not found:
        console.ok(f"no archived file older than {keep.days} days (retention.archives)")
        return
    table = console.table("pipeline", "kind", "day", "rows", "bytes", "archived",
                          title=f"archived files past retention.archives ({keep.days} days)")
    for record in found:
        table.add_row(record.pipeline, record.kind, record.day, f"{record.rows:,}",
                      f"{record.bytes:,}", f"{record.created_at:%Y-%m-%d}")
    console.print(table)
    total = sum(record.bytes for record in found)
    if not yes:
        console.info(f"{len(found)} archived file(s), {total:,} bytes would go; "
                     "`driftloop gc --yes` deletes them")
        return
    gone = files.delete(found)
    project.store.audit.add(actor, "archives.gc", project.artifacts.url, {
        "files": [record.uri for record in gone], "bytes": sum(r.bytes for r in gone),
        "older_than_days": keep.days})
    console.ok(f"deleted {len(gone)} archived file(s), {sum(r.bytes for r in gone):,} bytes")
