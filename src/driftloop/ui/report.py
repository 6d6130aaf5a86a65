"""The backtest report: one self-contained HTML file (table + charts), small enough to open
instantly — per-day aggregates only, never raw rows.

Called by `driftloop demo` and `driftloop backtest --report`. The charts are drawn in the
browser by the vendored uPlot (inlined, so the file works offline).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jinja2

from driftloop.controller import backtest

SMOOTHING_DAYS = 7
MAX_FEATURES = 12
"""Drift series drawn: the features with the largest effect on any day."""


def summary_rows(
    results: Sequence[backtest.PolicyResult], reference: str = "every-batch"
) -> list[dict[str, Any]]:
    """One row per policy, with score and CPU relative to the `reference` policy."""
    ref = next((r for r in results if r.policy == reference), None)
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


def render_backtest(
    results: Sequence[backtest.PolicyResult],
    *,
    title: str,
    description: str,
    focus: str,
) -> str:
    """The HTML report; `focus` names the policy whose retrains and drift are charted."""
    days = [int(datetime.fromisoformat(step.end).timestamp()) for step in results[0].steps]
    accuracy = {r.policy: _rolling(_daily_metric(r), SMOOTHING_DAYS) for r in results}
    chosen = next((r for r in results if r.policy == focus), results[-1])
    retrains = [
        acc if step.retrained else None
        for step, acc in zip(chosen.steps, accuracy[chosen.policy], strict=True)
    ]
    effects: dict[str, float] = {}
    for step in chosen.steps:
        for name, value in step.drift.items():
            effects[name] = max(effects.get(name, 0.0), value or 0.0)
    # the features that drifted most: wide data keeps the file small and the chart readable
    features = sorted(sorted(effects, key=lambda n: -effects[n])[:MAX_FEATURES])
    drift = {
        name: _rolling([step.drift.get(name) for step in chosen.steps], SMOOTHING_DAYS)
        for name in features
    }
    data = {
        "days": days,
        "accuracy": accuracy,
        "focus": chosen.policy,
        "retrains": retrains,
        "drift": drift,
        "metric": results[0].metric,
        "smoothing": SMOOTHING_DAYS,
    }
    static = resources.files("driftloop.ui").joinpath("static")
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("driftloop.ui", "templates"), autoescape=True
    )
    return environment.get_template("backtest.html.j2").render(
        title=title,
        description=description,
        rows=summary_rows(results),
        created=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        metric=results[0].metric,
        data=json.dumps(data, separators=(",", ":"), allow_nan=False),
        uplot_js=static.joinpath("uPlot.iife.min.js").read_text(),
        uplot_css=static.joinpath("uPlot.min.css").read_text(),
    )


def _daily_metric(result: backtest.PolicyResult) -> list[float | None]:
    return [step.metric for step in result.steps]


def _rolling(values: list[float | None], width: int) -> list[float | None]:
    """Trailing mean over the last `width` known values (None where nothing is known yet)."""
    out: list[float | None] = []
    window: list[float] = []
    for value in values:
        if value is not None:
            window = [*window, value][-width:]
        out.append(round(sum(window) / len(window), 5) if window else None)
    return out
