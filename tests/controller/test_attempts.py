"""Retries of a failed retraining: the loop gives up visibly after MAX_ATTEMPTS failures of one
trainer, a fixed trainer starts afresh, and a killed controller's runs are no failed attempts."""

from __future__ import annotations

from pathlib import Path

import pytest
import specs

from driftloop.cli import project_commands as scaffold
from driftloop.controller import attempts, tick
from driftloop.controller import project as projects
from driftloop.train import fingerprint

FAILING = "def make_model(max_iter=1, learning_rate=0.1):\n    raise RuntimeError('no GPU here')\n"


def scaffolded(tmp_path: Path, executor: str) -> Path:
    root = tmp_path / "pipeline"
    scaffold.init(root, weeks=4)
    spec = root / "driftloop.yaml"
    specs.override(spec, replace={"trainer": {"executor": executor}})
    return root


def trainer_of(project: projects.Project) -> str:
    return fingerprint.trainer_sha256(project.spec.trainer, project.base_dir)


@pytest.mark.slow
def test_a_fixed_trainer_trains_again_after_the_loop_gave_up(tmp_path: Path) -> None:
    folder = scaffolded(tmp_path, "local")  # a fresh child process imports the fixed train.py
    good = (folder / "train.py").read_text()
    (folder / "train.py").write_text(FAILING)
    project = projects.open_project(folder / "driftloop.yaml")
    controller = tick.Controller(project)
    for _ in range(attempts.MAX_ATTEMPTS + 1):
        controller.tick()
    runs = project.store.runs.list(project.name)
    assert [run.status for run in runs] == ["failed"] * attempts.MAX_ATTEMPTS
    gave_up = attempts.latest_give_up(project.store, project.name, trainer_of(project))
    assert gave_up is not None and gave_up.failures == attempts.MAX_ATTEMPTS
    message = gave_up.message()
    assert message.startswith(f"retraining gave up after {attempts.MAX_ATTEMPTS} failures at ")
    assert "no GPU here" in message and message.endswith("`driftloop retrain` to try again")

    (folder / "train.py").write_text(good)  # the fix: a new trainer, a new count
    assert attempts.latest_give_up(project.store, project.name, trainer_of(project)) is None
    result = controller.tick()
    assert result.outcome is not None and result.outcome.version is not None
    assert project.store.aliases.get(project.name, "champion") == 1
    assert len(project.store.decisions.list(project.name, kind="retrain")) == 1


def test_a_changed_trainer_section_is_a_new_trainer(tmp_path: Path) -> None:
    folder = scaffolded(tmp_path, "inline")
    project = projects.open_project(folder / "driftloop.yaml")
    before = trainer_of(project)
    changed = project.spec.trainer.model_copy(update={"params": {"max_iter": 5}})
    assert fingerprint.trainer_sha256(changed, project.base_dir) != before
    assert trainer_of(project) == before  # stable while nothing changes


def test_killed_trainings_are_not_failed_attempts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = scaffolded(tmp_path, "inline")

    def killed(*args: object, **kwargs: object) -> object:
        raise KeyboardInterrupt("SIGKILL mid-training")

    for _ in range(attempts.MAX_ATTEMPTS):  # each time a restarted controller retries
        controller = tick.Controller(projects.open_project(folder / "driftloop.yaml"), holder="a")
        monkeypatch.setattr(controller.executor, "train", killed)
        with pytest.raises(KeyboardInterrupt):
            controller.tick()
    project = projects.open_project(folder / "driftloop.yaml")
    result = tick.Controller(project, holder="a").tick()
    assert f"run {attempts.MAX_ATTEMPTS} marked interrupted (the controller stopped)" in (
        result.repaired
    )
    assert result.outcome is not None and result.outcome.version is not None
    statuses = [run.status for run in project.store.runs.list(project.name)]
    assert statuses == ["interrupted"] * attempts.MAX_ATTEMPTS + ["succeeded"]


def test_the_dashboard_says_the_loop_gave_up(tmp_path: Path) -> None:
    from driftloop.ui import views

    folder = scaffolded(tmp_path, "inline")
    (folder / "failing_train.py").write_text(FAILING)
    spec = folder / "driftloop.yaml"
    specs.override(spec, replace={"trainer": {"function": "failing_train:make_model"}})
    project = projects.open_project(spec)
    controller = tick.Controller(project)
    for _ in range(attempts.MAX_ATTEMPTS):
        controller.tick()
    (row,) = views.overview(project.store)
    assert row["health"] == "bad"
    assert row["health_reason"].startswith("retraining gave up after 3 failures at ")
    assert "RuntimeError: no GPU here (at failing_train.py:2 in make_model" in row["health_reason"]
