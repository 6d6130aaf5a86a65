"""What an operator reads: JSON logs from named loggers, the controller's metrics endpoint."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from driftloop.cli.main import app

runner = CliRunner()


def test_json_logs_come_from_named_loggers(cli_project: Path) -> None:
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


def test_text_logs_at_info(cli_project: Path) -> None:
    result = runner.invoke(app, ["--log-level", "info", "ingest"])
    assert result.exit_code == 0, result.output
    assert re.search(r"INFO driftloop\.controller\.ingest: electricity: batch 3 \(.*-meter-fault"
                     r"\.csv, 336 rows\) quarantined: \['nswprice', 'vicdemand'\]", result.stderr)
    assert "{" not in result.stderr  # text only, though an earlier command logged JSON


def test_run_exposes_the_controller_metrics(cli_project: Path) -> None:
    result = runner.invoke(app, ["run", "--ticks", "1", "--metrics-port", "0"])
    assert result.exit_code == 0, result.output
    assert re.search(r"metrics on http://127\.0\.0\.1:\d+/metrics", result.output)
