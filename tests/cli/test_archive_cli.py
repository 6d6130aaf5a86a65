"""The archive from the command line: predictions served and labelled two weeks ago leave the
store in a tick, `driftloop backtest --archive` replays them, `driftloop report --served`
compares a day of them with the champion's training data, and `driftloop gc` deletes archived
files past `retention.archives` (dry run first, audited)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import specs
import sqlalchemy as sa
from typer.testing import CliRunner

from driftloop.cli import project_commands as scaffold
from driftloop.cli.main import app
from driftloop.controller import project as projects
from driftloop.controller import tick
from driftloop.store import archive, serving, tables

runner = CliRunner(env={"COLUMNS": "200"})
pytestmark = pytest.mark.slow


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A trained project whose server logged 600 labelled predictions 8 to 14 days ago, then
    ticked once (which archived them: the default label horizon is 7 days)."""
    root = tmp_path / "pipeline"
    scaffold.init(root, weeks=3)
    spec = root / "driftloop.yaml"
    specs.override(spec, replace={"trainer": {"executor": "inline"}})
    monkeypatch.chdir(root)
    project = projects.open_project(spec)
    tick.Controller(project, holder="a").tick()
    data = pd.concat(pd.read_csv(path) for path in sorted((root / "data").glob("1996-*.csv"))
                     if "fault" not in path.name).head(600)
    store = serving.ServingStore(project.store)
    start = datetime.now(UTC) - timedelta(days=14)
    logged = [
        serving.Prediction(str(uuid.uuid4()), project.name, "champion", 1, None,
                           {k: v for k, v in row.items() if k not in ("class", "time")},
                           int(row["class"]), None, start + i * timedelta(days=6) / 600)
        for i, row in enumerate(data.to_dict("records"))
    ]
    store.add_predictions(logged)
    store.add_feedback(project.name, [(p.id, int(row)) for p, row in
                                      zip(logged, data["class"], strict=True)], actor="t")
    controller = tick.Controller(project, holder="a")
    while controller.tick().swept:  # a slice per tick: 600 rows take one
        pass
    assert store.count_predictions(project.name) == 0
    project.close()
    yield root


def test_backtest_replays_the_archived_predictions(folder: Path) -> None:
    result = runner.invoke(app, ["backtest", "--archive", "--every", "1d", "--warmup", "2d",
                                 "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "every-batch" in result.output and "5/5" in result.output  # 2 days warm-up + 4


def test_report_reads_a_day_served(folder: Path, tmp_path: Path) -> None:
    project = projects.open_project(folder / "driftloop.yaml")
    (first, *_) = archive.Archive(project.store, project.artifacts).files_of(project.name)
    project.close()
    out = tmp_path / "served.html"
    result = runner.invoke(app, ["report", "--served", first.day, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"inputs served on {first.day}" in out.read_text()


def test_gc_deletes_archives_past_their_retention(folder: Path) -> None:
    project = projects.open_project(folder / "driftloop.yaml")
    files = archive.Archive(project.store, project.artifacts)
    records = files.files_of(project.name)
    assert records and all(Path(r.uri.removeprefix("file://")).exists() for r in records)
    result = runner.invoke(app, ["gc"])
    assert "no archived file older than 400 days" in result.output
    with project.store.db.write() as conn:  # as if they were written 500 days ago
        conn.execute(sa.update(tables.archives).values(
            created_at=datetime.now(UTC) - timedelta(days=500)))
    result = runner.invoke(app, ["gc"])
    assert result.exit_code == 0 and f"{len(records)} archived file(s)" in result.output
    assert all(Path(r.uri.removeprefix("file://")).exists() for r in records), "a dry run"
    result = runner.invoke(app, ["gc", "--yes", "--actor", "ops"])
    assert result.exit_code == 0, result.output
    assert not any(Path(r.uri.removeprefix("file://")).exists() for r in records)
    assert files.files_of(project.name) == []
    assert len(files.files_of(project.name, deleted=True)) == len(records)  # still recorded
    (audit,) = project.store.audit.list(action="archives.gc")
    assert audit.actor == "ops" and len(audit.details["files"]) == len(records)
    project.close()
