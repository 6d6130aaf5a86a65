"""Rollouts: put a gated version under live test, then promote or roll it back on live evidence.

`retrain.promote` calls `start_rollout`: with the spec's `rollout.strategy: replace` the
champion moves at once; otherwise the strategy's test alias (``shadow``, ``canary`` or
``challenger``) moves to the new version and the servers start routing to it
(`server.routing`, `server.shadow`). Every tick calls `evaluate_rollout`, which compares the
version under test with the champion over the time since the test started:

* safety first: the challenger's model errors (`serving_stats`) above `max_error_rate` of its
  requests (counted against at least `min_requests`, so a burst of early errors acts at once),
  or its p99 latency above `max_p99_ms` once it has `min_requests` requests → roll back;
* then the live metric (the gate's metric, `gate.metrics`) on labelled predictions: a
  bootstrap confidence interval of challenger − champion (positive = challenger better),
  paired for shadow (both models scored the same records; the shadow's prediction id is
  `shadow_id` of the champion's, so the champion's label serves both) and unpaired for
  canary / A-B (different records). Interval wholly below `-max_metric_drop` → roll back;
  lower end at or above `-max_metric_drop` → promote; otherwise, or below `min_requests` /
  `min_labels`, wait.

A promotion, and the start of a live test, happens only inside the spec's deployment windows
and outside its freezes (`rollout.windows`, `rollout.freeze`), and after an earlier stage
region's live test passed (`regions: ... after:`), once (`controller.readiness`)
there is a champion: outside, a ``rollout`` decision with outcome ``waiting`` says until when,
and the tick that comes after the window opens does it (`retrain.promote_pending` for a gated
version, `evaluate_rollout` for a live test). The first version goes live at once (there is
nothing else to serve).

Each outcome is a decision of kind ``rollout`` with its evidence (counts, metric per alias, the
interval, error rates, latency); a wait is recorded only when its counts changed, so ticks on
unchanged state add nothing. The decision is written before the aliases move: a crash in
between is repaired by the next tick (a test alias equal to the champion is cleared).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from driftloop.controller import live_scores, readiness
from driftloop.controller import project as projects
from driftloop.store import entities, serving

_SHADOW_NAMESPACE = uuid.UUID("5d3f0c1e-6a57-4b8e-9d0a-3c1f2e7b8a90")


def shadow_id(champion_id: str) -> str:
    """The id of the shadow's prediction for the record the champion answered as `champion_id`.

    >>> shadow_id("7d1c4a7e-0000-4000-8000-000000000001") == shadow_id(
    ...     "7d1c4a7e-0000-4000-8000-000000000001")
    True
    """
    return str(uuid.uuid5(_SHADOW_NAMESPACE, champion_id))


def start_rollout(
    project: projects.Project,
    version: int,
    actor: str,
    reason: str = "",
) -> entities.AliasMove | None:
    """Put `version` live as the spec's strategy says: the champion for `replace` (or when
    there is no champion yet), else the strategy's test alias. None when there is nothing to
    do: `version` is the champion, or it is (or was) under test already, or it waits for a
    deployment window (`readiness.must_wait`)."""
    spec, store, name = project.spec.rollout, project.store, project.name
    champion = store.aliases.get(name, "champion")
    if champion == version:
        return None
    alias = spec.test_alias
    if alias is not None and champion is not None and any(
        move.version == version for move in store.aliases.history(name, alias)
    ):
        return None  # tested before (promoted or rolled back): a decision was made
    if champion is not None and readiness.must_wait(project, version, alias or "champion"):
        return None
    if alias is None or champion is None:
        return store.aliases.set(
            name, "champion", version, actor=actor, reason=reason or "promoted", action="promote"
        )
    return store.aliases.set(
        name,
        alias,
        version,
        actor=actor,
        action="rollout",
        reason=f"{spec.strategy} rollout started" + (f": {reason}" if reason else ""),
    )


def evaluate_rollout(
    project: projects.Project,
    serving_store: serving.ServingStore,
    actor: str,
    seed: int = 0,
) -> entities.Decision | None:
    """Judge the version under test; promote, roll back or wait (see the module docstring).
    None when no rollout is under way (or a wait whose counts did not change)."""
    spec, store, name = project.spec.rollout, project.store, project.name
    alias = spec.test_alias
    if alias is None:
        return None
    aliases = store.aliases.all(name)
    version, champion = aliases.get(alias), aliases.get("champion")
    if version is None:
        return None
    base: dict[str, Any] = {
        "strategy": spec.strategy,
        "alias": alias,
        "version": version,
        "champion": champion,
    }
    if champion is None or champion == version:
        why = (
            "no champion to compare with"
            if champion is None
            else "the champion already serves this version (an interrupted promotion)"
        )
        return _conclude(project, alias, version, "promote", why, base, actor)
    from driftloop.store import serving_stats  # only while a version is under test

    started = _started(store, name, alias, version)
    counts = serving_stats.ServingStats(serving_store)
    tested = counts.read(name, alias=alias, version=version, since=started)
    held = counts.read(name, alias="champion", version=champion, since=started)
    live = _live_metric(project, serving_store, alias, version, champion, started, seed)
    evidence = {
        **base,
        "since": started.isoformat(),
        "requests": {alias: tested.to_json(), "champion": held.to_json()},
        "metric": live,
        "criteria": {
            key: getattr(spec, key)
            for key in (
                "min_requests",
                "min_labels",
                "confidence",
                "max_error_rate",
                "max_p99_ms",
                "max_metric_drop",
            )
        },
    }
    p99 = tested.p99_ms
    drop = spec.max_metric_drop
    if tested.errors > spec.max_error_rate * max(tested.requests, spec.min_requests):
        outcome, why = (
            "rollback",
            (f"error rate {tested.errors}/{tested.requests} exceeds {spec.max_error_rate:g}"),
        )
    elif tested.requests >= spec.min_requests and p99 is not None and p99 > spec.max_p99_ms:
        outcome, why = "rollback", f"p99 latency {p99:.3g} ms exceeds {spec.max_p99_ms:g} ms"
    elif tested.requests < spec.min_requests:
        outcome, why = "wait", f"{tested.requests} of {spec.min_requests} requests"
    elif live["labels"] < spec.min_labels:
        outcome, why = "wait", f"{live['labels']} of {spec.min_labels} labels"
    elif live["ci_low"] is None or live["ci_high"] is None:
        outcome, why = "wait", f"the live metric is not available: {live['note']}"
    elif live["ci_high"] < -drop:
        outcome, why = "rollback", _metric_reason(live, "is below", -drop, spec.confidence)
    elif live["ci_low"] >= -drop:
        outcome, why = "promote", _metric_reason(live, "is not below", -drop, spec.confidence)
    else:
        outcome, why = "wait", _metric_reason(live, "straddles", -drop, spec.confidence)
    if outcome == "wait" and _same_wait(store, name, evidence):
        return None
    if outcome == "promote" and readiness.must_wait(project, version, alias):
        return None
    return _conclude(project, alias, version, outcome, why, evidence, actor)


def _conclude(
    project: projects.Project,
    alias: str,
    version: int,
    outcome: str,
    why: str,
    evidence: dict[str, Any],
    actor: str,
) -> entities.Decision:
    store, name = project.store, project.name
    decision = store.decisions.add(
        name,
        kind="rollout",
        fired=outcome != "wait",
        evidence={**evidence, "outcome": outcome, "reason": why},
    )
    if outcome == "promote":
        if store.aliases.get(name, "champion") != version:
            store.aliases.set(
                name,
                "champion",
                version,
                actor=actor,
                action="promote",
                reason=f"{alias} v{version} passed its live test: {why}",
            )
        store.aliases.set(
            name,
            alias,
            None,
            actor=actor,
            action="rollout.end",
            reason=f"v{version} promoted to champion",
        )
    elif outcome == "rollback":
        store.aliases.set(
            name,
            alias,
            None,
            actor=actor,
            action="rollback",
            reason=f"{alias} v{version} failed its live test: {why}",
        )
    return decision


def _started(store: Any, name: str, alias: str, version: int) -> datetime:
    """When `alias` last moved to `version` (the start of its live test)."""
    moves = [m for m in store.aliases.history(name, alias) if m.version == version]
    at: datetime = moves[-1].at if moves else store.clock.now()
    return at


def _same_wait(store: Any, name: str, evidence: dict[str, Any]) -> bool:
    """True if the newest rollout decision is a wait on the same version with the same counts."""
    last = store.decisions.list(name, kind="rollout", limit=1)
    if not last or last[0].evidence.get("outcome") != "wait":
        return False
    before = last[0].evidence

    def counts(found: dict[str, Any]) -> Any:
        return (
            found.get("version"),
            found.get("since"),
            {a: r.get("requests") for a, r in (found.get("requests") or {}).items()},
            (found.get("metric") or {}).get("labels"),
        )

    return bool(counts(before) == counts(evidence))


# -- the live metric ------------------------------------------------------------------------------


def _live_metric(
    project: projects.Project,
    serving_store: serving.ServingStore,
    alias: str,
    version: int,
    champion: int,
    started: datetime,
    seed: int,
) -> dict[str, Any]:
    import numpy as np

    from driftloop.gate import gate, metrics

    spec, name = project.spec, project.name
    metric = metrics.get_metric(spec.gate.metric, spec.task)
    out: dict[str, Any] = {
        "name": metric.name,
        "greater_is_better": metric.greater_is_better,
        "paired": alias == "shadow",
        "labels": 0,
        alias: None,
        "champion": None,
        "diff": None,
        "ci_low": None,
        "ci_high": None,
        "champion_labels": 0,
        "note": "",
    }
    held = [
        item
        for item in serving_store.labelled(name, alias="champion", version=champion)
        if item.prediction.at >= started
    ]
    if alias == "shadow":
        shadowed = {
            p.id: p
            for p in serving_store.list_predictions(
                name, alias="shadow", version=version, since=started
            )
        }
        pairs = [
            (item, shadowed[shadow_id(item.prediction.id)])
            for item in held
            if shadow_id(item.prediction.id) in shadowed
        ]
        held = [item for item, _ in pairs]
        tested_predictions = [p for _, p in pairs]
        tested_labels = [item.label for item in held]
    else:
        tested = [
            item
            for item in serving_store.labelled(name, alias=alias, version=version)
            if item.prediction.at >= started
        ]
        tested_predictions = [item.prediction for item in tested]
        tested_labels = [item.label for item in tested]
    out["labels"], out["champion_labels"] = len(tested_predictions), len(held)
    if not tested_predictions or not held:
        out["note"] = "no labelled predictions yet"
        return out
    try:
        y_new = live_scores.labels(metric, tested_labels)
        y_old = live_scores.labels(metric, [item.label for item in held])
        new = live_scores.predictions(metric, tested_predictions)
        old = live_scores.predictions(metric, [item.prediction for item in held])
        new_score, old_score = metric.score(y_new, new), metric.score(y_old, old)
        resamples = spec.gate.bootstrap
        if out["paired"]:
            diffs = gate.bootstrap_diffs(metric, y_new, new, old, resamples, seed)
        else:
            sign = 1.0 if metric.greater_is_better else -1.0
            diffs = sign * (
                live_scores.bootstrap(metric, y_new, new, resamples, seed)
                - live_scores.bootstrap(metric, y_old, old, resamples, seed + 1)
            )
    except (ValueError, TypeError, KeyError) as exc:  # e.g. probabilities missing
        out["note"] = f"cannot compute {metric.name}: {exc}"
        return out
    sign = 1.0 if metric.greater_is_better else -1.0
    out[alias], out["champion"] = new_score, old_score
    out["diff"] = sign * (new_score - old_score)
    if np.isnan(diffs).all():
        out["note"] = f"{metric.name} is undefined on every resample"
        return out
    tail = (1.0 - project.spec.rollout.confidence) / 2.0
    low, high = (float(v) for v in np.nanquantile(diffs, [tail, 1.0 - tail]))
    out["ci_low"], out["ci_high"] = low, high
    return out


def _metric_reason(live: dict[str, Any], verb: str, bound: float, confidence: float) -> str:
    return (
        f"live {live['name']} diff {live['diff']:.4g} (challenger − champion, + = better), "
        f"{confidence:.0%} CI [{live['ci_low']:.4g}, {live['ci_high']:.4g}] {verb} "
        f"{bound:.4g} ({live['labels']} labels, champion {live['champion_labels']})"
    )
