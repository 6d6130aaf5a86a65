"""Budgeted hyperparameter search and model selection (Optuna): the better family wins on data
built for it, the budget holds, trials are stored under the run, bad specs name the field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import specs
import yaml
from typer.testing import CliRunner

from driftloop.cli import main
from driftloop.cli import project_commands as scaffold
from driftloop.controller import project as projects
from driftloop.controller import tick
from driftloop.core import config, errors
from driftloop.core.clock import FakeClock
from driftloop.gate import metrics
from driftloop.store import entities
from driftloop.store.metadata import MetadataStore
from driftloop.train import executor, search

LINEAR = "sklearn.linear_model:LogisticRegression"
TREE = {
    "function": "sklearn.tree:DecisionTreeClassifier",
    "params": {"random_state": 0},
    "space": {"max_depth": {"low": 3, "high": 8}},
}
ACCURACY = metrics.Scorer("accuracy", "classification")


def _xor(rows: int = 1200) -> tuple[pd.DataFrame, pd.Series]:
    """Two features whose product's sign is the label: no line separates it, a tree does."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.uniform(-1, 1, size=(rows, 2)), columns=["a", "b"])
    return X, pd.Series((X["a"] * X["b"] > 0).astype(int))


def _trend(rows: int = 1200) -> tuple[pd.DataFrame, pd.Series]:
    """A target rising with time: the newest rows (validation) lie beyond every training row,
    where a tree predicts a constant and a line extrapolates."""
    rng = np.random.default_rng(0)
    t = np.arange(rows, dtype=float)
    return pd.DataFrame({"t": t}), pd.Series(0.5 * t + rng.normal(0, 1, rows))


def _spec(function: str, **search_fields: object) -> config.TrainerSpec:
    return config.TrainerSpec.model_validate({"function": function, "search": search_fields})


@pytest.mark.parametrize(
    ("data", "own", "other", "scorer", "winner"),
    [
        (_xor, LINEAR, TREE, ACCURACY, "tree"),
        (
            _trend,
            "sklearn.linear_model:Ridge",
            {**TREE, "function": "sklearn.tree:DecisionTreeRegressor"},
            metrics.Scorer("rmse", "regression"),
            "Ridge",
        ),
    ],
    ids=["tree-wins-on-xor", "line-wins-on-a-trend"],
)
def test_a_two_trial_budget_picks_the_better_family(
    data: object, own: str, other: dict, scorer: metrics.Scorer, winner: str
) -> None:
    X, y = data()  # type: ignore[operator]
    spec = _spec(own, trials=2, candidates={"tree": other})
    result = executor.InlineExecutor().train(spec, X, y, Path("."), scorer)
    assert [t.family for t in result.trials] == [own.partition(":")[2], "tree"]
    best = min(result.trials, key=lambda t: t.score if not scorer.greater_is_better else -t.score)
    assert best.family == winner
    loser = next(t for t in result.trials if t is not best)
    # clearly better, not by a hair
    assert abs(best.score - loser.score) > (0.3 if scorer.greater_is_better else 10)
    expected = other["function"] if winner == "tree" else own
    assert type(result.estimator).__name__ == expected.partition(":")[2]
    assert result.trials[1].params["max_depth"] in range(3, 9)
    assert all(t.estimator is None for t in result.trials)  # only the best model is kept


def test_trials_beyond_the_families_explore_the_space() -> None:
    X, y = _xor(600)
    spec = _spec(LINEAR, trials=5, candidates={"tree": TREE}, seed=3)
    first = executor.InlineExecutor().train(spec, X, y, Path("."), ACCURACY)
    again = executor.InlineExecutor().train(spec, X, y, Path("."), ACCURACY)
    assert len(first.trials) == 5
    assert [(t.family, t.params, t.score) for t in first.trials] == [
        (t.family, t.params, t.score) for t in again.trials
    ]  # seeded: the same trials twice


def test_a_time_budget_stops_starting_trials() -> None:
    X, y = _xor(400)
    spec = _spec(LINEAR, timeout="0.3s", candidates={"tree": TREE})
    result = executor.InlineExecutor().train(spec, X, y, Path("."), ACCURACY)
    assert 1 <= len(result.trials) < 200
    assert sum(t.wall_seconds for t in result.trials) < 5


def test_the_local_executor_searches_in_its_child(tmp_path: Path) -> None:
    X, y = _xor(600)
    spec = _spec(LINEAR, trials=2, candidates={"tree": TREE})
    result = executor.LocalExecutor(timeout=600).train(spec, X, y, tmp_path, ACCURACY)
    assert [t.family for t in result.trials] == ["LogisticRegression", "tree"]
    assert type(result.estimator).__name__ == "DecisionTreeClassifier"


DEFINE_BY_RUN = """
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier


def make_model(trial, random_state=0):
    if trial.suggest_categorical("kind", ["linear", "tree"]) == "linear":
        return LogisticRegression(C=trial.suggest_float("C", 0.01, 10, log=True))
    depth = trial.suggest_int("depth", 2, 8)
    return DecisionTreeClassifier(max_depth=depth, random_state=random_state)


def fits(X, y, trial):
    return DecisionTreeClassifier().fit(X, y)
"""


