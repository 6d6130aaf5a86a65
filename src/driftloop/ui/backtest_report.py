"""The backtest report: one self-contained HTML file, small enough to open instantly — per-batch
aggregates only, never raw rows.

It leads with what a user must decide: each policy's score against its training compute (a
Pareto chart, every-batch and never as reference points), then the gap to every-batch over time
per policy (where a policy lost ground, and when it retrained), then the headline table. The
per-policy score lines and the drift of the focus policy follow, for detail.

The reference is retraining on every batch: the best-scoring row whose name starts with
``every-batch`` (a backtest may carry several, e.g. with different windows). Called by
`driftloop demo` and `driftloop backtest --report`; the charts are drawn in the browser by the
vendored uPlot (inlined, so the file works offline).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jinja2

from driftloop.controller import policy_replay
from driftloop.gate import metrics

SMOOTHING = 7
"""Batches in the trailing mean of the time charts: at least this many, and a fortieth of the
replay when that is more (day-to-day noise would hide a long replay's trends)."""
MAX_FEATURES = 12
"""Drift series drawn: the features with the largest effect on any batch."""
REFERENCE_PREFIX = "every-batch"
NEVER = "never"


def reference(results: Sequence[policy_replay.PolicyResult]) -> policy_replay.PolicyResult | None:
    """The every-batch row everything is compared with: the best-scoring one if there are
    several (``every-batch``, ``every-batch (fixed window)``, ...), None if there is none."""
    rows = [r for r in results if r.policy.startswith(REFERENCE_PREFIX) and r.score == r.score]
    if not rows:
        return None
    better = _direction(results[0].metric)
    return max(rows, key=lambda r: better * r.score)


def summary_rows(results: Sequence[policy_replay.PolicyResult]) -> list[dict[str, Any]]:
    """One row per policy, with score and CPU relative to the reference (`reference`)."""
    ref = reference(results)
    rows = []
    for result in results:
        rows.append(
            {
                "policy": result.policy,
                "score": result.score,
                "relative_score": result.score / ref.score if ref and ref.score else None,
                "trainings": result.trainings,
                "promotions": result.promotions,
                "cpu_seconds": result.cpu_seconds,
                "relative_cpu": result.cpu_seconds / ref.cpu_seconds
                if ref and ref.cpu_seconds
                else None,
                "wall_seconds": result.wall_seconds,
                "estimate_mae": result.estimate_mae,
            }
        )
    return rows


@dataclass(frozen=True)
class Point:
    """One policy on the compute/score plane."""

    policy: str
    cpu_seconds: float
    score: float


def pareto_front(points: Sequence[Point], greater_is_better: bool = True) -> list[str]:
    """The policies no other policy beats on both axes (no more CPU and a score at least as
    good, one of them strictly), cheapest first. Policies with no score are never on it.

    >>> pareto_front([Point("a", 10, 0.9), Point("b", 1, 0.8), Point("c", 5, 0.7),
    ...               Point("d", 20, 0.9)])
    ['b', 'a']
    >>> pareto_front([Point("a", 10, 0.3), Point("b", 1, 0.5), Point("c", 20, 0.4)],
    ...              greater_is_better=False)  # errors: smaller is better
    ['b', 'a']
    """
    sign = 1.0 if greater_is_better else -1.0
    scored = [p for p in points if p.score == p.score]
    front = [p for p in scored if not beaten_by(p, scored, greater_is_better)]
    return [p.policy for p in sorted(front, key=lambda p: (p.cpu_seconds, -sign * p.score))]


def beaten_by(point: Point, points: Sequence[Point], greater_is_better: bool = True) -> list[str]:
    """The policies that beat `point` on both axes (what a user would pick instead).

    >>> beaten_by(Point("c", 5, 0.7), [Point("a", 10, 0.9), Point("b", 1, 0.8)])
    ['b']
    """
    sign = 1.0 if greater_is_better else -1.0
    return [
        q.policy
        for q in points
        if q.cpu_seconds <= point.cpu_seconds
        and sign * q.score >= sign * point.score
        and (q.cpu_seconds < point.cpu_seconds or sign * q.score > sign * point.score)
    ]


def smoothing(batches: int) -> int:
    """Batches in the trailing mean of a replay of `batches` batches.

    >>> smoothing(16), smoothing(915)
    (7, 22)
    """
    return max(SMOOTHING, batches // 40)


def gap_series(
    result: policy_replay.PolicyResult, ref: policy_replay.PolicyResult, width: int
) -> list[float | None]:
    """Per batch, the trailing mean over the last `width` batches scored by both of
    (`result` − `ref`), signed so that below zero is worse than the reference.

    >>> from driftloop.controller.policy_replay import PolicyResult, Step
    >>> def run(name, values):
    ...     steps = tuple(Step("", 1, v, False, False, None, {}) for v in values)
    ...     return PolicyResult(name, "accuracy", 0.0, 0, 0, 0.0, 0.0, steps)
    >>> gap_series(run("p", [None, 0.5, 0.9, 0.6]), run("e", [None, 0.7, 0.9, 0.7]), width=2)
    [None, -0.2, -0.1, -0.05]
    """
    sign = _direction(result.metric)
    differences = [
        sign * (mine.metric - theirs.metric)
        if mine.metric is not None and theirs.metric is not None
        else None
        for mine, theirs in zip(result.steps, ref.steps, strict=True)
    ]
    return _rolling(differences, width)


def render_backtest(
    results: Sequence[policy_replay.PolicyResult],
    *,
    title: str,
    description: str,
    focus: str,
) -> str:
    """The HTML report; `focus` names the policy in bold, charted first, whose drift is shown."""
    metric = results[0].metric
    ref = reference(results)
    chosen = next((r for r in results if r.policy == focus), results[-1])
    rows = summary_rows(results)
    width = smoothing(len(results[0].steps))
    points = [Point(r.policy, r.cpu_seconds, r.score) for r in results if r.score == r.score]
    better = beaten_by(
        Point(chosen.policy, chosen.cpu_seconds, chosen.score), points, _direction(metric) > 0
    )
    data = {
        "days": [int(datetime.fromisoformat(step.end).timestamp()) for step in results[0].steps],
        "metric": metric,
        "greater_is_better": _direction(metric) > 0,
        "smoothing": width,
        "focus": chosen.policy,
        "reference": ref.policy if ref else None,
        "pareto": _pareto(results, rows, ref),
        "gap": _gaps(results, ref, chosen, width),
        "accuracy": {r.policy: _rolling(_metric(r), width) for r in results},
        "retrains": _retrains(chosen, width),
        "drift": _drift(chosen, width),
    }
    static = resources.files("driftloop.ui").joinpath("static")
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("driftloop.ui", "templates"), autoescape=True
    )
    return environment.get_template("backtest.html.j2").render(
        title=title,
        description=description,
        rows=rows,
        lead=next(row for row in rows if row["policy"] == chosen.policy),
        beaten_by=better,
        greater_is_better=_direction(metric) > 0,
        focus=chosen.policy,
        reference=ref.policy if ref else None,
        created=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        metric=metric,
        data=json.dumps(data, separators=(",", ":"), allow_nan=False),
        uplot_js=static.joinpath("uPlot.iife.min.js").read_text(),
        uplot_css=static.joinpath("uPlot.min.css").read_text(),
    )


def _pareto(
    results: Sequence[policy_replay.PolicyResult],
    rows: list[dict[str, Any]],
    ref: policy_replay.PolicyResult | None,
) -> list[dict[str, Any]]:
    """Every scored policy as a point: CPU, score, both relative to the reference, its role
    (``reference``, ``baseline`` for never and the other every-batch rows, else ``policy``)
    and whether it is on the Pareto front."""
    points = [Point(r.policy, r.cpu_seconds, r.score) for r in results]
    front = pareto_front(points, _direction(results[0].metric) > 0)
    out = []
    for row in rows:
        if row["score"] != row["score"]:  # nothing scored: no place on the chart
            continue
        name = row["policy"]
        role = (
            "reference"
            if ref and name == ref.policy
            else "baseline"
            if name == NEVER or name.startswith(REFERENCE_PREFIX)
            else "policy"
        )
        out.append(
            {
                "policy": name,
                "cpu_seconds": round(row["cpu_seconds"], 3),
                "relative_cpu": _round(row["relative_cpu"]),
                "score": round(row["score"], 5),
                "relative_score": _round(row["relative_score"]),
                "trainings": row["trainings"],
                "role": role,
                "front": front.index(name) if name in front else None,
            }
        )
    return out


def _gaps(
    results: Sequence[policy_replay.PolicyResult],
    ref: policy_replay.PolicyResult | None,
    chosen: policy_replay.PolicyResult,
    width: int,
) -> list[dict[str, Any]]:
    """One gap series per policy other than the reference (the focus first), with the batches
    it retrained on (indices into the days)."""
    if ref is None:
        return []
    others = [r for r in results if r.policy != ref.policy]
    others.sort(key=lambda r: r.policy != chosen.policy)  # stable: the focus, then in order
    return [
        {
            "policy": r.policy,
            "values": gap_series(r, ref, width),
            "retrains": [i for i, step in enumerate(r.steps) if step.retrained],
        }
        for r in others
    ]


def _retrains(result: policy_replay.PolicyResult, width: int) -> list[float | None]:
    """The focus policy's smoothed score on the batches it retrained, None elsewhere."""
    smoothed = _rolling(_metric(result), width)
    return [v if s.retrained else None for s, v in zip(result.steps, smoothed, strict=True)]


def _drift(result: policy_replay.PolicyResult, width: int) -> dict[str, list[float | None]]:
    """The smoothed drift effect of the features that drifted most (wide data keeps the file
    small and the chart readable)."""
    effects: dict[str, float] = {}
    for step in result.steps:
        for name, value in step.drift.items():
            effects[name] = max(effects.get(name, 0.0), value or 0.0)
    features = sorted(sorted(effects, key=lambda n: -effects[n])[:MAX_FEATURES])
    return {
        name: _rolling([step.drift.get(name) for step in result.steps], width)
        for name in features
    }


def _direction(metric: str) -> float:
    """+1 when a greater `metric` is better, -1 when smaller is (log loss, errors)."""
    known = metrics.METRICS.get(metric)
    return 1.0 if known is None or known.greater_is_better else -1.0


def _metric(result: policy_replay.PolicyResult) -> list[float | None]:
    return [step.metric for step in result.steps]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 5)


def _rolling(values: list[float | None], width: int) -> list[float | None]:
    """Trailing mean over the last `width` known values (None where nothing is known yet)."""
    out: list[float | None] = []
    window: list[float] = []
    for value in values:
        if value is not None:
            window = [*window, value][-width:]
        out.append(round(sum(window) / len(window), 5) if window else None)
    return out
