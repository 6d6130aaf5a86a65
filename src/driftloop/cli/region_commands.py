"""`driftloop regions status`: the pipeline in every region of `regions:`, metadata only."""

from __future__ import annotations

from pathlib import Path

import typer

from driftloop.cli import console

app = typer.Typer(help="Regions of a pipeline (`regions:` in the spec).", no_args_is_help=True)
SPEC = typer.Option(Path("driftloop.yaml"), "--spec", "-s", help="The pipeline spec.")


@app.command("status")
def status(spec: Path = SPEC) -> None:
    """Each region's batches, versions, champion, live metric, newest decision and drift, read
    from its metadata store only (no data, no artifacts, no prediction log), with its local
    time."""
    from driftloop.controller import regions
    from driftloop.core import config

    loaded = console.guard(lambda: config.load_spec(spec))
    if not loaded.regions:
        console.fail(f"{spec}: the spec declares no `regions:`")
    found = regions.global_status(loaded, spec.resolve().parent)
    grid = console.table("region", "local time", "batches", "quarantined", "versions",
                         "champion", "live metric", "last decision", "drift",
                         title=f"{loaded.name} in {len(found)} regions")
    for row in found:
        when = f"{row.local_time:%a %H:%M} {row.local_time.tzname()}"
        if row.error is not None:
            grid.add_row(row.region, when, "", "", "", "", "", row.error, "")
            continue
        champion = "—" if row.champion is None else (
            f"v{row.champion}" + (f" ({row.metric} {row.champion_score:.3f})"
                                  if row.champion_score is not None else ""))
        live = "—" if row.live_metric is None else f"{row.live_metric:.3f} (v{row.live_version})"
        grid.add_row(row.region, when, str(row.accepted), str(row.quarantined), str(row.versions),
                     champion, live, row.last_decision or "—",
                     {True: "yes", False: "no", None: "—"}[row.drift])
    console.print(grid)
