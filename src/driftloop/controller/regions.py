"""The global view of a pipeline run in several regions: metadata only, never rows.

`global_status(spec, base_dir)` opens each region's metadata store (not its artifacts, not its
source, not its prediction log) and reads counts and metrics: batches accepted and
quarantined, model versions, the champion and its gate score, the newest live metric, the
newest decision and whether it saw drift, each region's local time. `driftloop regions status`
prints it and the dashboard's regions page shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from driftloop.controller import project as projects
from driftloop.core import clock as clocks
from driftloop.core import config, errors
from driftloop.store import metadata, summaries


@dataclass(frozen=True)
class RegionStatus:
    """One region's pipeline, in counts and metrics."""

    region: str
    timezone: str
    local_time: datetime
    error: str | None = None
    accepted: int = 0
    quarantined: int = 0
    versions: int = 0
    champion: int | None = None
    champion_score: float | None = None
    metric: str = ""
    live_metric: float | None = None
    live_version: int | None = None
    last_decision: str | None = None
    last_decision_at: datetime | None = None
    drift: bool | None = None


def global_status(
    spec: config.PipelineSpec, base_dir: Path, clock: clocks.Clock | None = None,
) -> list[RegionStatus]:
    """Every region's status (a region whose store cannot be read says why)."""
    now = (clock or clocks.SystemClock()).now()
    found = []
    for region in spec.regions:
        local = now.astimezone(ZoneInfo(region.timezone))
        url = projects.resolve_store_url(region.store, base_dir)
        try:
            store = metadata.MetadataStore.open(url)
        except (sa.exc.SQLAlchemyError, OSError) as exc:  # the region is unreachable
            found.append(RegionStatus(region.name, region.timezone, local,
                                      error=f"{type(exc).__name__}: {exc}"))
            continue
        try:
            found.append(_status(store, spec, region.name, region.timezone, local))
        finally:
            store.close()
    return found


def _status(
    store: metadata.MetadataStore, spec: config.PipelineSpec, region: str, zone: str,
    local: datetime,
) -> RegionStatus:
    name, metric = spec.name, spec.gate.metric
    try:
        store.pipelines.get(name)
    except errors.NotFoundError:
        return RegionStatus(region, zone, local, error="no data yet (no tick ran here)",
                            metric=metric)
    champion = store.aliases.get(name, "champion")
    score = None
    if champion is not None:
        score = store.versions.get(name, champion).metrics.get(metric)
    live = summaries.live_metric(store, name)
    newest = store.decisions.list(name, limit=1)
    retrain = store.decisions.list(name, kind="retrain", limit=1)
    versions = store.versions.list(name, last=1)
    return RegionStatus(
        region=region, timezone=zone, local_time=local,
        accepted=store.batches.count(name, "accepted"),
        quarantined=store.batches.count(name, "quarantined"),
        versions=versions[0].version if versions else 0,
        champion=champion, champion_score=score, metric=metric,
        live_metric=live[-1].value if live else None,
        live_version=live[-1].version if live else None,
        last_decision=_describe(newest[0].kind, newest[0].fired, newest[0].evidence)
        if newest else None,
        last_decision_at=newest[0].at if newest else None,
        drift=_drift(retrain[0].evidence) if retrain else None,
    )


def _describe(kind: str, fired: bool, evidence: dict[str, Any]) -> str:
    outcome = evidence.get("outcome")
    return f"{kind} {outcome}" if outcome else f"{kind} {'fired' if fired else 'not fired'}"


def _drift(evidence: dict[str, Any]) -> bool:
    results = (evidence.get("policy") or {}).get("results") or []
    return any(r.get("kind") == "drift" and r.get("fired") for r in results)
