"""The dashboard in a real browser: Debian's /usr/bin/chromium, headless, driven by Playwright,
against a real `driftloop serve` (canary rollout, live traffic) over the history of
tests/ui/test_dashboard.py. Every page renders without console errors, the charts draw, clicking
a model version on the timeline opens its lineage; the backtest report's charts are painted;
screenshots go to test-artifacts/.

Marked `browser`: skipped with the reason when Chromium or Playwright is missing, failed
instead under DRIFTLOOP_REQUIRE_SERVICES=1 (CI installs both).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from conftest import require_service
from test_dashboard import lived_folder, view_token
from test_drift_html import wide_report
from test_regions import regional
from test_server import RECORD, Server, bearer
from uvicorn_thread import serving as serving_app

from driftloop.controller import policy_replay, rollout
from driftloop.controller import project as projects
from driftloop.store import notes, serving
from driftloop.ui import backtest_report, dashboard_app

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PAGES = {  # screenshot name -> path (the version is filled in)
    "overview": "/ui/",
    "timeline": "/ui/pipelines/electricity",
    "lineage": "/ui/pipelines/electricity/versions/{champion}",
    "serving": "/ui/pipelines/electricity/serving",
}
CHART_PIXELS = """(element) => {
  const canvas = element.querySelector("canvas");
  if (!canvas || !element.chart) return [0, 0];
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) painted++;
  return [painted, element.chart.data[0].length];
}"""

COLOURED_PIXELS = """(element) => {
  const canvas = element.querySelector("canvas");
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let coloured = 0;  // axes, grid and labels are grey: only data is drawn in colour
  for (let i = 0; i < pixels.length; i += 4) {
    const high = Math.max(pixels[i], pixels[i + 1], pixels[i + 2]);
    const low = Math.min(pixels[i], pixels[i + 1], pixels[i + 2]);
    if (pixels[i + 3] > 0 && high - low > 60) coloured++;
  }
  return coloured;
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        require_service("Chromium", f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_service("Playwright", "not installed (pip install -e '.[dev]')")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str, int]]:
    """A canary rollout of the first version against the newest champion, with traffic."""
    folder = lived_folder(tmp_path_factory, "browser")
    spec = folder / "driftloop.yaml"
    spec.write_text(spec.read_text() + "\nrollout:\n  strategy: canary\n  share: 0.5\n")
    opened = projects.open_project(spec)
    champion = opened.store.aliases.get(opened.name, "champion")
    assert champion is not None
    opened.store.aliases.set(opened.name, "canary", 1, actor="test", reason="canary of v1",
                           action="rollout")
    opened.close()
    secret = view_token(folder, ("view", "predict"))
    server = Server(spec)
    try:
        for key in range(60):
            answer = httpx.post(server.url + "/v1/predict", headers=bearer(secret), json={
                "records": [RECORD] * 5, "key": f"client-{key}"})
            assert answer.status_code == 200, answer.text
        time.sleep(1.0)  # the poller writes the per-minute tallies every 0.25 s
        opened = projects.open_project(spec)
        judged = rollout.evaluate_rollout(opened, serving.ServingStore(opened.store), "test")
        opened.close()
        assert judged is not None and judged.evidence["outcome"] == "wait"  # no labels yet
        yield server, secret, champion
    finally:
        assert server.stop()


def test_every_page_renders_charts_draw_and_a_version_opens_its_lineage(
    browser: Any, served: tuple[Server, str, int],
) -> None:
    server, secret, champion = served
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))

    page.goto(server.url + "/ui/pipelines/electricity")
    assert "/ui/login" in page.url  # no token yet
    page.fill("#token", secret)
    page.click("#login")
    page.wait_for_url("**/ui/pipelines/electricity")

    timings = {}
    for name, path in PAGES.items():
        started = time.perf_counter()
        page.goto(server.url + path.format(champion=champion), wait_until="load")
        timings[name] = round(time.perf_counter() - started, 3)
        assert page.title().startswith("driftloop"), name
        for chart in page.query_selector_all("[data-chart]"):
            painted, points = chart.evaluate(CHART_PIXELS)
            assert painted > 500 and points > 0, (name, chart.get_attribute("id"))
        page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)
    print("page load seconds (navigation to load, charts drawn):", timings)
    assert "canary" in page.inner_text("#comparison")  # the serving page, shown last
    assert "champion" in page.inner_text("#comparison")
    assert "canary of v1 vs champion" in page.inner_text("#rollout")

    page.goto(server.url + "/ui/pipelines/electricity")
    link = page.locator("#events a.version").first
    number = link.get_attribute("data-version")
    link.click()
    page.wait_for_url(f"**/ui/pipelines/electricity/versions/{number}")
    assert page.inner_text("#version-title").endswith(f"v{number}")
    for part in ("#decision", "#batches", "#run", "#gate", "#moves"):
        assert page.locator(part).count() == 1, part
    page.screenshot(path=str(ARTIFACTS / "dashboard-clicked-lineage.png"), full_page=True)
    assert problems == []
    page.close()


