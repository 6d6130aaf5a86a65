"""Gather the policy's `Signals` from the store: drift of the new rows against the champion's
training profile, the live metric window, concept-drift detections, volume, manual requests.

Called by the tick once per step, after ingest and evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from driftloop.controller import evaluate
from driftloop.controller import project as projects
from driftloop.controller.history import BATCH_COLUMN
from driftloop.core.types import JSON
from driftloop.drift import report as drift_report
from driftloop.policy import signals as policy_signals
from driftloop.store import entities


@dataclass(frozen=True)
class Gathered:
    """The signals plus the ids that caused them (the decision's `caused_by`)."""

    signals: policy_signals.Signals
    caused_by: JSON
    last_batch_id: int


def gather(
    project: projects.Project,
    rows: pd.DataFrame,
    champion: entities.ModelVersion | None,
    monitor: evaluate.ConceptMonitor,
    last_decision: entities.Decision | None,
    last_fired: entities.Decision | None,
) -> Gathered:
    """Everything the policy needs, computed from stored state only (level-triggered)."""
    store, spec, name = project.store, project.spec, project.name
    seen = int(last_decision.evidence.get("last_batch_id", 0)) if last_decision else 0
    new_batches = [int(b) for b in rows[BATCH_COLUMN].unique() if b > seen] if len(rows) else []
    last_batch = max(new_batches, default=seen)
    trained_upto = int(last_fired.evidence.get("last_batch_id", 0)) if last_fired else 0
    labelled = rows[rows[spec.target].notna()] if len(rows) else rows
    new_labelled = int((labelled[BATCH_COLUMN] > trained_upto).sum()) if len(labelled) else 0
    caused_by: JSON = {"batches": new_batches}

    drift = None
    live_metric, live_rows, champion_metric, concept = None, 0, None, False
    if champion is not None:
        champion_metric = champion.metrics.get(spec.gate.metric)
        if new_batches and champion.profile_id is not None:
            fresh = rows[rows[BATCH_COLUMN].isin(new_batches)]
            profile = store.get_profile(champion.profile_id).profile
            report = drift_report.detect_drift(profile, fresh, spec.drift)
            drift = report.to_json()
            caused_by["profile"] = champion.profile_id
        live_metric, live_rows, used = _live_window(project, monitor.evaluations, champion.version)
        caused_by["evaluations"] = used
        detections = [e for e in monitor.update(champion.version) if e > _last_evaluation(last_decision)]
        concept = bool(detections)
        if concept:
            caused_by["concept_drift_at"] = detections
    manual = _pending_request(project, last_decision)
    if manual is not None:
        caused_by["request"] = manual.id
    signals = policy_signals.Signals(
        now=project.clock.now(),
        has_champion=champion is not None,
        last_training_at=last_fired.at if last_fired else None,
        last_decision_at=last_decision.at if last_decision else None,
        drift=drift,
        live_metric=live_metric,
        live_rows=live_rows,
        champion_metric=champion_metric,
        new_labelled_rows=new_labelled,
        manual=manual is not None,
        concept_drift=concept,
    )
    return Gathered(signals, caused_by, last_batch)


def _live_window(
    project: projects.Project, evaluations: evaluate.Evaluations, version: int
) -> tuple[float | None, int, list[int]]:
    """The champion's metric over its newest evaluations covering the performance window.

    Batch values are weighted by rows: exact for per-row-mean metrics (accuracy, log loss, MAE),
    an approximation for AUC and F1.
    """
    window = max((t.window for t in project.spec.triggers if t.kind == "performance"), default=0)
    used, rows, total = [], 0, 0.0
    for evaluation in reversed(evaluations.of(version)):
        if evaluation.value is None:
            continue
        used.append(evaluation.id)
        rows += evaluation.rows
        total += evaluation.value * evaluation.rows
        if rows >= window:
            break
    return (total / rows if rows else None), rows, used


def _last_evaluation(decision: entities.Decision | None) -> int:
    return int(decision.evidence.get("last_evaluation_id", 0)) if decision else 0


def _pending_request(
    project: projects.Project, last_decision: entities.Decision | None
) -> entities.Decision | None:
    """A manual retrain request made after the last retrain decision."""
    requests = project.store.list_decisions(project.name, kind="request", limit=1)
    if requests and (last_decision is None or requests[-1].id > last_decision.id):
        return requests[-1]
    return None
