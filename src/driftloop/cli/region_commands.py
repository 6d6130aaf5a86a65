"""`driftloop regions status`: the pipeline in every region of `regions:`, metadata only.
`driftloop regions federate`: one federated round (`trainer.federated`) across the regions."""

from __future__ import annotations

from pathlib import Path

import typer

from driftloop.cli import console, options

app = typer.Typer(help="Regions of a pipeline (`regions:` in the spec).", no_args_is_help=True)


@app.command("status")
def status(spec: Path = options.SPEC) -> None:
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


@app.command("federate")
def federate(spec: Path = options.SPEC) -> None:
    """One federated round: every region ticks in a process of its own on its own data; those
    that train (a fired or waiting decision) send only parameters, which this process averages
    (FedAvg, weighted by rows) into one model; each region gates, stores and rolls it out.
    Run it on the schedule the regions train on (e.g. from cron); a region's `driftloop run`
    leaves its training to these rounds."""
    from driftloop.controller import federation

    done = console.guard(lambda: federation.run_round(spec))
    summary = done.summary
    if summary.aborted:
        console.info(f"no federated model this round: {summary.aborted}")
    else:
        console.ok(f"{summary.rounds} rounds over {len(summary.joined)} regions ("
                   + ", ".join(f"{n} {r} rows" for n, r in summary.joined.items()) + ")")
    grid = console.table("region", "trained", "version", "promoted", "why")
    for name, outcome in done.regions.items():
        grid.add_row(name, "yes" if name in summary.joined else "no",
                     "—" if outcome.version is None else f"v{outcome.version}",
                     "yes" if outcome.promoted else "no",
                     summary.declined.get(name) or outcome.reason)
    console.print(grid)
