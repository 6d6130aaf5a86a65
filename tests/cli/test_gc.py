"""`driftloop gc`: a model file a killed controller wrote but never recorded is found and
removed (dry run first, audited); referenced files and young files are never touched."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import specs
from typer.testing import CliRunner

from driftloop.cli import project_commands as scaffold
from driftloop.cli.main import app
from driftloop.controller import project as projects
from driftloop.controller import tick

runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "pipeline"
    scaffold.init(root, weeks=4)
    spec = root / "driftloop.yaml"
    specs.override(spec, replace={"trainer": {"executor": "inline"}})
    monkeypatch.chdir(root)
    yield root


def crash_after_writing_the_model(folder: Path) -> None:
    """A tick that trains, writes the model file, and dies before recording its version."""
    project = projects.open_project(folder / "driftloop.yaml")

    def killed(*args: object, **kwargs: object) -> object:
        raise KeyboardInterrupt("SIGKILL between put_model and add_model_version")

    with pytest.MonkeyPatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(project.store.versions, "add", killed)
        tick.Controller(project, holder="a").tick()
    project.close()


def first_cells(output: str) -> str:
    """The table's first column, its lines joined: a long file name wraps in its cell."""
    return "".join(line.split("│")[1].strip() for line in output.splitlines()
                   if line.startswith("│"))


def files_of(folder: Path) -> set[Path]:
    return {path for path in (folder / "artifacts").rglob("*") if path.is_file()}


def test_an_unrecorded_model_file_is_found_and_removed(folder: Path) -> None:
    crash_after_writing_the_model(folder)
    project = projects.open_project(folder / "driftloop.yaml")
    assert project.store.versions.list(project.name) == []
    batches = project.store.batches.list(project.name)  # quarantined ones keep their rows too
    referenced = {Path(b.data_uri.removeprefix("file://")) for b in batches if b.data_uri}
    # the model file, and the calibrator written with it (`train.calibration`)
    orphans = files_of(folder) - referenced
    (orphan,) = [path for path in orphans if path.suffix == ".skops"]
    (calibrator,) = orphans - {orphan}
    assert calibrator.suffix == ".json"
    stray = folder / "artifacts" / "notes.txt"  # not an artifact name: never touched
    stray.write_text("mine")

    young = runner.invoke(app, ["gc"])  # the default --min-age 1h spares a fresh file
    assert young.exit_code == 0 and "no unreferenced files older than 1h" in young.output, (
        young.output)
    old = time.time() - 2 * 3600
    os.utime(orphan, (old, old))
    os.utime(calibrator, (old, old))
    dry = runner.invoke(app, ["gc"])
    assert dry.exit_code == 0, dry.output
    assert f"{orphan.parent.name}/{orphan.name}" in first_cells(dry.output)
    assert f"{orphan.stat().st_size:,}" in dry.output
    assert "2 file(s)" in dry.output and "would go" in dry.output
    assert orphan.exists()  # a dry run deletes nothing

    done = runner.invoke(app, ["gc", "--yes", "--actor", "ops"])
    assert done.exit_code == 0 and "deleted 2 file(s)" in done.output, done.output
    assert files_of(folder) == referenced | {stray}
    (entry,) = project.store.audit.list(action="artifacts.gc")
    assert entry.actor == "ops" and entry.details["bytes"] > 0
    assert sorted(Path(uri).name for uri in entry.details["files"]) == sorted(
        [orphan.name, calibrator.name])

    result = tick.Controller(project, holder="a").tick()  # the loop carries on from the store
    assert result.outcome is not None and result.outcome.version is not None
    for batch in batches:  # every referenced file is intact
        assert len(project.artifacts.get_frame(batch.data_uri, batch.data_sha256)) == batch.rows
    again = runner.invoke(app, ["gc", "--yes", "--min-age", "0"])
    assert "no unreferenced files older than 0" in again.output
    version = project.store.versions.get(project.name, 1)
    assert project.artifacts.get_model(version.artifact_uri, version.sha256) is not None
    assert version.calibration_uri is not None  # the live version's calibrator is kept
    assert project.artifacts.get_json(version.calibration_uri, version.calibration_sha256)
    project.close()


def test_a_half_written_file_is_garbage_even_with_a_known_hash(folder: Path) -> None:
    project = projects.open_project(folder / "driftloop.yaml")
    tick.Controller(project).tick()
    version = project.store.versions.get(project.name, 1)
    path = Path(version.artifact_uri.removeprefix("file://"))
    partial = path.with_name(path.name + ".partial-" + "0" * 32)
    partial.write_bytes(b"half")
    done = runner.invoke(app, ["gc", "--yes", "--min-age", "0s"])
    assert done.exit_code == 0 and "an unfinished write" in done.output, done.output
    assert not partial.exists() and path.exists()
    project.close()
