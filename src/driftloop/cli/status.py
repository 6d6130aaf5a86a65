"""`driftloop status`: where every pipeline of the spec's store stands — champion, last tick,
pending decisions, a retraining the loop gave up on, quarantines of the last day, the lease.

The first command to run when something looks wrong: it reads the metadata store only (no
model loading, no pandas), as a Rich table or, with ``--json``, one JSON document.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from driftloop.cli import console, options


def status(
    spec: Path = options.SPEC,
    as_json: options.Json = False,
) -> None:
    """Where each pipeline stands: champion, last tick, pending decisions, given-up
    retrainings, quarantines in the last day, and who holds the lease."""
    from datetime import UTC, datetime

    from driftloop.controller import overview
    from driftloop.controller import project as projects
    from driftloop.core import config
    from driftloop.store import metadata
    from driftloop.train import fingerprint

    loaded = console.guard(lambda: config.load_spec(spec))
    base_dir = spec.resolve().parent
    url = console.guard(lambda: projects.store_url(loaded, base_dir))
    store = console.guard(lambda: metadata.MetadataStore.open(url))
    now = datetime.now(UTC)
    trainer = fingerprint.trainer_sha256(loaded.trainer, base_dir)
    names = [pipeline.name for pipeline in store.pipelines.list()]
    found = [overview.pipeline_status(store, name, now,
                                      trainer if name == loaded.name else None)
             for name in sorted(names, key=lambda name: name != loaded.name)]
    store.close()
    if as_json:
        document = {"at": now.isoformat(), "pipelines": [each.to_json() for each in found]}
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    if loaded.name not in names:
        console.info(f"pipeline {loaded.name!r} has no state yet; `driftloop tick` starts it")
    for each in found:
        console.print(_table(each, now))


def _table(status: Any, now: Any) -> Any:
    table = console.table("", "", title=f"pipeline {status.name}")
    table.show_header = False
    table.columns[0].style = "bold"
    champion = status.champion
    if champion is None:
        table.add_row("champion", "[red]none[/red]: nothing can be served")
    else:
        scores = [f"{champion.metric} {champion.validation:.4f} at the gate"
                  if champion.validation is not None else "",
                  f"live {champion.live:.4f}" if champion.live is not None else ""]
        table.add_row("champion", f"v{champion.version} since {_when(champion.since, now)}"
                      + "".join(f"; {score}" for score in scores if score))
    activity = status.last_activity
    table.add_row("last tick", "never" if activity is None
                  else f"{_when(activity.at, now)}: {_escape(activity.outcome)}")
    table.add_row("pending", "\n".join(_escape(p.what) for p in status.pending) or "nothing")
    if status.gave_up is not None:
        table.add_row("retraining", f"[red]{_escape(status.gave_up)}[/red]")
    quarantines = status.quarantined_last_day
    newest = (f"; newest {_when(quarantines.newest_at, now)}: "
              f"{_escape(quarantines.newest_reason or '')}" if quarantines.count else "")
    table.add_row("quarantined (1 day)", f"{quarantines.count} batch(es){newest}")
    lease = status.lease
    if lease is None or not lease.held:
        table.add_row("lease", "free")
    else:
        table.add_row("lease", f"{lease.holder} until {_when(lease.expires_at, now)}")
    return table


def _when(at: Any, now: Any) -> str:
    """`2024-05-01 12:30:00 UTC (3 min ago)`."""
    seconds = (now - at).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= size:
            span = f"{abs(seconds) / size:.0f} {unit}"
            break
    else:
        span = f"{abs(seconds):.0f} s"
    relative = f"{span} ago" if seconds >= 0 else f"in {span}"
    return f"{at:%Y-%m-%d %H:%M:%S} UTC ({relative})"


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
