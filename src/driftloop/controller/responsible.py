"""Fairness and explanations in the loop: store the fairness report of each labelled batch, and
the explanation of each new model version with how far it moved from the champion's.

Runs only for a spec with a `fairness:` section (reports, gate rules) or an `explain:` section
(explanations); nothing here is on the path of a pipeline without them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from driftloop.controller import project as projects
from driftloop.core import errors
from driftloop.core.types import JSON
from driftloop.store import entities

if TYPE_CHECKING:
    import pandas as pd

    from driftloop.gate import gate as gates

FAIRNESS = "fairness"
EXPLANATION = "explanation"
EXPLANATION_DRIFT = "explanation_drift"
EXPLANATION_LIVE = "explanation_live"


def record_fairness(project: projects.Project, batch_id: int | None, version: int,
                    labelled: pd.DataFrame, y_pred: Any, sensitive: list[str] | None = None,
                    source: str = "batch") -> entities.Finding | None:
    """Assess the champion's predictions `y_pred` on a batch's (or the served predictions')
    `labelled` rows by group, on the `sensitive` columns (default: all the spec's that the rows
    have), and store the report (its headline: the worst demographic parity difference).
    None when the rows have none of them."""
    from driftloop.gate import fairness

    spec = project.spec
    assert spec.fairness is not None  # callers checked
    present = [c for c in (sensitive or spec.fairness.sensitive) if c in labelled.columns]
    if not present:
        return None
    judged = spec.fairness.model_copy(update={"sensitive": present})
    report = fairness.assess(labelled[spec.target], y_pred, labelled, judged)
    report["source"] = source
    return project.store.findings.add(project.name, FAIRNESS, report, batch_id=batch_id,
                                     version=version, value=fairness.worst(report))


def gate_fairness(project: projects.Project, report: gates.GateReport, challenger: Any,
                  champion: Any | None, holdout: pd.DataFrame,
                  features: list[str]) -> tuple[gates.GateReport, JSON]:
    """The gate's verdict with the fairness rules applied on the same holdout: a challenger the
    metric passed is refused if it is less fair; returns the report and the evidence."""
    from driftloop.gate import fairness_gate

    spec = project.spec
    assert spec.fairness is not None  # callers checked
    verdict = fairness_gate.judge(challenger, champion, holdout[features], holdout[spec.target],
                                  holdout, spec.fairness, confidence=spec.gate.confidence)
    evidence = {"passed": verdict.passed, "reason": verdict.reason, **verdict.evidence}
    if verdict.passed or not report.passed:
        return report, evidence
    refused = replace(report, passed=False, reason=f"{report.reason}; refused: {verdict.reason}")
    return refused, evidence


def _explain(project: projects.Project, model: Any, X: Any, y: Any) -> JSON:
    """`train.explain.global_explanation` scored with the gate's metric (higher is better)."""
    from driftloop.gate import metrics
    from driftloop.train import explain

    spec = project.spec
    assert spec.explain is not None  # callers checked
    scorer = metrics.Scorer(spec.gate.metric, spec.task)
    sign = 1.0 if scorer.greater_is_better else -1.0
    return explain.global_explanation(model, X, y, scoring=lambda m, X, y: sign * scorer(m, X, y),
                                      repeats=spec.explain.repeats)


@dataclass(frozen=True)
class Explained:
    """A challenger's explanation, and how far it moved from the champion's (None: no
    champion, or the champion was not explained)."""

    report: JSON
    drift: JSON | None


def explain_challenger(project: projects.Project, model: Any, holdout: pd.DataFrame,
                       train: pd.DataFrame, features: list[str],
                       champion: int | None) -> Explained:
    """Explain `model` (the challenger the gate judges) on the newest `explain.rows` held-out
    rows and compare it with the champion's explanation. Without a holdout (gate off) the
    newest training rows stand in, and the report says so."""
    from driftloop.train import explain

    spec = project.spec
    assert spec.explain is not None  # callers checked
    rows = (holdout if not holdout.empty else train).iloc[-spec.explain.rows:]
    try:
        report = _explain(project, model, rows[features], rows[spec.target])
    except Exception as exc:  # the model's own failure on its held-out rows
        raise errors.TrainingError(
            f"explaining the challenger ({type(model).__name__}) on {len(rows)} rows failed: "
            f"{type(exc).__name__}: {exc}; without the spec's `explain:` section it is not "
            "explained") from exc
    report["held_out"] = not holdout.empty
    before = None if champion is None else project.store.findings.for_version(
        project.name, EXPLANATION, champion)
    if before is None:
        return Explained(report, None)
    distance, moved = explain.shift(before.report, report)
    return Explained(report, {
        "from_version": champion, "distance": distance, "threshold": spec.explain.shift,
        "shifted": distance > spec.explain.shift,
        "shares": {f: {"before": a, "after": b} for f, (a, b) in moved.items()}})


def gate_explanation(project: projects.Project, report: gates.GateReport,
                     explained: Explained) -> gates.GateReport:
    """With `explain.gate`, a challenger whose explanation shifted from the champion's is
    refused."""
    spec = project.spec
    drift = explained.drift
    if spec.explain is None or not spec.explain.gate or drift is None or not drift["shifted"]:
        return report
    return replace(report, passed=False, reason=(
        f"{report.reason}; refused: it relies on its features differently from "
        f"v{drift['from_version']} (explanation drift {drift['distance']:.3g} > "
        f"{drift['threshold']:g})"))


def record_explanation(project: projects.Project, version: int,
                       explained: Explained) -> entities.Finding:
    """Store a version's explanation, and its drift from the champion's when there is one."""
    from driftloop.train import explain

    top = max(explain.shares(explained.report).values(), default=None)
    found = project.store.findings.add(project.name, EXPLANATION, explained.report,
                                      version=version, value=top)
    if explained.drift is not None:
        project.store.findings.add(project.name, EXPLANATION_DRIFT,
                                  {**explained.drift, "to_version": version}, version=version,
                                  value=explained.drift["distance"])
    return found


def explain_live(project: projects.Project, batch_id: int, version: int, model: Any, X: Any,
                 y: Any) -> entities.Finding | None:
    """Re-explain the champion `version` on a labelled batch's rows, at most once per
    `explain.live`, and store how far that moved from its training explanation (the
    `explanation` trigger reads it). None when not due or the version was never explained;
    a model that fails to be explained is recorded with the error, not raised."""
    from driftloop.train import explain

    spec, store = project.spec, project.store
    assert spec.explain is not None and spec.explain.live is not None  # callers checked
    last = store.findings.for_version(project.name, EXPLANATION_LIVE, version)
    if last is not None and project.clock.now() - last.at < spec.explain.live:
        return None
    trained = store.findings.for_version(project.name, EXPLANATION, version)
    if trained is None:
        return None
    rows = slice(max(0, len(X) - spec.explain.rows), len(X))
    try:
        now = _explain(project, model, X.iloc[rows], y.iloc[rows])
    except Exception as exc:  # the champion's own failure: recorded, the tick goes on
        return store.findings.add(project.name, EXPLANATION_LIVE, {
            "error": f"{type(exc).__name__}: {exc}", "shifted": False}, batch_id=batch_id,
            version=version)
    distance, moved = explain.shift(trained.report, now)
    return store.findings.add(project.name, EXPLANATION_LIVE, {
        "rows": now["rows"], "distance": distance, "threshold": spec.explain.shift,
        "shifted": distance > spec.explain.shift,
        "shares": {f: {"trained": a, "live": b} for f, (a, b) in moved.items()}},
        batch_id=batch_id, version=version, value=distance)
