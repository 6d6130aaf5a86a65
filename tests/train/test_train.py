"""Trainers (both forms), executors (in-process and child process) and training windows."""

from __future__ import annotations

import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pydantic
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from driftloop.core import config, errors
from driftloop.train import executor, trainer, window

TRAIN_PY = '''
"""A project's trainer module, as a user writes it."""
import time

from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def make_model(C=1.0):
    return make_pipeline(StandardScaler(), LogisticRegression(C=C))


def fit(X, y, n_estimators=20):
    return RandomForestClassifier(n_estimators=n_estimators, random_state=0).fit(X, y)


def sleepy():
    time.sleep(60)
    return LogisticRegression()


def broken(X, y):
    raise ValueError("the target column is constant")


def not_a_model():
    return {"weights": [1, 2, 3]}


def unpicklable(X, y):
    model = LogisticRegression().fit(X, y)
    model.hook = lambda: None
    return model
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text(TRAIN_PY)
    return tmp_path


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(n_samples=3000, n_features=10, random_state=0)
    return X, y


def _spec(function: str, **changes: object) -> config.TrainerSpec:
    return config.TrainerSpec(function=function, **changes)  # type: ignore[arg-type]


def test_unfitted_form_is_fitted_by_driftloop(project: Path, data: tuple) -> None:
    X, y = data
    model = trainer.fit_model(_spec("train:make_model", params={"C": 0.5}), X, y, project)
    assert type(model).__name__ == "Pipeline"
    assert model.named_steps["logisticregression"].C == 0.5
    reference = LogisticRegression(C=0.5).fit((X - X.mean(0)) / X.std(0), y)
    np.testing.assert_allclose(model[-1].coef_, reference.coef_, rtol=1e-4)


def test_fitting_form_returns_its_own_model(project: Path, data: tuple) -> None:
    X, y = data
    model = trainer.fit_model(_spec("train:fit", params={"n_estimators": 5}), X, y, project)
    assert len(model.estimators_) == 5
    assert trainer.fits_itself(trainer.load_trainer("train:fit", project))
    assert not trainer.fits_itself(trainer.load_trainer("train:make_model", project))


def test_trainer_errors(project: Path, data: tuple) -> None:
    X, y = data
    with pytest.raises(errors.ConfigError, match="no module 'nowhere'"):
        trainer.load_trainer("nowhere:make_model", project)
    with pytest.raises(errors.ConfigError, match=r"has no 'make_modle'.*make_model"):
        trainer.load_trainer("train:make_modle", project)
    with pytest.raises(errors.ConfigError, match=r"trainer.params do not fit"):
        trainer.fit_model(_spec("train:make_model", params={"alpha": 1}), X, y, project)
    with pytest.raises(errors.TrainingError, match="'train:not_a_model' returned dict"):
        trainer.fit_model(_spec("train:not_a_model"), X, y, project)
    with pytest.raises(errors.TrainingError, match="the target column is constant"):
        trainer.fit_model(_spec("train:broken"), X, y, project)


def test_a_trainer_that_raises_is_named_by_its_file_and_line(project: Path, data: tuple) -> None:
    X, y = data
    code = 'raise ValueError("the target column is constant")'
    line = TRAIN_PY.splitlines().index(f"    {code}") + 1
    where = f"(at train.py:{line} in broken: `{code}`)"
    with pytest.raises(errors.TrainingError) as raised:
        trainer.fit_model(_spec("train:broken"), X, y, project)
    assert str(raised.value).endswith(f"ValueError: the target column is constant {where}")
    (project / "estimators.py").write_text(textwrap.dedent("""
        from sklearn.base import BaseEstimator

        class Picky(BaseEstimator):
            def fit(self, X, y):
                return self.check(X)

            def check(self, X):
                raise ValueError("too few rows")
    """))
    with pytest.raises(errors.TrainingError, match=r"too few rows \(at estimators.py:9 in check: "):
        trainer.fit_model(_spec("estimators:Picky"), X, y, project)
    local = executor.LocalExecutor(timeout=timedelta(minutes=1))
    with pytest.raises(errors.TrainingError) as raised:
        local.train(_spec("train:broken"), X, y, project)
    assert str(raised.value).endswith(where)


def test_import_failure_inside_the_module_is_named(tmp_path: Path) -> None:
    (tmp_path / "needs.py").write_text("import package_that_is_not_installed\n")
    with pytest.raises(errors.ConfigError, match=r"importing 'needs' failed.*package_that_is_not"):
        trainer.load_trainer("needs:make_model", tmp_path)


def test_two_projects_with_the_same_module_name(tmp_path: Path) -> None:
    for name, value in [("a", 1), ("b", 2)]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "trainmod.py").write_text(f"def version():\n    return {value}\n")
    assert trainer.load_trainer("trainmod:version", tmp_path / "a")() == 1
    assert trainer.load_trainer("trainmod:version", tmp_path / "b")() == 2


def test_inline_executor(project: Path, data: tuple) -> None:
    X, y = data
    result = executor.build_executor("inline").train(_spec("train:fit"), X, y, project)
    assert result.estimator.score(X, y) > 0.9
    assert result.cpu_seconds > 0
    assert result.wall_seconds > 0


def test_local_executor_trains_in_a_child_process(project: Path, data: tuple) -> None:
    X, y = data
    result = executor.build_executor("local").train(
        _spec("train:fit", params={"n_estimators": 50}), X, y, project)
    assert result.cpu_seconds > 0
    assert result.wall_seconds >= result.cpu_seconds * 0.5
    inline = trainer.fit_model(_spec("train:fit", params={"n_estimators": 50}), X, y, project)
    np.testing.assert_array_equal(result.estimator.predict(X), inline.predict(X))
    unfitted = executor.LocalExecutor().train(_spec("train:make_model"), X, y, project)
    assert unfitted.estimator.score(X, y) > 0.8


def test_local_executor_kills_a_trainer_at_its_timeout(project: Path, data: tuple) -> None:
    X, y = data
    start = time.perf_counter()
    with pytest.raises(errors.TrainingError, match=r"training exceeded its timeout of 1.5s"):
        executor.LocalExecutor(timeout=1.5).train(_spec("train:sleepy"), X, y, project)
    assert time.perf_counter() - start < 15
    spec = _spec("train:sleepy", timeout="1s")
    with pytest.raises(errors.TrainingError, match="timeout of 1s"):
        executor.build_executor("local").train(spec, X, y, project)


def test_local_executor_reports_the_child_error(project: Path, data: tuple) -> None:
    X, y = data
    local = executor.LocalExecutor(timeout=timedelta(minutes=1))
    with pytest.raises(errors.TrainingError, match="ValueError: the target column is constant"):
        local.train(_spec("train:broken"), X, y, project)
    with pytest.raises(errors.ConfigError, match="no module 'missing_module'"):
        local.train(_spec("missing_module:make_model"), X, y, project)
    with pytest.raises(errors.TrainingError, match="cannot be sent back"):
        local.train(_spec("train:unpicklable"), X, y, project)


def test_unknown_executor() -> None:
    with pytest.raises(errors.ConfigError, match=r"unknown executor 'gpu'; known: inline, local"):
        executor.build_executor("gpu")


@pytest.fixture
def stamped() -> pd.DataFrame:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return pd.DataFrame({"ts": [start + timedelta(hours=h) for h in range(48)],
                         "x": np.arange(48)})


NOW = datetime(2024, 1, 3, tzinfo=UTC)  # 00:00, one hour after the last row


def test_windows(stamped: pd.DataFrame) -> None:
    def pick(spec: config.WindowSpec, drift: datetime | None = None) -> list[int]:
        chosen = window.select_window(stamped, spec, timestamp="ts", now=NOW, last_drift_at=drift)
        return chosen["x"].tolist()

    assert pick(config.WindowSpec()) == list(range(48))
    assert pick(config.WindowSpec(kind="last_rows", rows=5)) == [43, 44, 45, 46, 47]
    assert pick(config.WindowSpec(kind="last_rows", rows=500)) == list(range(48))
    assert pick(config.WindowSpec(kind="last_duration", duration="6h")) == [43, 44, 45, 46, 47]
    drift = datetime(2024, 1, 2, 20, tzinfo=UTC)
    assert pick(config.WindowSpec(kind="since_drift"), drift) == [45, 46, 47]
    assert pick(config.WindowSpec(kind="since_drift")) == list(range(48))


def test_naive_timestamps_are_utc(stamped: pd.DataFrame) -> None:
    naive = stamped.assign(ts=stamped["ts"].dt.tz_localize(None))
    chosen = window.select_window(naive, config.WindowSpec(kind="last_duration", duration="3h"),
                                  timestamp="ts", now=NOW, last_drift_at=None)
    assert chosen["x"].tolist() == [46, 47]


def test_window_errors(stamped: pd.DataFrame) -> None:
    spec = config.WindowSpec(kind="last_duration", duration="1d")
    with pytest.raises(errors.ConfigError, match="needs the pipeline's `timestamp` column"):
        window.select_window(stamped, spec, timestamp=None, now=NOW, last_drift_at=None)
    with pytest.raises(errors.ConfigError, match="'when' is not in the data"):
        window.select_window(stamped, spec, timestamp="when", now=NOW, last_drift_at=None)
    with pytest.raises(pydantic.ValidationError, match="needs `rows`"):  # caught at load time
        config.WindowSpec(kind="last_rows")


def test_trainer_module_text_is_valid() -> None:
    compile(textwrap.dedent(TRAIN_PY), "train.py", "exec")


CUSTOM_PY = '''
"""A trainer whose model class is the project's own, with a helper module beside it."""
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class Centroids(ClassifierMixin, BaseEstimator):
    def __init__(self, shift=0.0):
        self.shift = shift

    def fit(self, X, y):
        from shapes import Box  # a helper module imported only while fitting

        self.classes_ = np.unique(y)
        self.centres_ = np.stack([X[y == c].mean(axis=0) for c in self.classes_])
        self.box_ = Box(X.min(axis=0), X.max(axis=0))
        return self

    def predict(self, X):
        far = ((X[:, None, :] - self.centres_[None]) ** 2).sum(axis=2)
        return self.classes_[far.argmin(axis=1)]


