"""Gather the policy's `Signals` from the store: drift of the new rows against the champion's
training profile, the live metric window, the accuracy estimated on the newest unlabelled
batches, concept-drift detections, volume, manual requests, the data-quality signals of the new
batches.

Called by the tick once per step, after ingest and evaluation, with what the tick already read
this step (the accepted rows, the newest decisions, the champion and its profile).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from driftloop.controller import evaluate
from driftloop.controller import history as histories
from driftloop.controller import project as projects
from driftloop.core import text_spec
from driftloop.core.amount import Amount
from driftloop.core.types import JSON
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
    batches_since = len(history.batch_ids(after_id=trained_upto))
    caused_by: JSON = {"batches": new_batches}

    drift = None
    live = Live()
    champion_metric, concept, window_rows = None, False, None
    estimated_metric, estimated_rows = None, 0
    if champion is not None:
        champion_metric = champion.metrics.get(spec.gate.metric)
        # After a change, a share of the window counts the rows since the change: a model
        # whose window reaches back into the old concept is refreshed soon, ever more rarely
        window_rows = champion.metrics.get("train_rows")
        since_change = champion.metrics.get("rows_since_change")
        if window_rows and since_change is not None:
            window_rows = max(1, min(window_rows, since_change))
        if new_batches and champion.profile_id is not None:
            from driftloop.drift import report as drift_report  # scipy: only when there is data

            fresh = history.since(seen)
            profile = profile_of(champion.profile_id)
            report = drift_report.detect_drift(profile, fresh, spec.drift)
            drift = report.to_json()
            caused_by["profile"] = champion.profile_id
            if spec.text is not None:
                drift["text"] = _text_drift(spec.text, history, champion, fresh)
        live = _live_window(project, monitor.evaluations, champion)
        caused_by["evaluations"] = live.used
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
    manual = pending(last_request, last_decision)
    if manual is not None:
        caused_by["request"] = manual.id
    signals = policy_signals.Signals(
        now=project.clock.now(),
        has_champion=champion is not None,
        last_training_at=last_fired.at if last_fired else None,
        last_decision_at=last_decision.at if last_decision else None,
        drift=drift,
        live_metric=live.metric,
        live_rows=live.rows,
        estimated_metric=estimated_metric,
        estimated_rows=estimated_rows,
        champion_metric=champion_metric,
        new_labelled_rows=new_labelled,
        batches_since_training=batches_since,
        window_rows=int(window_rows) if window_rows else None,
        manual=manual is not None,
        concept_drift=concept,
        live_errors=live.errors,
        reference_errors=live.reference,
        quality=_quality(history.batches(after_id=seen)),
        fairness=_fairness(project, champion),
        explanation=_explanation(project, champion),
    )
    return Gathered(signals, caused_by, last_batch)


def _text_drift(
    spec: text_spec.TextSpec, history: histories.History, champion: entities.ModelVersion,
    fresh: Any,
) -> list[JSON]:
    """The text drift tests (`drift.text`) of each text column: the new rows against the
    champion's training rows."""
    from driftloop.data import text_profile
    from driftloop.drift import text as text_drift

    known = set(history.batch_ids())
    trained = [history.of(b) for b in champion.batch_ids if b in known]
    found = []
    for column in spec.columns:
        if column not in fresh.columns:
            continue
        reference = [t for frame in trained if column in frame.columns
                     for t in text_profile.as_texts(frame[column])]
        current = text_profile.as_texts(fresh[column])
        found.append(text_drift.detect_text_drift(column, reference, current, spec).to_json())
    return found


@dataclass(frozen=True)
class Live:
    """The champion's live window: its metric, rows, per-row errors and the evaluations used,
    and its per-row errors on the labelled batches it scored before the window."""

    metric: float | None = None
    rows: int = 0
    errors: tuple[float, ...] = ()
    reference: tuple[float, ...] = ()
    used: tuple[int, ...] = ()


REFERENCE_ROWS = 20_000
"""At most this many of the champion's earliest live rows are the relative test's reference."""
def _fairness(project: projects.Project,
              champion: entities.ModelVersion | None) -> tuple[policy_signals.FairnessCheck, ...]:
    """The champion's newest batch fairness checks (with a `fairness:` section and a trigger
    that reads them), oldest first."""
    if champion is None or not any(t.kind == "fairness" for t in project.spec.triggers):
        return ()
    found = project.store.findings.list(project.name, "fairness", last=FAIRNESS_LOOKBACK)
    return tuple(policy_signals.FairnessCheck(f.batch_id, bool(f.report.get("judged")),
                                              tuple(f.report.get("breaches", ())))
                 for f in found if f.version == champion.version)


def _explanation(project: projects.Project,
                 champion: entities.ModelVersion | None) -> JSON | None:
    """The champion's newest live explanation drift (when an `explanation` trigger reads it)."""
    if champion is None or not any(t.kind == "explanation" for t in project.spec.triggers):
        return None
    found = project.store.findings.for_version(project.name, "explanation_live", champion.version)
    return None if found is None else {**found.report, "batch_id": found.batch_id}


