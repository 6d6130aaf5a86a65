"""The `driftloop` command as a new user runs it: init, check, ingest, batches, tick, models."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import specs
from typer.testing import CliRunner

from driftloop.cli.main import app

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "demo-project"
    result = runner.invoke(app, ["init", str(folder)])
    assert result.exit_code == 0, result.output
    spec = folder / "driftloop.yaml"
    specs.override(spec, replace={"trainer": {"executor": "inline"}})
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
    specs.override(spec, replace={"trainer": {"function": "train:make_modle"}})
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 1 and "make_modle" in result.output
    failed = runner.invoke(app, ["tick"])
    assert failed.exit_code == 1 and "training failed" in failed.output
    assert "training failed: training failed" not in failed.output


def test_check_refuses_params_the_trainer_does_not_take(project: Path) -> None:
    spec = project / "driftloop.yaml"
    lines = spec.read_text().splitlines()
    line = lines.index("    max_iter: 50") + 1
    spec.write_text(specs.edited(spec.read_text(), {"    max_iter: 50": "    max_iters: 50"}))
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert message == (
        f"error: driftloop.yaml:{line}: trainer.params.max_iters: make_model takes no parameter "
        "'max_iters'; train:make_model accepts: max_iter, learning_rate"
    )
    (project / "deep.py").write_text("def make_model(depth, max_iter=1, learning_rate=0.1):\n"
                                     "    pass\n")
    specs.override(spec, replace={"trainer": {"function": "deep:make_model", "params": {
        "max_iters": specs.DELETE}}}, add={"trainer": {"params": {"max_iter": 50}}})
    missing = runner.invoke(app, ["check"])
    assert missing.exit_code == 1 and "trainer.params: make_model(depth" in missing.output
    assert "missing a required argument: 'depth'" in " ".join(missing.output.split())


def test_run_says_when_the_next_tick_comes(project: Path) -> None:
    output = invoke("run", "--ticks", "2", "--every", "0.5")
    assert output.count("next tick in 0.5 s, at ") == 1  # between the two ticks only
    assert "promoted to champion" in output and "nothing new" in output


def test_tick_names_the_line_of_train_py_that_raised(project: Path) -> None:
    (project / "train.py").write_text(
        "def make_model(max_iter=1, learning_rate=0.1):\n    raise ValueError('oops')\n")
    failed = runner.invoke(app, ["tick"])
    assert failed.exit_code == 1
    assert "ValueError: oops (at train.py:2 in make_model: `raise ValueError('oops')`)" in (
        " ".join(failed.output.split()))
    for _ in range(2):
        runner.invoke(app, ["tick"])
    gave_up = " ".join(invoke("tick").split())  # nothing new, but not silent about it
    assert "retraining gave up after 3 failures at " in gave_up
    assert "ValueError: oops (at train.py:2" in gave_up
    assert gave_up.endswith("`driftloop retrain` to try again")
    assert "3 times" in invoke("retrain", "--help")


def test_status_shows_champion_give_up_quarantines_and_lease(project: Path) -> None:
    import json

    assert "has no state yet" in invoke("status")
    invoke("tick")
    document = json.loads(invoke("status", "--json"))
    (electricity,) = document["pipelines"]
    assert set(electricity) == {"name", "champion", "last_activity", "pending", "gave_up",
                                "quarantined_last_day", "lease"}
    assert electricity["champion"]["version"] == 1 and electricity["gave_up"] is None
    assert electricity["quarantined_last_day"]["count"] == 1
    assert "non-numeric" in electricity["quarantined_last_day"]["newest_reason"]
    assert electricity["lease"]["held"] is False and electricity["pending"] == []

    # a new module: this process keeps train.py imported (a new `driftloop` process would not)
    (project / "broken.py").write_text(
        "def make_model(max_iter=1, learning_rate=0.1):\n    raise ValueError('oops')\n")
    spec = project / "driftloop.yaml"
    specs.override(spec, replace={"trainer": {"function": "broken:make_model"}})
    invoke("retrain")
    assert "retraining requested by" in invoke("status")
    for _ in range(3):
        runner.invoke(app, ["tick"])
    shown = " ".join(invoke("status").replace("│", " ").split())  # table cells wrap
    assert "retraining retraining gave up after 3 failures at " in shown
    assert "ValueError: oops" in shown and "`driftloop retrain` to try again" in shown
    (electricity,) = json.loads(invoke("status", "--json"))["pipelines"]
    assert electricity["gave_up"].startswith("retraining gave up after 3 failures")
    assert electricity["last_activity"]["kind"] == "run"
    assert "failed" in electricity["last_activity"]["outcome"]


def test_a_target_typo_is_caught_by_check_data_and_requeue_recovers_the_batches(
    project: Path,
) -> None:
    spec = project / "driftloop.yaml"
    right = spec.read_text()
    specs.override(spec, replace={"target": "Class"})
    assert "is valid" in invoke("check")  # the spec alone is fine ...
    caught = runner.invoke(app, ["check", "--data"])  # ... but it does not fit the data
    assert caught.exit_code == 1
    typo = "target: 'Class' is not a column of the data; did you mean 'class'?"
    assert typo in flat(caught.output)
    assert "7 new batch(es): 0 accepted, 7 quarantined" in invoke("ingest")
    listed = flat(invoke("batches"))
    assert "missing column(s) Class (target; did you mean 'class'?)" in listed
    assert "nothing new" in invoke("tick")  # the loop cannot train on quarantined data

    spec.write_text(right)
    assert "it fits the data" in flat(invoke("check", "--data"))
    requeued = flat(invoke("batches", "requeue", "--previous-spec", "--actor", "alice"))
    assert "requeued 7 batch(es): 6 accepted (1 → 8, 2 → 9, 4 → 10" in requeued
    assert "1 still quarantined" in requeued  # the faulty meter file is still wrong
    assert "no quarantined batch" in invoke("batches", "requeue", "--previous-spec")
    assert "promoted to champion" in invoke("tick")  # the next tick trains on them

    from driftloop.controller import project as projects

    opened = projects.open_project(spec)
    (entry,) = opened.store.audit.list(action="batches.requeue")
    assert entry.actor == "alice" and entry.target == "electricity"
    listed = opened.store.batches.list("electricity")
    (faulty,) = [b for b in listed if "meter-fault" in b.source_uri]
    assert faulty.status == "quarantined"
    assert any("non-numeric" in r for r in faulty.reasons["nswprice"])  # reasons of now
    fixed = [b for b in listed[:7] if b is not faulty]
    assert [b.status for b in fixed] == ["requeued"] * 6
    assert [b.status for b in listed[7:]] == ["accepted"] * 6
    assert [b.requeued_from for b in listed[7:]] == [b.id for b in fixed]
    assert entry.details["accepted"] == {str(b.id): b.id + 7 - (b.id > faulty.id) for b in fixed}
    assert entry.details["quarantined"] == [faulty.id]
    assert entry.details["batches"] == list(range(1, 8))
    assert "0 new batch(es)" in invoke("ingest")  # the files are not read as new batches again
    opened.close()


def test_requeue_by_id_refuses_a_batch_that_is_not_quarantined(project: Path) -> None:
    invoke("ingest")
    refused = runner.invoke(app, ["batches", "requeue", "--id", "1", "--id", "3"])
    assert refused.exit_code == 1 and "batch 1 is accepted, not quarantined" in flat(refused.output)
    missing = runner.invoke(app, ["batches", "requeue", "--id", "99"])
    assert missing.exit_code == 1 and "batch 99 does not exist" in flat(missing.output)
    assert "requeued 1 batch(es): 0 accepted, 1 still quarantined" in flat(invoke(
        "batches", "requeue", "--id", "3"))  # the faulty meter file


def flat(output: str) -> str:
    """`output` with Rich's line wrapping undone."""
    return " ".join(output.split())


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


def test_tick_output_names_rows_and_feedback_plainly(project: Path) -> None:
    from driftloop.cli import loop

    assert (loop._rows(1), loop._rows(48)) == ("1 row", "48 rows")
    shown = flat(invoke("tick"))
    assert "batch None" not in shown


def test_a_quarantined_batch_on_the_timeline_names_each_column_once(project: Path) -> None:
    from driftloop.controller import project as projects
    from driftloop.ui import views

    invoke("ingest")
    opened = projects.open_project(project / "driftloop.yaml")
    (faulty,) = opened.store.batches.list("electricity", status="quarantined")
    text = views._batch_event(faulty).text
    assert "nswprice: 4 non-numeric values" in text and "nswprice: nswprice" not in text
    opened.close()
