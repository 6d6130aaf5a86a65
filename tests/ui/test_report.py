"""The backtest report: self-contained (no network), small, leading with the Pareto chart and the
gap to every-batch over time, with the data its charts draw."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from driftloop.cli import demo
from driftloop.cli import project_commands as scaffold
from driftloop.controller import backtest, policy_replay
from driftloop.core import config
from driftloop.data import elec2
from driftloop.ui import backtest_report

DAYS = 45


@pytest.fixture(scope="module")
def replayed() -> tuple[config.PipelineSpec, list[policy_replay.PolicyResult]]:
    """45 days of Elec2: a 30-day warm-up, then 15 daily batches, the baselines and "mine"."""
    frame = elec2.load_elec2().iloc[: 48 * DAYS]
    text = (Path(scaffold.__file__).parent / "scaffold" / "driftloop.yaml").read_text()
    spec = backtest.policy_spec(config.parse_spec(text), {"trainer": {
        "function": "driftloop.train.models:hist_gradient_boosting", "params": {"max_iter": 10},
        "window": {"kind": "last_duration", "duration": "14d"}, "executor": "inline"}})
    return spec, backtest.backtest(frame, spec, {"mine": {}}, base_dir=Path.cwd())


def embedded(html: str) -> dict[str, Any]:
    found = re.search(r"const data = (\{.*?\});\n", html)
    assert found is not None
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def test_report_is_offline_small_and_carries_every_policy(replayed: Any) -> None:
    _, results = replayed
    html = backtest_report.render_backtest(results, title="t", description="d", focus="mine")
    assert len(html) < 150_000  # aggregates, not rows
    assert not re.search(r"""(src|href)=["']https?://""", html)  # nothing fetched
    data = embedded(html)
    assert set(data["accuracy"]) == {"never", "every-batch", "mine"}
    assert len(data["days"]) == len(results[0].steps) == 16  # warm-up + 15 days
    assert data["focus"] == "mine" and set(data["drift"]) >= set(elec2.FEATURES) - {"period"}
    for row in backtest_report.summary_rows(results):
        assert row["policy"] in html


def test_report_leads_with_the_pareto_chart_then_the_gap_then_the_table(replayed: Any) -> None:
    _, results = replayed
    html = backtest_report.render_backtest(results, title="t", description="d", focus="mine")
    order = [html.index(f'id="{part}"') for part in ("lead", "pareto", "gaps", "policies")]
    assert order == sorted(order)
    # the per-policy score lines are kept, below and collapsed
    details = html.index('<details id="lines">')
    assert order[-1] < details < html.index('id="accuracy"') < html.index("</details>")


def test_the_pareto_chart_places_every_policy_at_its_cpu_and_score(replayed: Any) -> None:
    _, results = replayed
    html = backtest_report.render_backtest(results, title="t", description="d", focus="mine")
    data = embedded(html)
    by_name = {r.policy: r for r in results}
    every = by_name["every-batch"]
    assert data["reference"] == "every-batch"
    points = {p["policy"]: p for p in data["pareto"]}
    assert set(points) == set(by_name)
    for name, point in points.items():
        result = by_name[name]
        assert point["cpu_seconds"] == pytest.approx(result.cpu_seconds, abs=1e-3)
        assert point["score"] == pytest.approx(result.score, abs=1e-5)
        assert point["relative_cpu"] == pytest.approx(result.cpu_seconds / every.cpu_seconds,
                                                      abs=1e-5)
        assert point["relative_score"] == pytest.approx(result.score / every.score, abs=1e-5)
        assert point["trainings"] == result.trainings
    assert {n: p["role"] for n, p in points.items()} == {
        "every-batch": "reference", "never": "baseline", "mine": "policy"}
    # the front: exactly the points no other point beats on both CPU and score
    for name, point in points.items():
        beaten = any(
            q["cpu_seconds"] <= point["cpu_seconds"] and q["score"] >= point["score"]
            and (q["cpu_seconds"] < point["cpu_seconds"] or q["score"] > point["score"])
            for q in points.values()
        )
        assert (point["front"] is None) == beaten, name
    ranks = sorted((p["front"], p["cpu_seconds"]) for p in points.values()
                   if p["front"] is not None)
    assert [rank for rank, _ in ranks] == list(range(len(ranks)))  # cheapest first
    assert [cpu for _, cpu in ranks] == sorted(cpu for _, cpu in ranks)