def test_a_trainer_that_takes_the_trial_declares_its_space_in_code(tmp_path: Path) -> None:
    (tmp_path / "searchable.py").write_text(DEFINE_BY_RUN)
    X, y = _xor(600)
    spec = _spec("searchable:make_model", trials=6, seed=1)
    result = executor.InlineExecutor().train(spec, X, y, tmp_path, ACCURACY)
    assert len(result.trials) == 6
    assert {t.family for t in result.trials} == {"make_model"}
    kinds = {t.params["kind"] for t in result.trials}
    assert kinds == {"linear", "tree"}
    best = max(result.trials, key=lambda t: t.score or 0)
    assert best.params["kind"] == "tree"
    assert type(result.estimator).__name__ == "DecisionTreeClassifier"
    with pytest.raises(errors.ConfigError, match="must return an unfitted estimator"):
        executor.InlineExecutor().train(_spec("searchable:fits", trials=1), X, y, tmp_path,
                                        ACCURACY)


def test_failed_trials_are_kept_and_every_failure_is_an_error() -> None:
    X, y = _xor(300)
    broken = {"function": "sklearn.tree:DecisionTreeClassifier", "params": {"max_depth": -1}}
    spec = _spec(LINEAR, trials=2, candidates={"broken": broken})
    result = executor.InlineExecutor().train(spec, X, y, Path("."), ACCURACY)
    failed = next(t for t in result.trials if t.family == "broken")
    assert failed.score is None and "max_depth" in (failed.error or "")
    with pytest.raises(errors.TrainingError, match="every trial of the search"):
        executor.InlineExecutor().train(
            _spec("sklearn.tree:DecisionTreeClassifier", trials=2,
                  space={"max_depth": {"low": -3, "high": -1}}),
            X, y, Path("."), ACCURACY)
    with pytest.raises(errors.ConfigError, match="needs a metric"):
        search.fit(spec, X, y, Path("."), None)


@pytest.mark.parametrize(
    ("search_yaml", "message"),
    [
        ("{validation: 0.2}", r"driftloop.yaml:\d+: trainer.search: Value error, give a budget"),
        ("{trials: 2, space: {alpha: {low: 2, high: 1}}}", r"`low` 2 is above `high` 1"),
        ("{trials: 2, space: {alpha: {low: 2}}}", r"search.space.alpha: .*give `low` and"),
        ("{trials: 2, candidates: {make_model: {function: 'a:b'}}}",
         "names the trainer's own function"),
        ("{trials: 0}", r"search.trials: Input should be greater than or equal to 1"),
    ],
)
def test_search_spec_errors_name_the_line(search_yaml: str, message: str) -> None:
    text = (Path(scaffold.__file__).parent / "scaffold" / "driftloop.yaml").read_text()
    text = specs.overridden(text, replace={"trainer": {"window": "all"}},
                            add={"trainer": {"search": yaml.safe_load(search_yaml)}})
    with pytest.raises(errors.ConfigError, match=message):
        config.parse_spec(text, "driftloop.yaml")


def test_a_retraining_stores_its_trials_and_deploys_the_best(tmp_path: Path) -> None:
    root = tmp_path / "pipeline"
    scaffold.init(root, weeks=6)
    path = root / "driftloop.yaml"
    search = {"trials": 2, "candidates": {"logistic": {
        "function": "sklearn.linear_model:LogisticRegression", "params": {"max_iter": 200}}}}
    specs.override(path, replace={"trainer": {"executor": "inline", "window": "all"}},
                   add={"trainer": {"search": search}})
    project = projects.open_project(path)
    assert project.spec.trainer.search is not None
    result = tick.Controller(project).tick()
    assert result.outcome is not None and result.outcome.version is not None
    trials = project.store.runs.trials(result.outcome.run.id)
    assert [t.number for t in trials] == [0, 1]
    assert {t.family for t in trials} == {"logistic", project.spec.trainer.function.split(":")[1]}
    assert all(t.score is not None and 0 < t.score <= 1 and t.cpu_seconds > 0 for t in trials)
    best = max(trials, key=lambda t: t.score or 0)
    chosen = "LogisticRegression" if best.family == "logistic" else "HistGradientBoosting"
    assert type(result.outcome.model).__name__.startswith(chosen)
    assert result.outcome.run.compute_seconds >= sum(t.cpu_seconds for t in trials) * 0.5
    project.close()
    shown = CliRunner().invoke(main.app, ["models", "show", "1", "--spec", str(path)])
    assert shown.exit_code == 0, shown.output
    assert "search: 2 trials" in shown.output and "logistic" in shown.output


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_trials_round_trip_in_the_store(backend: str, request: pytest.FixtureRequest) -> None:
    url = str(request.getfixturevalue("pg_url")) if backend == "postgres" else "sqlite://"
    store = MetadataStore.open(url, clock=FakeClock(datetime(2024, 1, 1, tzinfo=UTC)))
    store.pipelines.ensure("p", {})
    run = store.runs.start("p", trainer="t:f", params={}, batch_ids=[])
    store.runs.add_trials(run.id, [
        entities.TrialRecord(1, "tree", {"max_depth": 4}, float("nan"), 0.5, 0.6, "diverged"),
        entities.TrialRecord(0, "linear", {"C": 0.1}, 0.75, 0.2, 0.3),
    ])
    trials = store.runs.trials(run.id)
    assert [(t.number, t.family, t.params, t.score, t.error) for t in trials] == [
        (0, "linear", {"C": 0.1}, 0.75, None), (1, "tree", {"max_depth": 4}, None, "diverged")]
    assert trials[0].run_id == run.id and trials[0].at == datetime(2024, 1, 1, tzinfo=UTC)
    assert store.runs.trials(run.id + 1) == []
    with pytest.raises(errors.NotFoundError, match="run 999"):
        store.runs.add_trials(999, [entities.TrialRecord(0, "x", {}, 1.0, 0.0, 0.0)])
    store.close()
