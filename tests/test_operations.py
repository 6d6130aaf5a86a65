"""What an operator reads: JSON logs from named loggers, the controller's metrics endpoint."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driftloop.cli.main import app

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "ops"
    assert runner.invoke(app, ["init", str(folder)]).exit_code == 0
    spec = folder / "driftloop.yaml"
    spec.write_text(spec.read_text().replace("executor: local", "executor: inline"))
    old = Path.cwd()
    os.chdir(folder)
    yield folder
    os.chdir(old)


def test_json_logs_come_from_named_loggers(project: Path) -> None:
    result = runner.invoke(app, ["--log-format", "json", "--log-level", "debug", "tick"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert records and all(set(r) >= {"time", "level", "logger", "message"} for r in records)
    loggers = {r["logger"] for r in records}
    assert {"driftloop.controller.tick", "driftloop.controller.ingest",
            "driftloop.store._engine", "driftloop.data.sources.base"} <= loggers
    ticked = next(r for r in records if r["logger"] == "driftloop.controller.tick")
    assert "training succeeded: v1, promoted" in ticked["message"]
    assert "promoted to champion" in result.stdout  # the human output is unchanged


def test_text_logs_at_info(project: Path) -> None:
    result = runner.invoke(app, ["--log-level", "info", "ingest"])
    assert result.exit_code == 0, result.output
    assert re.search(r"INFO driftloop\.controller\.ingest: electricity: batch 3 \(.*-meter-fault"
                     r"\.csv, 336 rows\) quarantined: \['nswprice', 'vicdemand'\]", result.stderr)
    assert "{" not in result.stderr  # text only, though an earlier command logged JSON


def test_run_exposes_the_controller_metrics(project: Path) -> None:
    result = runner.invoke(app, ["run", "--ticks", "1", "--metrics-port", "0"])
    assert result.exit_code == 0, result.output
    assert re.search(r"metrics on http://127\.0\.0\.1:\d+/metrics", result.output)
