"""The `driftloop` command as a new user runs it: init, check, ingest, batches, tick, models."""

from __future__ import annotations

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
    folder = tmp_path / "demo-project"
    result = runner.invoke(app, ["init", str(folder)])
    assert result.exit_code == 0, result.output
    spec = folder / "driftloop.yaml"
    spec.write_text(spec.read_text().replace("executor: local", "executor: inline"))
    old = Path.cwd()
    os.chdir(folder)
    yield folder
    os.chdir(old)


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_init_ingest_batches_shows_accepted_and_quarantined(project: Path) -> None:
    assert "is valid" in invoke("check")
    assert "7 new batch(es): 6 accepted, 1 quarantined" in invoke("ingest")
    listed = invoke("batches")
    assert listed.count("accepted") == 6 and "quarantined" in listed
    assert "non-numeric" in listed and "vicdemand" in listed
    assert "0 new batch(es)" in invoke("ingest")  # same files: no new batch


def test_tick_models_and_audited_rollback(project: Path) -> None:
    assert "promoted to champion" in invoke("tick")
    assert "nothing new" in invoke("tick")
    invoke("retrain", "--actor", "alice")
    invoke("tick")
    versions = invoke("models", "list")
    assert "champion" in versions and "2" in versions
    assert "already" in invoke("models", "promote", "2")
    invoke("models", "promote", "1", "--actor", "alice", "--reason", "checked by hand")
    shown = invoke("models", "show", "1")
    assert "alice" in shown and "checked by hand" in shown
    assert "caused by decision" in invoke("models", "show", "2")
    assert "v1 → v2" in invoke("models", "rollback", "--actor", "bob")
    assert "v2 → v1" in invoke("models", "rollback", "--actor", "bob")  # then the v1 before v2
    stuck = runner.invoke(app, ["models", "rollback"])  # not back to v2: nothing before v1
    assert stuck.exit_code == 1 and "no earlier version" in stuck.output
    assert "rollback:" in invoke("models", "show", "2")


def test_errors_are_messages_not_tracebacks(project: Path) -> None:
    (project / "driftloop.yaml").write_text(
        "name: x\nsource: {path: '*.csv'}\ntarget: y\ntrainer: {function: 1}\n"
    )
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 1
    assert "driftloop.yaml:4: trainer.function" in result.output
    assert "Traceback" not in result.output
    missing = runner.invoke(app, ["models", "show", "9"])
    assert missing.exit_code == 1 and "Traceback" not in missing.output


def test_a_failed_training_fails_the_command_and_check_finds_the_trainer(project: Path) -> None:
    spec = project / "driftloop.yaml"
    spec.write_text(spec.read_text().replace("train:make_model", "train:make_modle"))
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 1 and "make_modle" in result.output
    failed = runner.invoke(app, ["tick"])
    assert failed.exit_code == 1 and "training failed" in failed.output
    assert "training failed: training failed" not in failed.output


def test_tick_and_batches_show_the_estimated_accuracy_beside_the_realised(project: Path) -> None:
    from driftloop.data import elec2

    spec = project / "driftloop.yaml"
    spec.write_text(spec.read_text() + "estimate: {rows: 96}\n")
    invoke("tick")
    elec2.load_elec2().iloc[6 * 336 : 7 * 336].to_csv(project / "data" / "1996-06-18.csv",
                                                      index=False)
    ticked = invoke("tick")
    assert "estimated accuracy 0." in ticked and "before its labels" in ticked
    listed = invoke("batches")
    assert "est. acc." in listed
    assert re.search(r"│ 8 .*│ 0\.\d{4} +│ 0\.\d{4} +│", listed), listed  # realised, estimated
