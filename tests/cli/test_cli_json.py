"""`--json` on the commands a script reads, `--version`, and durations in duration options."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import specs
from typer.testing import CliRunner

import driftloop
from driftloop.cli.main import app

runner = CliRunner()


def document(*args: str, code: int = 0) -> Any:
    """The one JSON document the command wrote on stdout."""
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def test_models_and_batches_as_json(cli_project: Path) -> None:
    assert runner.invoke(app, ["tick"]).exit_code == 0
    listed = document("models", "list")
    assert listed["pipeline"] == "electricity" and listed["metric"] == "accuracy"
    (first,) = listed["versions"]
    assert set(first) == {"version", "created_at", "aliases", "metrics", "gate", "run_id",
                          "batch_ids", "artifact_uri", "sha256"}
    assert first["version"] == 1 and first["aliases"] == ["champion"]
    assert first["gate"]["passed"] is True

    shown = document("models", "show", "1")
    assert set(shown) == {"pipeline", "version", "run", "decision", "gate", "moves", "trials"}
    assert shown["run"]["status"] == "succeeded" and shown["moves"][0]["to"] == 1

    batches = document("batches")["batches"]
    assert [b["status"] for b in batches].count("quarantined") == 1
    quarantined = next(b for b in batches if b["status"] == "quarantined")
    assert "vicdemand" in quarantined["reasons"]
    assert set(batches[0]) == {"id", "source_uri", "rows", "start", "end", "status", "reasons",
                               "quality", "quality_rows", "requeued_from", "created_at"}


def test_check_as_json_valid_and_not(cli_project: Path) -> None:
    valid = document("check")
    assert valid == {"spec": "driftloop.yaml", "valid": True, "problems": [],
                     "pipeline": "electricity"}
    spec = cli_project / "driftloop.yaml"
    specs.override(spec, replace={"target": specs.DELETE}, add={"targte": "class"})
    broken = document("check", code=1)
    assert broken["valid"] is False and broken["pipeline"] is None
    assert any("targte" in problem for problem in broken["problems"])


def test_backtest_as_json(cli_project: Path) -> None:
    found = document("backtest", "--every", "7d", "--warmup", "7d", "--workers", "1",
                     "--out", "bt.html")
    assert found["report"] == "bt.html" and (cli_project / "bt.html").stat().st_size > 1000
    policies = {p["policy"]: p for p in found["policies"]}
    assert {"never", "every-batch"} <= set(policies)
    assert found["every_seconds"] == 7 * 86400
    assert all(p["batches"] == policies["never"]["batches"] for p in policies.values())


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"driftloop {driftloop.__version__}\n"


def test_durations_in_duration_options(cli_project: Path) -> None:
    ran = runner.invoke(app, ["run", "--ticks", "2", "--every", "1s"])
    assert ran.exit_code == 0 and "next tick in 1 s" in ran.output
    wrong = runner.invoke(app, ["run", "--every", "soon"])
    assert wrong.exit_code == 1 and "is not a duration" in wrong.output
