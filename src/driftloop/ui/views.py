"""What the dashboard's pages show, read from the store: the pipelines overview, a pipeline's
timeline (events and chart series), and the serving view. Plain dicts and lists ready for the
templates; no HTML here.

Called by `ui.dashboard` once per page view. Every read is a handful of indexed queries; the
timeline lists the newest `limit` events and charts at most `MAX_FEATURES` drift series (the
features that drifted most), so a pipeline with a thousand columns still renders a small page.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from driftloop.controller import attempts
from driftloop.store import entities, metadata, serving, serving_stats, summaries

MAX_FEATURES = 8
"""Drift series drawn on the timeline: the features with the largest effect."""
DRIFT_DECISIONS = 500
"""Decisions the drift chart reads, newest first (each carries its whole drift report)."""


@dataclass(frozen=True)
class Event:
    """One line of a pipeline's timeline."""

    at: datetime
    kind: str
    text: str
    version: int | None = None
    tone: str = ""
    """``good``, ``warn``, ``bad`` or ``""`` (neutral): the colour of the line."""


def overview(store: metadata.MetadataStore) -> list[dict[str, Any]]:
    """One row per pipeline: champion, last batch, last decision and a health word."""
    rows = []
    for pipeline in store.pipelines.list():
        name = pipeline.name
        aliases = store.aliases.all(name)
        batches = summaries.newest_batches(store, name, 1)
        decisions = store.decisions.list(name, limit=1)
        evaluations = store.evaluations.list(name, last=1)
        champion = aliases.get("champion")
        last_batch = batches[0] if batches else None
        health, why = _health(champion, last_batch, decisions[-1] if decisions else None)
        gave_up = attempts.latest_give_up(store, name)
        if gave_up is not None:  # the loop stopped retraining: say so above all else
            health, why = "bad", gave_up.message()
        rows.append({
            "name": name, "champion": champion, "aliases": aliases,
            "last_batch": last_batch, "last_decision": decisions[-1] if decisions else None,
            "live_metric": evaluations[-1] if evaluations else None,
            "health": health, "health_reason": why,
        })
    return rows


def _health(
    champion: int | None, batch: entities.Batch | None, decision: entities.Decision | None,
) -> tuple[str, str]:
    if champion is None:
        return "bad", "no champion: nothing can be served"
    if batch is not None and batch.status != "accepted":
        return "warn", f"the newest batch {batch.id} was {batch.status}"
    if decision is not None and decision.kind == "rollout" and decision.fired and (
            decision.evidence.get("outcome") == "rollback"):
        return "warn", f"rollout of v{decision.evidence.get('version')} was rolled back"
    return "good", "serving, newest data accepted"


def timeline(store: metadata.MetadataStore, name: str, limit: int = 200) -> list[Event]:
    """The newest `limit` events of pipeline `name`, newest first."""
    events: list[Event] = []
    for batch in summaries.newest_batches(store, name, limit):
        events.append(_batch_event(batch))
    for decision in store.decisions.list(name, limit=limit):
        events.extend(_decision_events(decision))
    for run in store.runs.list(name, last=limit):
        events.append(Event(run.started_at, "training",
                            f"training run {run.id} ({run.trainer}) on {len(run.batch_ids)} "
                            f"batches: {run.status}" + (f", {run.error}" if run.error else ""),
                            tone="bad" if run.status == "failed" else ""))
    for version in store.versions.list(name, last=limit):
        gate = version.gate_report or {}
        passed = bool(gate.get("passed"))
        events.append(Event(version.created_at, "gate",
                            f"v{version.version} registered; gate "
                            f"{'passed' if passed else 'failed'}: {gate.get('reason', '')}",
                            version=version.version, tone="good" if passed else "bad"))
    for move in store.aliases.history(name, last=limit):
        events.append(_move_event(move))
    events.sort(key=lambda event: event.at, reverse=True)
    return events[:limit]


