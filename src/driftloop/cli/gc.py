"""`driftloop gc`: find (and with ``--yes`` delete) artifact files that no model version or
batch references, such as a model file a killed controller wrote but never recorded.

What counts as unreferenced, and why young files are spared: `store.orphans`.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import typer

from driftloop.cli import console

SPEC = typer.Option(Path("driftloop.yaml"), "--spec", "-s", help="The pipeline spec.")


def gc(
    spec: Path = SPEC,
    yes: bool = typer.Option(False, "--yes", help="Delete them (default: only list them)."),
    min_age: str = typer.Option(
        "1h", "--min-age", help="Spare files younger than this (a tick may be about to record "
        "one): 90s, 15m, 1h, 2d."),
    actor: str | None = typer.Option(None, help="Who deletes (audit log); default: the OS user."),
) -> None:
    """List artifact files no model version or batch references; `--yes` deletes them
    (audited). The artifact folder must belong to this pipeline's store alone."""
    from driftloop.controller import project as projects
    from driftloop.core import spec_base
    from driftloop.store import orphans

    age = spec_base.parse_duration(min_age)
    if isinstance(age, str):
        try:
            age = timedelta(seconds=float(age))
        except ValueError:
            console.fail(f"--min-age {min_age!r} is not a duration; write e.g. 90s, 15m, 1h, 2d")
    project = console.guard(lambda: projects.open_project(spec))
    found = orphans.find_orphans(project.store, project.artifacts, min_age=age)
    if not found:
        console.ok(f"no unreferenced files older than {min_age} in {project.artifacts.url}")
        project.close()
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
        project.close()
        return
    gone = orphans.remove(project.store, project.artifacts, found)
    freed = sum(orphan.size for orphan in gone)
    project.store.audit(actor or projects.whoami(), "artifacts.gc", project.artifacts.url, {
        "files": [orphan.uri for orphan in gone], "bytes": freed, "min_age": min_age})
    console.ok(f"deleted {len(gone)} file(s), {freed:,} bytes")
    project.close()
