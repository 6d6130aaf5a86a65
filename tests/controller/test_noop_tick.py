"""A tick with nothing new decides from records: no champion model, no rows, no heavy imports;
and a champion whose file is corrupted is a recorded health problem the loop retrains past."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
import specs
from typer.testing import CliRunner

from driftloop.cli.main import app
from driftloop.controller import champion_models
from driftloop.controller import project as projects
from driftloop.controller import tick as ticking
from driftloop.server import live_models
from driftloop.store import artifacts as artifact_store

runner = CliRunner()
HEAVY = ("pandas", "numpy", "scipy", "sklearn", "skops", "river", "pyarrow", "alembic")
UNUSED = (  # modules a no-op tick of a file pipeline has no use for
    "driftloop.data.sources.sql", "driftloop.data.sources.redis_stream",
    "driftloop.data.sources.nats_stream", "driftloop.data.sources.rest",
    "driftloop.data.sources.events", "rich.table",
)


@pytest.fixture
def trained(tmp_path: Path) -> Iterator[Path]:
    """The scaffold project (gate on, training in process) after its first tick: v1 is live."""
    folder = tmp_path / "project"
    assert runner.invoke(app, ["init", str(folder)]).exit_code == 0
    spec = folder / "driftloop.yaml"
    specs.override(spec, replace={"trainer": {"executor": "inline"}, "gate": {"enabled": True}})
    old = Path.cwd()
    os.chdir(folder)
    try:
        result = runner.invoke(app, ["tick"])
        assert "v1 promoted to champion" in result.output, result.output
        yield spec
    finally:
        os.chdir(old)


def tick(spec: Path) -> ticking.TickResult:
    project = projects.open_project(spec)
    controller = ticking.build_controller(project)
    try:
        return controller.tick()
    finally:
        controller.release()
        project.close()


def imported(folder: Path, command: list[str], modules: tuple[str, ...]) -> tuple[str, str]:
    """The output of `driftloop command` run in a new process, and which of `modules` it
    imported (space-separated)."""
    code = (
        "import sys\nfrom driftloop.cli.main import app\n"
        f"try:\n    app({command!r})\nexcept SystemExit as exc:\n    assert not exc.code, exc\n"
        f"print('imported:', ' '.join(m for m in {modules!r} if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(ticking.__file__).parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, check=True,
        env=env,
    )
    *output, last = done.stdout.strip().splitlines()
    return "\n".join(output), last.removeprefix("imported:").strip()


def test_a_noop_tick_imports_nothing_heavy(trained: Path) -> None:
    output, found = imported(trained.parent, ["tick"], HEAVY + UNUSED)
    assert "nothing new" in output
    assert found == "", output


@pytest.mark.parametrize("command", [["models", "list"], ["batches"], ["status"]])
def test_reading_records_imports_neither_fsspec_nor_anything_heavy(
    trained: Path, command: list[str]
) -> None:
    output, found = imported(trained.parent, command, (*HEAVY, "fsspec"))
    assert found == "", output


def test_a_noop_tick_loads_neither_the_champion_nor_rows(
    trained: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded: list[str] = []

    def refuse(self: Any, uri: str, sha256: str) -> Any:
        loaded.append(uri)
        raise AssertionError(f"a no-op tick loaded {uri}")

    monkeypatch.setattr(artifact_store.ArtifactStore, "get_model", refuse)
    monkeypatch.setattr(artifact_store.ArtifactStore, "get_frame", refuse)
    result = tick(trained)
    assert not result.acted and loaded == []


def corrupt_champion(spec: Path) -> int:
    project = projects.open_project(spec)
    number = project.store.aliases.get(project.name, "champion")
    assert number is not None
    version = project.store.versions.get(project.name, number)
    fs, path = fsspec.core.url_to_fs(version.artifact_uri)
    fs.pipe_file(path, b"not a model any more")
    project.close()
    return number


def test_a_corrupted_champion_is_reported_and_retrained_past(trained: Path) -> None:
    corrupted = corrupt_champion(trained)
    result = tick(trained)  # nothing new but the broken champion
    assert result.decision is not None and result.decision.fired
    assert result.decision.evidence[champion_models.UNUSABLE] == corrupted
    assert result.decision.evidence["policy"]["reason"] == "no champion"
    assert result.outcome is not None and result.outcome.version is not None
    assert result.outcome.promoted  # the gate had no usable champion to compare with
    report = result.outcome.version.gate_report or {}
    assert report.get("champion_score") is None

    project = projects.open_project(trained)
    try:
        health = project.store.decisions.list(project.name, kind="health")
        assert [d.evidence["problem"] for d in health] == [champion_models.UNUSABLE]
        assert health[0].evidence["version"] == corrupted
        assert "does not match its recorded hash" in health[0].evidence["error"]
        assert project.store.aliases.get(project.name, "champion") == result.outcome.version.version
    finally:
        project.close()
    again = tick(trained)
    assert not again.acted, again


def test_the_corrupted_champion_is_reported_once(trained: Path) -> None:
    corrupt_champion(trained)
    project = projects.open_project(trained)
    try:
        for _ in range(2):
            controller = ticking.Controller(project)  # a new process each time
            champion = controller.models.champion()
            assert champion is not None
            controller.models.report_unusable(champion, ValueError("broken"))
        assert len(project.store.decisions.list(project.name, kind="health")) == 1
    finally:
        project.close()


def test_the_server_keeps_the_last_good_model_when_the_new_one_is_corrupted(
    trained: Path,
) -> None:
    project = projects.open_project(trained)
    try:
        errors: list[int] = []
        holder = live_models.ModelHolder(
            project.store, project.artifacts, project.name,
            on_load_error=lambda alias, number, exc: errors.append(number),
        )
        assert holder.refresh() == ["champion"]
        good = holder.get()
        assert good is not None
        v1 = project.store.versions.get(project.name, good.number)
        broken = project.artifacts.put_bytes(b"garbage", suffix=".skops")
        v2 = project.store.versions.add(
            project.name, run_id=v1.run_id, artifact_uri=broken.uri, sha256="0" * 64,
            metrics=v1.metrics)
        project.store.aliases.set(project.name, "champion", v2.version, actor="test", reason="t")
        assert holder.refresh() == []  # not swapped in
        assert holder.get() is good and errors == [v2.version]
    finally:
        project.close()


def test_models_list_and_batches_show_the_newest_and_count_the_rest(trained: Path) -> None:
    project = projects.open_project(trained)
    v1 = project.store.versions.get(project.name, 1)
    for _ in range(4):
        project.store.versions.add(
            project.name, run_id=v1.run_id, artifact_uri=v1.artifact_uri, sha256=v1.sha256,
            metrics=v1.metrics)
    project.close()
    listed = runner.invoke(app, ["models", "list", "--last", "2"]).output
    assert "3 older version(s) not shown" in listed
    assert "│ 5 " in listed and "│ 4 " in listed and "│ 3 " not in listed
    assert "not shown" not in runner.invoke(app, ["models", "list"]).output
    batches = runner.invoke(app, ["batches", "--last", "3"]).output
    assert "4 older batch(es) not shown" in batches
    assert "older" not in runner.invoke(app, ["batches", "--last", "0"]).output