FAIRNESS_LOOKBACK = 50
"""Batch fairness reports read per tick (the trigger's window is at most this)."""


def _quality(batches: list[entities.Batch]) -> policy_signals.Quality:
    """The data-quality signals of `batches`, summed: the columns (in order of first
    appearance), the signalled rows and all rows."""
    columns = dict.fromkeys(c for batch in batches for c in batch.quality if c != "*")
    return policy_signals.Quality(
        tuple(columns),
        rows=sum(batch.quality_rows for batch in batches),
        total_rows=sum(batch.rows for batch in batches),
    )


def _live_window(
    project: projects.Project, evaluations: evaluate.Evaluations, champion: entities.ModelVersion
) -> Live:
    """The champion's metric over its newest evaluations covering the performance window (the
    widest of the spec's performance triggers), and its errors on the evaluations before.
    Until those earlier rows outnumber the window's, the reference also holds the errors the
    gate measured on its holdout: a model that is poor from its first live batch is compared
    with what it promised, not only with its own poor start.

    Batch values are weighted by rows: exact for per-row-mean metrics (accuracy, log loss, MAE),
    an approximation for AUC and F1.
    """
    windows = [t.window for t in project.spec.triggers if t.kind == "performance"]
    if not windows:
        return Live()
    scored = [e for e in evaluations.newest(champion.version) if e.value is not None]
    if not scored:
        return Live()
    now = project.clock.now()
    count = max(_covering(scored, window, now) for window in windows)
    live, earlier = scored[:count], scored[count:]
    rows = sum(e.rows for e in live)
    total = sum((e.value or 0.0) * e.rows for e in live)
    reference: list[float] = []
    for evaluation in reversed(earlier):  # the champion's first live batches first
        if len(reference) >= REFERENCE_ROWS:
            break
        reference += evaluation.errors
    errors = tuple(x for e in live for x in e.errors)
    if len(reference) < len(errors):
        reference = _validation_errors(champion, project.spec.gate.metric) + reference
    return Live(total / rows if rows else None, rows, errors, tuple(reference),
                tuple(e.id for e in live))


def _validation_errors(champion: entities.ModelVersion, metric: str) -> list[float]:
    """The 0/1 errors behind the champion's validation accuracy on its gate holdout (their
    order does not matter to the test); none for other metrics, whose per-row errors are not
    kept.

    >>> version = entities.ModelVersion(1, "p", 1, 1, "", "", {"accuracy": 0.75,
    ...     "holdout_rows": 4}, None, None, datetime(2024, 1, 1))
    >>> _validation_errors(version, "accuracy")
    [1.0, 0.0, 0.0, 0.0]
    """
    score, rows = champion.metrics.get(metric), champion.metrics.get("holdout_rows")
    if metric != "accuracy" or score is None or not rows:
        return []
    wrong = round((1.0 - float(score)) * int(rows))
    return [1.0] * wrong + [0.0] * (int(rows) - wrong)


def _covering(newest_first: list[entities.Evaluation], window: Amount, now: datetime) -> int:
    """How many of the newest evaluations make up `window` (at least one)."""
    rows = 0
    for count, evaluation in enumerate(newest_first, start=1):
        rows += evaluation.rows
        if window.reached(rows=rows, batches=count, elapsed=now - evaluation.at):
            return count
    return len(newest_first)


def _estimated_window(
    project: projects.Project, evaluations: evaluate.Evaluations, version: int
) -> tuple[float | None, int, list[int]]:
    """The champion's estimated accuracy over its newest scored batches that had no labels
    (back to its newest labelled evaluation), up to the performance window, weighted by rows.
    Only for pipelines whose metric is accuracy: that is what the estimate estimates."""
    if project.spec.gate.metric != "accuracy":
        return None, 0, []
    windows = [t.window for t in project.spec.triggers if t.kind == "performance"]
    if not windows:
        return None, 0, []
    now = project.clock.now()
    used, rows, total = [], 0, 0.0
    for evaluation in evaluations.newest(version):
        if evaluation.value is not None or evaluation.estimated_value is None:
            break
        used.append(evaluation.id)
        rows += evaluation.estimated_rows
        total += evaluation.estimated_value * evaluation.estimated_rows
        if all(w.reached(rows=rows, batches=len(used), elapsed=now - evaluation.at)
               for w in windows):
            break
    return (total / rows if rows else None), rows, used


def _last_evaluation(decision: entities.Decision | None) -> int:
    return int(decision.evidence.get("last_evaluation_id", 0)) if decision else 0


def pending(
    request: entities.Decision | None, last_decision: entities.Decision | None
) -> entities.Decision | None:
    """The newest manual retrain request if it was made after the last retrain decision."""
    if request is not None and (last_decision is None or request.id > last_decision.id):
        return request
    return None