def test_a_thousand_column_drift_report_opens_fast(browser: Any, tmp_path: Path) -> None:
    path, built = wide_report(tmp_path)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    started = time.perf_counter()
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_selector("canvas.hist[data-drawn]")
    opened = time.perf_counter() - started
    drawn = page.locator("canvas.hist[data-drawn]").count()
    assert 0 < drawn < 200  # only the rows in view are drawn
    assert page.locator("#columns tbody tr").count() == 1000
    page.fill("#filter", "num_00")
    assert page.locator("#columns tbody tr:visible").count() == 10
    page.screenshot(path=str(ARTIFACTS / "drift-report-1000-columns.png"))
    size = path.stat().st_size
    print(f"1000-column drift report: {size / 1024:.0f} KB, built in {built:.2f} s, "
          f"opened (load + first histograms) in {opened:.2f} s, {drawn} histograms drawn")
    assert opened < 10
    assert problems == []
    page.close()


def replayed(days: int = 300) -> list[policy_replay.PolicyResult]:
    """Seeded daily scores shaped like a backtest: never the worst, online the best, the
    fixed-window every-batch the reference."""
    chance = random.Random(7)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    policies = {  # name: (mean loss against every-batch, trains every n days, CPU per training)
        "never": (0.08, 10_000, 0.2), "every-batch": (0.01, 1, 0.1),
        "every-batch (fixed window)": (0.0, 1, 0.1), "schedule (same budget)": (0.02, 8, 0.1),
        "mine": (0.012, 9, 0.1), "online": (-0.005, 20, 0.3),
    }
    season = [0.8 + 0.05 * math.sin(day / 20) for day in range(days)]
    results = []
    for name, (loss, every, cpu) in policies.items():
        steps = tuple(
            policy_replay.Step((start + timedelta(days=day)).isoformat(), 48,
                          None if day == 0 else season[day] - loss * (1 + math.sin(day / 9))
                          + chance.gauss(0, 0.02),
                          day % every == 0, day % every == 0, 0.1, {"x": chance.random()})
            for day in range(days))
        scores = [s.metric for s in steps if s.metric is not None]
        trainings = sum(s.retrained for s in steps)
        results.append(policy_replay.PolicyResult(name, "accuracy", sum(scores) / len(scores),
                                             trainings, trainings, trainings * cpu, 1.0, steps))
    return results


def test_the_backtest_report_paints_its_pareto_and_gap_charts(
    browser: Any, tmp_path: Path,
) -> None:
    path = tmp_path / "report.html"
    path.write_text(backtest_report.render_backtest(replayed(), title="driftloop backtest",
                                           description="300 daily batches", focus="mine"))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.goto(path.as_uri(), wait_until="load")
    charts = ["#pareto", *(f'.gap[data-policy="{name}"]' for name in (
        "mine", "schedule (same budget)", "online", "never", "every-batch")), "#accuracy", "#drift"]
    for selector in charts:
        painted, points = page.locator(selector).evaluate(CHART_PIXELS)
        assert painted > 500 and points > 0, selector
        # the points, the gap lines and their fill, the score and drift lines
        assert page.locator(selector).evaluate(COLOURED_PIXELS) > 100, selector
    assert page.locator(".gap").count() == 5  # every row but the reference
    assert page.locator(".gap-title").first.inner_text().startswith("mine")
    assert not page.locator("#accuracy").is_visible()  # the lines are there, collapsed
    page.screenshot(path=str(ARTIFACTS / "backtest-report.png"), full_page=True)
    page.locator("#pareto").screenshot(path=str(ARTIFACTS / "backtest-report-pareto.png"))
    assert problems == []
    page.close()


def test_the_regions_page_shows_every_region_and_notes_in_the_readers_time_zone(
    browser: Any, tmp_path: Path,
) -> None:
    folder = regional(tmp_path, ticked=True)
    project = projects.open_project(folder / "driftloop.yaml", region="eu")
    page = browser.new_page(viewport={"width": 1280, "height": 700})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    try:
        with serving_app(dashboard_app.create_app(project)) as url:
            page.goto(url + "/ui/", wait_until="load")
            page.click("#regions-link")
            page.wait_for_url("**/ui/regions")
            assert page.title() == "driftloop: regions"
            rows = page.locator("#regions tbody tr")
            assert rows.count() == 2
            eu = page.inner_text('#regions tr[data-region="eu"]')
            us = page.inner_text('#regions tr[data-region="us"]')
            assert "Europe/Berlin" in eu and "America/Los_Angeles" in us
            assert "v1" in eu and "v1" in us
            page.screenshot(path=str(ARTIFACTS / "dashboard-regions.png"), full_page=True)
            # a note written in Berlin, read in Kolkata: the browser shows its own local time
            note = notes.Notes(project.store).add("churn", "version", 1, author="ana@eu",
                                                  text="ok for the EU")
            kolkata = browser.new_context(timezone_id="Asia/Kolkata", locale="en-US").new_page()
            kolkata.goto(url + "/ui/pipelines/churn/versions/1", wait_until="load")
            shown = kolkata.inner_text("#notes time")
            local = note.at.astimezone(ZoneInfo("Asia/Kolkata"))
            assert "GMT+5:30" in shown and f"{local:%I:%M}" in shown, shown
            assert "ana@eu" in kolkata.inner_text("#notes")
            kolkata.close()
    finally:
        page.close()
        project.close()
    assert problems == []