def _batch_event(batch: entities.Batch) -> Event:
    """A batch: accepted, accepted with data-quality signals (``data quality``, with the
    columns and the signals' text), quarantined (with the reasons) or requeued."""
    origin = posixpath.basename(batch.source_uri.rstrip("/")) or batch.source_uri
    head = f"batch {batch.id} ({origin[:80]}): {batch.rows} rows"
    if batch.status == "requeued":
        return Event(batch.created_at, "quarantine",
                     f"{head} quarantined, later requeued as a new batch")
    if batch.status != "accepted":
        # each reason names its column already
        reasons = "; ".join(r for why in batch.reasons.values() for r in why)
        return Event(batch.created_at, "quarantine", f"{head} quarantined ({reasons[:300]})",
                     tone="bad")
    again = f", requeued from batch {batch.requeued_from}" if batch.requeued_from else ""
    if not batch.quality:
        return Event(batch.created_at, "batch", f"{head} accepted{again}")
    signals = "; ".join(m for messages in batch.quality.values() for m in messages)
    return Event(batch.created_at, "data quality",
                 f"{head} accepted{again}, with data-quality signals in "
                 f"{', '.join(batch.quality)} ({batch.quality_rows} rows): {signals[:300]}",
                 tone="warn")


def _decision_events(decision: entities.Decision) -> Iterable[Event]:
    evidence = decision.evidence
    if decision.kind == "retrain":
        drift = evidence.get("drift") or {}
        drifted = [c["name"] for c in drift.get("columns", []) if c.get("drifted")]
        if drifted:
            yield Event(decision.at, "drift",
                        f"drift in {len(drifted)} column(s): {', '.join(drifted[:10])}"
                        + (" …" if len(drifted) > 10 else ""), tone="bad")
        policy = evidence.get("policy") or {}
        yield Event(decision.at, "decision",
                    f"decision {decision.id}: {'retrain' if decision.fired else 'no retrain'}"
                    f" — {policy.get('reason', '')}", tone="good" if decision.fired else "")
    elif decision.kind == "rollout":
        yield Event(decision.at, "rollout",
                    f"rollout of v{evidence.get('version')}: {evidence.get('outcome')} — "
                    f"{evidence.get('reason', '')}", version=evidence.get("version"),
                    tone={"promote": "good", "rollback": "bad"}.get(
                        str(evidence.get("outcome")), ""))
    else:
        yield Event(decision.at, decision.kind,
                    f"{decision.kind} {decision.id}: {evidence.get('reason', '')}")


_MOVE_KINDS = {"promote": "promotion", "rollback": "rollback", "rollout": "rollout start",
               "rollout.end": "alias cleared"}


def _move_event(move: entities.AliasMove) -> Event:
    kind = _MOVE_KINDS.get(move.action, "promotion")
    if kind == "promotion" and move.version is None:
        kind = "alias cleared"
    return Event(move.at, kind,
                 f"{move.alias}: v{move.previous or '-'} → v{move.version or '-'} by "
                 f"{move.actor} ({move.reason})", version=move.version or move.previous,
                 tone={"rollback": "bad", "promotion": "good"}.get(kind, ""))


