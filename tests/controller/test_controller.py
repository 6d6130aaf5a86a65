"""The controller on a real project folder (the `driftloop init` scaffold): ingest with
quarantine, idempotent ticks, crash repair, manual requests, backtest determinism."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import specs

from driftloop.cli import project_commands as scaffold
from driftloop.controller import attempts, backtest, ingest, retrain, tick
from driftloop.controller import project as projects
from driftloop.core import clock as clocks
from driftloop.core import config
from driftloop.data import elec2


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A scaffolded project that trains in-process (fast) on the built-in trainer."""
    root = tmp_path / "pipeline"
    scaffold.init(root, weeks=6)
    spec = root / "driftloop.yaml"
    specs.override(spec, replace={"trainer": {"executor": "inline"}})
    return root


def open_project(folder: Path) -> projects.Project:
    return projects.open_project(folder / "driftloop.yaml")


def test_ingest_quarantines_the_faulty_file_with_reasons(folder: Path) -> None:
    project = open_project(folder)
    result = tick.Controller(project).tick()
    statuses = {Path(b.source_uri).name: b for b in result.batches}
    assert len(statuses) == 7
    faulty = statuses["1996-05-21-meter-fault.csv"]
    assert faulty.status == "quarantined"
    (nswprice,) = faulty.reasons["nswprice"]
    assert nswprice.startswith("nswprice: 4 non-numeric values")
    assert "line 7: 'ERR', line 8: 'ERR'" in nswprice  # data rows 6.. of the file; header = 1
    assert any("missing" in r for r in faulty.reasons["vicdemand"])
    assert all(b.status == "accepted" for n, b in statuses.items() if "fault" not in n)


def test_a_bad_value_on_the_fifth_data_row_is_named_by_its_file_line(folder: Path) -> None:
    project = open_project(folder)
    ingest.ingest(project)  # the first accepted file defines the schema
    week = pd.read_csv(folder / "data" / "1996-05-07.csv")
    week.loc[4, "nswprice"] = 1.9  # validation.bounds: [0, 1]
    week.to_csv(folder / "data" / "1996-07-01-spike.csv", index=False)
    (batch,) = ingest.ingest(project)
    assert batch.status == "quarantined"
    (reason,) = batch.reasons["nswprice"]
    assert reason.startswith("nswprice: 1 value above the allowed maximum 1 (max seen")
    assert reason.endswith("validation.bounds): line 6"), reason  # header = line 1


def test_two_ticks_one_action(folder: Path) -> None:
    project = open_project(folder)
    controller = tick.Controller(project)
    first = controller.tick()
    assert first.decision is not None and first.decision.fired
    assert first.outcome is not None and first.outcome.promoted
    second = controller.tick()
    assert not second.acted
    again = tick.Controller(open_project(folder)).tick()  # a new process: same answer
    assert not again.acted
    store = project.store
    assert len(store.runs.list(project.name)) == 1
    assert len(store.decisions.list(project.name, kind="retrain")) == 1
    assert store.aliases.get(project.name, "champion") == 1


def test_new_data_is_scored_by_the_champion_before_training(folder: Path) -> None:
    project = open_project(folder)
    controller = tick.Controller(project)
    controller.tick()
    more = elec2.load_elec2().iloc[6 * 336 : 7 * 336]
    more.to_csv(folder / "data" / "1996-06-18.csv", index=False)
    result = controller.tick()
    assert len(result.batches) == 1 and len(result.evaluations) == 1
    evaluation = result.evaluations[0]
    assert evaluation.version == 1 and evaluation.rows == 336
    assert 0.4 < evaluation.value < 1.0
    assert result.decision is not None  # new data: the policy was asked, and its answer stored
    assert result.decision.evidence["signals"]["live_rows"] >= 48


