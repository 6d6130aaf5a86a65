"""Fairness and explanations where people look: the timeline's per-group chart, the lineage
page's importance bars and explanation drift, the drift report's importance and per-group
table, the per-group Prometheus gauges; and in Chromium, the charts and bars painted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_browser import ARTIFACTS, COLOURED_PIXELS, browser  # noqa: F401 (a fixture)
from test_explain import trained
from typer.testing import CliRunner
from uvicorn_thread import serving as serve_in_thread

from driftloop.cli.main import app as cli
from driftloop.controller import project as projects
from driftloop.server import app as server_app
from driftloop.ui import dashboard

pytest.importorskip("fairlearn", reason="needs the fairness extra")
pytest.importorskip("shap", reason="needs the explain extra")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> projects.Project:
    return trained(tmp_path_factory.mktemp("ui"), "sklearn.linear_model:LogisticRegression",
                   batches=6)


@pytest.fixture(scope="module")
def url(project: projects.Project) -> Iterator[str]:
    app = server_app.create_app(project, routers=[dashboard.router(project.store, public=True)])
    with serve_in_thread(app) as served:
        yield served


def test_pages_show_fairness_and_explanations(project: projects.Project, url: str) -> None:
    timeline = httpx.get(f"{url}/ui/pipelines/explained").text
    assert 'id="fairness-chart"' in timeline and '"g=B"' in timeline
    champion = project.store.aliases.get(project.name, "champion")
    version = httpx.get(f"{url}/ui/pipelines/explained/versions/{champion}").text
    assert 'id="explanation"' in version and "<td>x1</td>" in version
    assert "<td>g</td>" not in version  # a fairness-only column is no model input


def test_metrics_export_each_group_and_disparity(url: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = httpx.get(f"{url}/metrics").text
        if "driftloop_fairness_group_metric{" in text:
            break
        time.sleep(0.2)
    assert ('driftloop_fairness_group_metric{feature="g",group="B",metric="selection_rate",'
            'pipeline="explained"}') in text
    assert ('driftloop_fairness_disparity{disparity="demographic_parity_difference",'
            'feature="g",pipeline="explained"}') in text
    groups = {line.split('group="')[1].split('"')[0] for line in text.splitlines()
              if line.startswith("driftloop_fairness_group_metric{")}
    assert groups <= {"A", "B", "other"}  # bounded: declared or most frequent, then "other"


def test_the_drift_report_shows_importance_and_groups(project: projects.Project,
                                                      tmp_path: Path) -> None:
    out = tmp_path / "drift.html"
    done = CliRunner().invoke(cli, ["report", "--spec", str(project.base_dir / "driftloop.yaml"),
                                    "--out", str(out)])
    assert done.exit_code == 0, done.output
    html = out.read_text()
    assert 'class="importance"' in html and 'id="fairness"' in html


@pytest.mark.browser
def test_the_fairness_chart_and_the_importance_bars_are_painted(
        browser: Any, project: projects.Project, url: str) -> None:  # noqa: F811
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.goto(f"{url}/ui/pipelines/explained", wait_until="load")
    assert page.locator("#fairness-chart").evaluate(COLOURED_PIXELS) > 200
    page.screenshot(path=str(ARTIFACTS / "fairness-timeline.png"), full_page=True)
    champion = project.store.aliases.get(project.name, "champion")
    page.goto(f"{url}/ui/pipelines/explained/versions/{champion}", wait_until="load")
    widths = page.locator("#explanation td.bar span").evaluate_all(
        "(bars) => bars.map((bar) => bar.getBoundingClientRect().width)")
    assert len(widths) == 2 and max(widths) > 50
    page.screenshot(path=str(ARTIFACTS / "explanation-lineage.png"), full_page=True)
    assert problems == []
    page.close()