def charts(store: metadata.MetadataStore, name: str) -> dict[str, Any]:
    """The timeline's chart data: the live metric per evaluated batch and the drift effect per
    feature per decision (the newest `DRIFT_DECISIONS`), each against the end time of its
    newest batch (seconds)."""
    metric_name = ""
    live: dict[float, list[float]] = {}
    estimated: dict[float, list[float]] = {}
    for point in summaries.live_metric(store, name):
        second = point.at.timestamp()
        if point.estimated is not None and math.isfinite(point.estimated):
            estimated.setdefault(second, []).append(point.estimated)
        if point.value is None or not math.isfinite(point.value):
            continue
        metric_name = point.metric
        live.setdefault(second, []).append(point.value)
    times = sorted(live.keys() | estimated.keys())
    series = {metric_name or "metric": [_mean(live.get(t)) for t in times]}
    if estimated:  # a second series: accuracy estimated before the labels came (CBPE)
        series["estimated accuracy"] = [_mean(estimated.get(t)) for t in times]
    decisions = store.decisions.list(name, kind="retrain", limit=DRIFT_DECISIONS)
    first = min((int(d.evidence.get("last_batch_id") or 0) for d in decisions), default=0)
    ends = {b.id: b.end or b.created_at
            for b in store.batches.list(name, status="accepted", after_id=first - 1)}
    effects: dict[float, dict[str, float]] = {}
    for decision in decisions:
        drift = decision.evidence.get("drift") or {}
        at = ends.get(int(decision.evidence.get("last_batch_id") or 0), decision.at)
        row = effects.setdefault(at.timestamp(), {})
        for column in drift.get("columns", []):
            if column.get("effect") is not None:
                row[column["name"]] = float(column["effect"])
    top = sorted({f for row in effects.values() for f in row},
                 key=lambda f: -max(row.get(f, 0.0) for row in effects.values()))[:MAX_FEATURES]
    moments = sorted(effects)
    return {
        "live": chart(times, series, metric_name),
        "drift": chart(moments, {f: [_round(effects[m].get(f)) for m in moments] for f in top},
                       "effect size"),
    }


def chart(x: list[float], series: dict[str, list[Any]], label: str) -> dict[str, Any]:
    """What `static/dashboard.js` draws: x in seconds, one list of y per named series."""
    return {"x": x, "series": [{"label": name, "values": values}
                               for name, values in series.items()], "label": label}


def _mean(values: list[float] | None) -> float | None:
    return None if not values else round(sum(values) / len(values), 5)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def serving_view(
    store: metadata.MetadataStore, name: str, now: datetime, hours: float = 24.0,
) -> dict[str, Any]:
    """Traffic and latency per alias per minute over the last `hours`, the totals per alias
    and version, and the newest rollout decision (the live comparison's evidence)."""
    minutes = serving_stats.ServingStats(serving.ServingStore(store)).minutes(
        name, since=now - timedelta(hours=hours))
    series: dict[str, dict[float, serving_stats.AliasStats]] = {}
    totals: dict[tuple[str, int], serving_stats.AliasStats] = {}
    for item in minutes:
        stats, at = item.stats, item.minute.timestamp()
        per_alias = series.setdefault(stats.alias, {})
        per_alias[at] = _merge(per_alias.get(at), stats)
        key = (stats.alias, stats.version)
        totals[key] = _merge(totals.get(key), stats)
    xs = sorted({t for per_alias in series.values() for t in per_alias})
    aliases = sorted(series)
    rollouts = store.decisions.list(name, kind="rollout", limit=1)
    return {
        "aliases": store.aliases.all(name),
        "traffic": chart(xs, {a: [_at(series[a], t, lambda s: s.requests) for t in xs]
                              for a in aliases}, "requests per minute"),
        "latency": chart(xs, {a: [_at(series[a], t, lambda s: _round(s.p99_ms)) for t in xs]
                              for a in aliases}, "p99 latency (ms)"),
        "totals": [totals[key].to_json() for key in sorted(totals)],
        "rollout": rollouts[-1] if rollouts else None,
        "hours": hours,
    }


def _merge(
    seen: serving_stats.AliasStats | None, more: serving_stats.AliasStats,
) -> serving_stats.AliasStats:
    """The sums of two stats of one alias (the version of `more` is kept)."""
    if seen is None:
        return more
    latency = dict(seen.latency)
    for index, count in more.latency.items():
        latency[index] = latency.get(index, 0) + count
    return serving_stats.AliasStats(more.alias, more.version, seen.requests + more.requests,
                                    seen.errors + more.errors, latency)


def _at(
    per_minute: dict[float, serving_stats.AliasStats], at: float,
    pick: Callable[[serving_stats.AliasStats], Any],
) -> Any:
    found = per_minute.get(at)
    return None if found is None else pick(found)
