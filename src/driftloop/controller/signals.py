"""Gather the policy's `Signals` from the store: drift of the new rows against the champion's
training profile, the live metric window, the accuracy estimated on the newest unlabelled
batches, concept-drift detections, volume, manual requests.

Called by the tick once per step, after ingest and evaluation, with what the tick already read
this step (the accepted rows, the newest decisions, the champion and its profile).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from driftloop.controller import evaluate
from driftloop.controller import history as histories
from driftloop.controller import project as projects
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
    history: histories.History,
    champion: entities.ModelVersion | None,
    profile_of: Callable[[int], JSON],
    monitor: evaluate.ConceptMonitor,
    last_decision: entities.Decision | None,
    last_fired: entities.Decision | None,
    last_request: entities.Decision | None,
) -> Gathered:
    """Everything the policy needs, computed from stored state only (level-triggered).

    `profile_of(id)` is the stored profile `id`; `last_request` the newest manual request."""
    spec = project.spec
    seen = int(last_decision.evidence.get("last_batch_id", 0)) if last_decision else 0
    new_batches = history.batch_ids(after_id=seen)
    last_batch = max(new_batches, default=seen)
    trained_upto = int(last_fired.evidence.get("last_batch_id", 0)) if last_fired else 0
    new_labelled = history.labelled_after(trained_upto)
    caused_by: JSON = {"batches": new_batches}

    drift = None
    live_metric, live_rows, champion_metric, concept = None, 0, None, False
    estimated_metric, estimated_rows = None, 0
    if champion is not None:
        champion_metric = champion.metrics.get(spec.gate.metric)
        if new_batches and champion.profile_id is not None:
            fresh = history.since(seen)
            profile = profile_of(champion.profile_id)
            report = drift_report.detect_drift(profile, fresh, spec.drift)
            drift = report.to_json()
            caused_by["profile"] = champion.profile_id
        live_metric, live_rows, used = _live_window(project, monitor.evaluations, champion.version)
        caused_by["evaluations"] = used
        estimated_metric, estimated_rows, unlabelled = _estimated_window(
            project, monitor.evaluations, champion.version
        )
        if unlabelled:
            caused_by["estimated"] = unlabelled
        seen_evaluation = _last_evaluation(last_decision)
        detections = [e for e in monitor.update(champion.version) if e > seen_evaluation]
        concept = bool(detections)
        if concept:
            caused_by["concept_drift_at"] = detections
    manual = _pending(last_request, last_decision)
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
        estimated_metric=estimated_metric,
        estimated_rows=estimated_rows,
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
    for evaluation in evaluations.newest(version):
        if evaluation.value is None:
            continue
        used.append(evaluation.id)
        rows += evaluation.rows
        total += evaluation.value * evaluation.rows
        if rows >= window:
            break
    return (total / rows if rows else None), rows, used


def _estimated_window(
    project: projects.Project, evaluations: evaluate.Evaluations, version: int
) -> tuple[float | None, int, list[int]]:
    """The champion's estimated accuracy over its newest scored batches that had no labels
    (back to its newest labelled evaluation), up to the performance window, weighted by rows.
    Only for pipelines whose metric is accuracy: that is what the estimate estimates."""
    if project.spec.gate.metric != "accuracy":
        return None, 0, []
    window = max((t.window for t in project.spec.triggers if t.kind == "performance"), default=0)
    used, rows, total = [], 0, 0.0
    for evaluation in evaluations.newest(version):
        if evaluation.value is not None or evaluation.estimated_value is None:
            break
        used.append(evaluation.id)
        rows += evaluation.estimated_rows
        total += evaluation.estimated_value * evaluation.estimated_rows
        if rows >= window:
            break
    return (total / rows if rows else None), rows, used


def _last_evaluation(decision: entities.Decision | None) -> int:
    return int(decision.evidence.get("last_evaluation_id", 0)) if decision else 0


def _pending(
    request: entities.Decision | None, last_decision: entities.Decision | None
) -> entities.Decision | None:
    """The newest manual retrain request if it was made after the last retrain decision."""
    if request is not None and (last_decision is None or request.id > last_decision.id):
        return request
    return None
