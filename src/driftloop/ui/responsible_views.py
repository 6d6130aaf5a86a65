"""What the dashboard and the drift report show about fairness and explanations: the champion's
per-group metric on every labelled batch (a timeline chart), a version's explanation (bars),
and each feature's share of the importance (beside its drift).

Read from the stored findings (`store._findings`); the pages render them, nothing here draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from driftloop.store import metadata
from driftloop.ui import views

FAIRNESS_BATCHES = 500
"""The newest batch fairness reports charted."""


def fairness_chart(store: metadata.MetadataStore, name: str,
                   metric: str = "selection_rate") -> dict[str, Any] | None:
    """`metric` of every group of the first sensitive column per labelled batch, against the
    batch's end time, and the demographic parity difference; None without reports."""
    found = store.findings.list(name, "fairness", last=FAIRNESS_BATCHES)
    if not found:
        return None
    column = next(iter(found[-1].report.get("columns", {})), None)
    if column is None:
        return None
    ends = {b.id: b.end or b.created_at
            for b in store.batches.list(name, status="accepted",
                                        after_id=min(f.batch_id or 0 for f in found) - 1)}
    points: dict[float, dict[str, Any]] = {}
    for finding in found:
        at = ends.get(finding.batch_id or 0, finding.at).timestamp()
        entry = finding.report["columns"].get(column, {})
        row = points.setdefault(at, {})
        for group, values in entry.get("groups", {}).items():
            row[f"{column}={group}"] = values.get(metric)
        row["demographic parity difference"] = entry.get("disparities", {}).get(
            "demographic_parity_difference")
    labels = sorted({label for row in points.values() for label in row},
                    key=lambda label: (label.startswith("demographic"), label))
    times = sorted(points)
    return views.chart(times, {label: [points[t].get(label) for t in times]
                               for label in labels}, metric.replace("_", " "))


@dataclass(frozen=True)
class Bar:
    """One feature of a version's explanation: its share of the importance (the bar's length),
    permutation importance and mean |SHAP|."""

    feature: str
    share: float
    permutation: float
    shap: float | None


def explanation(store: metadata.MetadataStore, name: str,
                version: int) -> tuple[list[Bar], dict[str, Any] | None]:
    """The version's explanation as bars (largest share first) and its drift finding."""
    from driftloop.train import explain

    found = store.findings.for_version(name, "explanation", version)
    if found is None:
        return [], None
    shares = explain.shares(found.report)
    shap = found.report.get("shap") or {}
    bars = [Bar(feature, shares.get(feature, 0.0), value["mean"], shap.get(feature))
            for feature, value in found.report["permutation"].items()]
    drift = store.findings.for_version(name, "explanation_drift", version)
    return sorted(bars, key=lambda bar: -bar.share), (drift.report if drift else None)


def importance_shares(store: metadata.MetadataStore, name: str,
                      version: int) -> dict[str, float] | None:
    """Each feature's share of the version's importance, or None if it was not explained."""
    from driftloop.train import explain

    found = store.findings.for_version(name, "explanation", version)
    return explain.shares(found.report) if found is not None else None
