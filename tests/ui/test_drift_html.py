"""The drift report (`driftloop report`): self-contained, small for a thousand columns
(aggregates only), every column's test and histogram present; and the command on a scaffolded
project. tests/integration/test_browser.py opens the wide report in Chromium and times it."""

from __future__ import annotations

import functools
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import specs
from typer.testing import CliRunner

from driftloop.cli.main import app
from driftloop.controller import project as projects
from driftloop.core import config
from driftloop.data import profile as profiles
from driftloop.drift import histograms
from driftloop.drift import report as drift_reports
from driftloop.ui import drift_report

NUMERIC, CATEGORICAL, DRIFTED = 800, 200, 50


def wide_frames(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference (20 000 rows) and current (5 000 rows) data of 1 000 columns; the first
    `DRIFTED` numeric columns are shifted by one standard deviation in the current data."""
    rng = np.random.default_rng(seed)
    def frame(rows: int, shift: bool) -> pd.DataFrame:
        numbers = rng.normal(size=(rows, NUMERIC))
        if shift:
            numbers[:, :DRIFTED] += 1.0
        columns = {f"num_{i:03d}": numbers[:, i] for i in range(NUMERIC)}
        letters = np.array(list("abcdefghij"))
        for i in range(CATEGORICAL):
            columns[f"cat_{i:03d}"] = letters[rng.integers(0, 3 + i % 8, size=rows)]
        return pd.DataFrame(columns)
    return frame(20_000, False), frame(5_000, True)


@functools.cache
def wide_html() -> tuple[str, float]:
    """The report of `wide_frames` and the seconds it took to test, bin and render (profiling
    the reference is the trainer's job and not counted); built once per test session."""
    reference, current = wide_frames()
    kinds = {name: "numeric" if name.startswith("num") else "categorical"
             for name in reference.columns}
    profile = profiles.build_profile(reference, columns=kinds)
    started = time.perf_counter()
    found = drift_reports.detect_drift(profile, current, config.DriftSpec())
    shapes = histograms.column_histograms(profile, current, list(kinds))
    html = drift_report.render_drift(
        found, shapes, drift_report.Sides("synthetic reference", "synthetic current"),
        title="wide drift report")
    return html, time.perf_counter() - started


def wide_report(folder: Path) -> tuple[Path, float]:
    """`wide_html` written to `folder`, and the seconds it took to build."""
    html, seconds = wide_html()
    path = folder / "wide-drift.html"
    path.write_text(html, encoding="utf-8")
    return path, seconds


def test_a_thousand_columns_make_a_small_offline_report(tmp_path: Path) -> None:
    path, seconds = wide_report(tmp_path)
    html = path.read_text()
    size = path.stat().st_size
    print(f"1000-column drift report: {size / 1024:.0f} KB, built in {seconds:.2f} s")
    assert size < 1_000_000  # Evidently's equivalent is tens of MB
    assert not re.search(r"""(src|href)=["']https?://""", html)
    shapes = json.loads(re.search(  # type: ignore[union-attr]
        r'<script type="application/json" id="shapes">(.*?)</script>', html, re.S).group(1))
    assert len(shapes) == NUMERIC + CATEGORICAL
    assert len(shapes["num_000"]["r"]) == len(shapes["num_000"]["c"]) == 20
    rows = re.findall(r'<tr class="(drifted)?" data-name="([^"]+)"', html)
    assert len(rows) == NUMERIC + CATEGORICAL
    flagged = {name for drifted, name in rows if drifted}
    assert {f"num_{i:03d}" for i in range(DRIFTED)} <= flagged
    assert len(flagged) < DRIFTED + 10  # the rest are noise: few false alarms
    assert rows[0][0] == "drifted"  # drifted columns first
    assert "Dataset drift" not in html.split('id="verdict"')[1][:60]  # 5 % < 30 %


def test_column_names_cannot_break_out_of_the_page(tmp_path: Path) -> None:
    frame = pd.DataFrame({"</script><b>x": [1.0, 2.0, 3.0, 4.0]})
    profile = profiles.build_profile(frame, columns={"</script><b>x": "numeric"}, bins=2)
    found = drift_reports.detect_drift(profile, frame, config.DriftSpec())
    html = drift_report.render_drift(
        found, histograms.column_histograms(profile, frame, list(frame.columns)),
        drift_report.Sides("a", "b"), title="t")
    assert "</script><b>" not in html and html.count("</script>") == 2


@pytest.fixture
def ticked(tmp_path: Path) -> Iterator[Path]:
    runner = CliRunner()
    folder = tmp_path / "project"
    assert runner.invoke(app, ["init", str(folder), "--weeks", "3"]).exit_code == 0
    spec = folder / "driftloop.yaml"
    specs.override(spec, replace={"trainer": {"executor": "inline", "params": {"max_iter": 10}}})
    old = Path.cwd()
    os.chdir(folder)
    try:
        yield folder
    finally:
        os.chdir(old)


def test_report_command_writes_the_newest_batch_against_the_champion(ticked: Path) -> None:
    runner = CliRunner()
    before = runner.invoke(app, ["report"])
    assert before.exit_code == 1 and "no champion yet" in before.output
    assert runner.invoke(app, ["tick"]).exit_code == 0
    done = runner.invoke(app, ["report", "--out", "drift.html"])
    assert done.exit_code == 0, done.output
    html = (ticked / "drift.html").read_text()
    for name in ("nswprice", "nswdemand", "vicprice", "vicdemand", "transfer"):
        assert f'data-name="{name}"' in html
    missing = runner.invoke(app, ["report", "--batch", "999"])
    assert missing.exit_code == 1 and "batch 999 does not exist" in missing.output
    opened = projects.open_project(ticked / "driftloop.yaml")
    (bad,) = opened.store.batches.list(opened.name, status="quarantined")
    opened.close()
    quarantined = runner.invoke(app, ["report", "--batch", str(bad.id)])
    assert quarantined.exit_code == 1 and "no stored rows" in quarantined.output