def test_crash_between_train_and_promote_is_repaired(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = open_project(folder)

    def crash(*args: object, **kwargs: object) -> bool:
        raise KeyboardInterrupt("the controller died here")

    monkeypatch.setattr(retrain, "promote", crash)
    with pytest.raises(KeyboardInterrupt):
        tick.Controller(project, holder="controller-a").tick()
    assert project.store.aliases.get(project.name, "champion") is None
    assert len(project.store.versions.list(project.name)) == 1
    monkeypatch.undo()

    fresh = open_project(folder)  # the same controller, restarted: it holds its own lease
    result = tick.Controller(fresh, holder="controller-a").tick()
    assert any("promoted" in line for line in result.repaired)
    assert fresh.store.aliases.get(fresh.name, "champion") == 1
    assert len(fresh.store.runs.list(fresh.name)) == 1  # repaired, not retrained
    moves = fresh.store.audit.list(action="promote")
    assert len(moves) == 1 and moves[0].target == f"{fresh.name}/champion"


def test_crash_during_training_is_retried_by_another_controller_after_the_lease(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = clocks.FakeClock(datetime(2024, 1, 1, tzinfo=UTC))
    project = projects.open_project(folder / "driftloop.yaml", clock=clock)
    controller = tick.Controller(project, lease_ttl=timedelta(minutes=5))

    def die(*args: object, **kwargs: object) -> object:
        raise KeyboardInterrupt("killed mid-training")

    monkeypatch.setattr(controller.executor, "train", die)
    with pytest.raises(KeyboardInterrupt):
        controller.tick()
    monkeypatch.undo()
    other = tick.Controller(projects.open_project(folder / "driftloop.yaml", clock=clock))
    assert other.tick().skipped == "another controller holds the lease"
    clock.advance(controller.lease_ttl + timedelta(seconds=1))  # outlives the longest training
    result = other.tick()
    assert any("interrupted" in line for line in result.repaired)
    assert result.outcome is not None and result.outcome.promoted
    runs = project.store.runs.list(project.name)
    assert [run.status for run in runs] == ["interrupted", "succeeded"]


def test_a_manual_request_retrains_once(folder: Path) -> None:
    project = open_project(folder)
    controller = tick.Controller(project)
    controller.tick()
    project.store.decisions.add(project.name, kind="request", fired=True, evidence={"actor": "ops"})
    result = controller.tick()
    assert result.decision is not None and result.decision.fired
    assert "manual" in result.decision.evidence["policy"]["reason"]
    assert result.outcome is not None and result.outcome.version is not None
    assert not controller.tick().acted


def test_a_failing_trainer_is_recorded_not_raised(folder: Path) -> None:
    (folder / "train.py").write_text(
        "def make_model(max_iter=1, learning_rate=0.1):\n    raise RuntimeError('no GPU here')\n"
    )
    project = open_project(folder)
    result = tick.Controller(project).tick()
    assert result.outcome is not None and result.outcome.version is None
    assert "no GPU here" in result.outcome.reason
    assert project.store.runs.list(project.name)[0].status == "failed"


def test_backtest_is_deterministic() -> None:
    frame = elec2.load_elec2().iloc[: 48 * 60]
    text = (Path(scaffold.__file__).parent / "scaffold" / "driftloop.yaml").read_text()
    spec = backtest.policy_spec(
        config.parse_spec(text),
        {
            "trainer": {
                "function": "driftloop.train.models:hist_gradient_boosting",
                "params": {"max_iter": 20},
                "window": {"kind": "last_duration", "duration": "14d"},
                "executor": "inline",
            }
        },
    )
    policies = {"floor": {"triggers": [{"kind": "performance", "floor": 0.8, "window": 48}]}}

    def table() -> list[tuple[str, float, int]]:
        results = backtest.backtest(frame, spec, policies, base_dir=Path.cwd())
        return [(r.policy, r.score, r.trainings) for r in results]

    first = table()
    assert first == table()
    names = [row[0] for row in first]
    assert names == ["never", "every-batch", "floor"]  # a fixed window: one every-batch row
    assert dict((n, t) for n, _, t in first)["every-batch"] == 31  # warm-up + one per day


def test_late_labels_are_joined_scored_by_the_model_that_served_and_learned(folder: Path) -> None:
    spec = folder / "driftloop.yaml"  # no gate: the retraining below trains on every label
    specs.override(spec, replace={"gate": {"enabled": False}})
    project = open_project(folder)
    controller = tick.Controller(project)
    controller.tick()  # v1 from the sample weeks
    week = elec2.load_elec2().iloc[6 * 336 : 7 * 336]
    week.drop(columns=["class"]).to_csv(folder / "data" / "1996-06-18.csv", index=False)
    unlabelled = controller.tick()
    assert [b.status for b in unlabelled.batches] == ["accepted"]  # no target yet: fine
    assert unlabelled.evaluations[0].rows == 0 and unlabelled.evaluations[0].value is None

    week[["time", "class"]].to_csv(folder / "data" / "1996-06-18-labels.csv", index=False)
    labelled = controller.tick()
    assert [b.status for b in labelled.batches] == ["accepted"]
    late = labelled.evaluations
    assert len(late) == 1 and late[0].version == 1 and late[0].rows == 336
    predicted = controller.models.model_of(1).predict(week[list(elec2.FEATURES)])
    expected = (predicted == week["class"]).mean()
    assert late[0].value == pytest.approx(expected)
    assert len(late[0].errors) == 336

    # a label is final, and labels for rows never seen are refused — both quarantined
    week.iloc[:5][["time", "class"]].to_csv(folder / "data" / "1996-06-19-again.csv", index=False)
    stranger = week.iloc[:2][["time", "class"]].assign(
        time=["2031-01-01T00:00Z", "2031-01-02T00:00Z"]
    )
    stranger.to_csv(folder / "data" / "1996-06-20-stranger.csv", index=False)
    refused = {Path(b.source_uri).name: b for b in controller.tick().batches}
    assert "already have a label" in refused["1996-06-19-again.csv"].reasons["class"][0]
    assert "never ingested" in refused["1996-06-20-stranger.csv"].reasons["time"][0]

    # the late labels are training data: a retraining sees them
    project.store.decisions.add(project.name, kind="request", fired=True, evidence={})
    outcome = controller.tick().outcome
    assert outcome is not None and outcome.version is not None
    assert labelled.batches[0].id in outcome.version.batch_ids


def test_a_failing_trainer_is_retried_a_bounded_number_of_times(folder: Path) -> None:
    (folder / "train.py").write_text(
        "def make_model(max_iter=1, learning_rate=0.1):\n    raise RuntimeError('no')\n")
    project = open_project(folder)
    controller = tick.Controller(project)
    for _ in range(6):
        controller.tick()
    assert len(project.store.decisions.list(project.name, kind="retrain")) == 1
    assert len(project.store.runs.list(project.name)) == attempts.MAX_ATTEMPTS


def test_crash_after_the_version_is_stored_does_not_train_again(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = open_project(folder)
    finish = project.store.runs.finish

    def crash_on_success(run_id: int, **kwargs: object) -> object:
        if kwargs.get("status") == "succeeded":
            raise KeyboardInterrupt("died after storing the version")
        return finish(run_id, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(project.store.runs, "finish", crash_on_success)
    with pytest.raises(KeyboardInterrupt):
        tick.Controller(project, holder="a").tick()
    monkeypatch.undo()
    fresh = open_project(folder)
    result = tick.Controller(fresh, holder="a").tick()
    assert any("marked succeeded" in line for line in result.repaired)
    assert [run.status for run in fresh.store.runs.list(fresh.name)] == ["succeeded"]
    assert len(fresh.store.versions.list(fresh.name)) == 1
    assert fresh.store.aliases.get(fresh.name, "champion") == 1


def test_a_changed_spec_is_audited_with_who_changed_it(folder: Path) -> None:
    open_project(folder).close()
    spec = folder / "driftloop.yaml"
    specs.override(spec, replace={"cooldown": "2 batches"})
    project = projects.open_project(spec, actor="alice")
    changes = project.store.audit.list(action="config.change")
    assert len(changes) == 1 and changes[0].actor == "alice"
    assert "cooldown" in str(changes[0].details)
    projects.open_project(spec, actor="bob")  # unchanged: no new row
    assert len(project.store.audit.list(action="config.change")) == 1