def test_the_gap_chart_is_each_policys_rolling_difference_to_every_batch(replayed: Any) -> None:
    _, results = replayed
    html = backtest_report.render_backtest(results, title="t", description="d", focus="mine")
    data = embedded(html)
    by_name = {r.policy: r for r in results}
    every = [s.metric for s in by_name["every-batch"].steps]
    gaps = {g["policy"]: g for g in data["gap"]}
    assert data["smoothing"] == backtest_report.SMOOTHING  # a short replay: the least smoothing
    assert data["gap"][0]["policy"] == "mine"  # the focus first
    assert set(gaps) == {"never", "mine"}  # all but the reference
    for name, gap in gaps.items():
        steps = by_name[name].steps
        differences = pd.Series(
            [s.metric - e if s.metric is not None and e is not None else None
             for s, e in zip(steps, every, strict=True)], dtype=float)
        known = differences.dropna().rolling(data["smoothing"], min_periods=1).mean()
        expected = known.reindex(differences.index).ffill()
        assert len(gap["values"]) == len(steps)
        for value, want in zip(gap["values"], expected, strict=True):
            assert (value is None and pd.isna(want)) or value == pytest.approx(want, abs=1e-5)
        assert gap["retrains"] == [i for i, s in enumerate(steps) if s.retrained]
    assert gaps["never"]["retrains"] == [0]  # trained once, on the warm-up
    assert any(v not in (None, 0.0) for v in gaps["never"]["values"])


def result(name: str, score: float, cpu: float, metrics: list[float], metric: str = "accuracy",
           ) -> policy_replay.PolicyResult:
    steps = tuple(policy_replay.Step(f"2024-01-0{i + 1}T00:00:00", 10, m, i == 0, i == 0, None, {})
                  for i, m in enumerate(metrics))
    return policy_replay.PolicyResult(name, metric, score, 1, 1, cpu, 1.0, steps)


def test_the_reference_is_the_better_every_batch_row_whatever_the_other_names() -> None:
    results = [
        result("never", 0.70, 0.1, [0.7, 0.7, 0.7]),
        result("every-batch", 0.80, 10.0, [0.8, 0.8, 0.8]),
        result("every-batch (fixed window)", 0.84, 9.0, [0.8, 0.9, 0.8]),
        result("schedule (same budget)", 0.79, 1.0, [0.8, 0.7, 0.8]),
        result("mine", 0.82, 1.5, [0.8, 0.8, 0.9]),
    ]
    ref = backtest_report.reference(results)
    assert ref is not None and ref.policy == "every-batch (fixed window)"
    rows = {row["policy"]: row for row in backtest_report.summary_rows(results)}
    assert rows["mine"]["relative_score"] == pytest.approx(0.82 / 0.84)
    assert rows["mine"]["relative_cpu"] == pytest.approx(1.5 / 9.0)
    html = backtest_report.render_backtest(results, title="t", description="d", focus="mine")
    data = embedded(html)
    assert data["reference"] == "every-batch (fixed window)"
    assert "% of every-batch (fixed window)" in html
    roles = {p["policy"]: p["role"] for p in data["pareto"]}
    assert roles == {"never": "baseline", "every-batch": "baseline",
                     "every-batch (fixed window)": "reference",
                     "schedule (same budget)": "policy", "mine": "policy"}
    assert {p["policy"] for p in data["pareto"] if p["front"] is not None} == {
        "never", "schedule (same budget)", "mine", "every-batch (fixed window)"}
    gaps = {g["policy"]: g["values"] for g in data["gap"]}
    assert gaps["mine"] == pytest.approx([0.0, -0.05, 0.0])  # rolling over 0, -0.1, +0.1
    assert "every-batch" in gaps and "every-batch (fixed window)" not in gaps
    assert "On the Pareto front" in html
    dominated = backtest_report.render_backtest(
        results, title="t", description="d", focus="every-batch",
    )
    assert "Not on the Pareto front: <b>every-batch (fixed window), mine</b>" in dominated


def test_for_an_error_metric_lower_is_better_and_above_zero_still_means_better() -> None:
    results = [
        result("every-batch", 2.0, 10.0, [2.0, 2.0], metric="rmse"),
        result("every-batch (fixed window)", 3.0, 10.0, [3.0, 3.0], metric="rmse"),
        result("mine", 2.5, 1.0, [2.5, 1.5], metric="rmse"),
    ]
    ref = backtest_report.reference(results)
    assert ref is not None and ref.policy == "every-batch"  # the smaller error
    html = backtest_report.render_backtest(results, title="t", description="d", focus="mine")
    data = embedded(html)
    gaps = {g["policy"]: g["values"] for g in data["gap"]}
    assert gaps["mine"] == pytest.approx([-0.5, 0.0])  # worse by 0.5, then better by 0.5
    assert data["greater_is_better"] is False


def test_the_description_counts_the_batches_every_batch_trained_on(replayed: Any) -> None:
    spec, results = replayed
    every = next(r for r in results if r.policy == "every-batch")
    text = demo.describe(len(every.steps), timedelta(days=1), timedelta(days=30), spec)
    # every-batch trains once per batch, the first model on the warm-up included
    assert text.startswith(f"{every.trainings} batches (a 30-day warm-up, then 15 of 1 day)")
    assert every.trainings == len(every.steps) == 16
