"""`driftloop tick --json`: one JSON object per tick and the documented exit codes (0 acted,
1 failed, 75 lease held elsewhere, 99 nothing to do), run through the real CLI."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from driftloop.cli import project_commands as scaffold
from driftloop.cli import tick_json
from driftloop.cli.main import app
from driftloop.controller import project as projects

runner = CliRunner()


def tick(spec: Path, *extra: str) -> tuple[int, dict[str, object]]:
    result = runner.invoke(app, ["tick", "--json", "--spec", str(spec), *extra])
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.output  # one machine-readable line, nothing else
    return result.exit_code, json.loads(lines[0])


def test_acted_then_idle_then_lease_held(tmp_path: Path) -> None:
    scaffold.init(tmp_path / "p", weeks=3)
    spec = tmp_path / "p" / "driftloop.yaml"

    code, found = tick(spec)
    assert (code, found["status"]) == (0, "acted")
    assert found["pipeline"] == "electricity" and len(found["batches"]["accepted"]) == 3
    assert found["training"]["version"] == 1 and found["training"]["promoted"]

    code, found = tick(spec)
    assert (code, found["status"], found["training"]) == (99, "idle", None)
    assert tick(spec, "--exit-zero")[0] == 0

    project = projects.open_project(spec)
    assert project.store.leases.acquire(project.name, "elsewhere", timedelta(minutes=5))
    project.close()
    code, found = tick(spec)
    assert (code, found["status"]) == (75, "lease_held")
    assert found["skipped"] == "another controller holds the lease"
    assert tick(spec, "--exit-zero")[0] == 0


def test_a_tick_that_cannot_run_fails_with_its_reason(tmp_path: Path) -> None:
    code, found = tick(tmp_path / "missing.yaml")
    assert (code, found["status"]) == (1, "failed")
    assert "cannot read spec" in str(found["error"])
    assert tick(tmp_path / "missing.yaml", "--exit-zero")[0] == 1
    assert set(tick_json.EXIT_CODES.values()) == {0, 1, 75, 99}
