"""The drift report: one self-contained HTML file (`driftloop report`) with the dataset verdict,
a table of every column's test, statistic, p-values and effect, a small reference-vs-current
histogram per column, and, when the pipeline has history, its live metric and drift over time.

Small and fast to open even for a thousand columns: it carries aggregates only (binned shares,
`drift.histograms`), never rows, and the browser draws the histograms on small canvases only
when they scroll into view. uPlot (for the history charts) is inlined, so the file works
offline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jinja2

from driftloop.drift import histograms
from driftloop.drift import report as drift_reports
from driftloop.ui import templating


@dataclass(frozen=True)
class Sides:
    """What was compared: a line of text about the reference and one about the current data."""

    reference: str
    current: str


def render_drift(
    report: drift_reports.DriftReport,
    shapes: Mapping[str, histograms.Histogram],
    sides: Sides,
    *,
    title: str,
    history: Mapping[str, Any] | None = None,
    importance: Mapping[str, float] | None = None,
    fairness: Mapping[str, Any] | None = None,
) -> str:
    """The HTML report; `history` is the chart data of `ui.views.charts` (or None),
    `importance` each feature's share of the reference model's importance (beside its drift),
    `fairness` the newest batch fairness report."""
    columns = sorted(report.columns, key=lambda c: (not c.drifted, -(c.effect or 0.0), c.name))
    shapes_json = {
        name: {"b": list(shape.bins), "r": list(shape.reference), "c": list(shape.current)}
        for name, shape in shapes.items()
    }
    static = resources.files("driftloop.ui").joinpath("static")
    has_history = bool(history) and any(
        chart["x"] for chart in (history or {}).values())
    return templating.templates.get_template("drift.html.j2").render(
        title=title,
        sides=sides,
        report=report,
        columns=columns,
        tested=sum(c.test_ran for c in report.columns),
        created=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        shapes=jinja2.utils.htmlsafe_json_dumps(  # safe inside <script>: <, >, & escaped
            shapes_json, separators=(",", ":"), allow_nan=False),
        history=history if has_history else None,
        importance=importance,
        fairness=fairness,
        uplot_js=static.joinpath("uPlot.iife.min.js").read_text() if has_history else "",
        uplot_css=static.joinpath("uPlot.min.css").read_text() if has_history else "",
        chart_js=static.joinpath("dashboard.js").read_text() if has_history else "",
    )