def make_model(shift=0.0):
    return Centroids(shift)
'''
SHAPES_PY = '''
class Box:
    def __init__(self, low, high):
        self.low, self.high = low, high
'''


def test_local_executor_returns_a_model_class_of_the_project(tmp_path: Path,
                                                              data: tuple) -> None:
    X, y = data
    for name, body in (("mine", CUSTOM_PY), ("other", "class Centroids:\n    pass\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "train.py").write_text(body)
        (tmp_path / name / "shapes.py").write_text(
            SHAPES_PY if name == "mine" else "class Box:\n    pass\n")
    local = executor.LocalExecutor(timeout=60)
    first = local.train(_spec("train:make_model"), X, y, tmp_path / "mine").estimator
    # now another project's `train` and `shapes` modules are imported in this process
    trainer.load_trainer("train:Centroids", tmp_path / "other")
    trainer.load_trainer("shapes:Box", tmp_path / "other")
    model = local.train(_spec("train:make_model"), X, y, tmp_path / "mine").estimator
    for found in (first, model):
        assert type(found).__name__ == "Centroids" and type(found).__module__ == "train"
        assert str(tmp_path / "mine") in type(found).fit.__code__.co_filename
        assert type(found.box_).__module__ == "shapes" and hasattr(found.box_, "low")
    inline = trainer.fit_model(_spec("train:make_model"), X, y, tmp_path / "mine")
    np.testing.assert_array_equal(model.predict(X), inline.predict(X))
    assert model.score(X, y) > 0.6
