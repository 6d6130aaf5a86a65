"""Gate metrics against scikit-learn, and the paired-bootstrap gate against a slow reference."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.datasets import make_classification, make_regression
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression

from driftloop.core import config, errors
from driftloop.gate import gate, metrics
from driftloop.policy import triggers


@pytest.fixture(scope="module")
def binary() -> dict[str, Any]:
    X, y = make_classification(n_samples=1600, n_features=6, n_informative=4, random_state=1)
    model = LogisticRegression().fit(X[:800], y[:800])
    return {"X": X[800:], "y": y[800:], "model": model, "train": (X[:800], y[:800])}


@pytest.fixture(scope="module")
def multiclass() -> dict[str, Any]:
    X, y = make_classification(n_samples=900, n_features=8, n_informative=5, n_classes=3,
                               random_state=2)
    labels = np.array(["red", "green", "blue"])[y]
    model = LogisticRegression(max_iter=500).fit(X[:450], labels[:450])
    return {"X": X[450:], "y": labels[450:], "model": model}


@pytest.fixture(scope="module")
def regression() -> dict[str, Any]:
    X, y = make_regression(n_samples=800, n_features=5, noise=10.0, random_state=3)
    model = LinearRegression().fit(X[:400], y[:400])
    return {"X": X[400:], "y": y[400:], "model": model, "train": (X[:400], y[:400])}


def _check(name: str, data: dict[str, Any], expected: float) -> None:
    metric = metrics.get_metric(name)
    predictions = metric.predict(data["model"], data["X"])
    assert metric.score(data["y"], predictions) == pytest.approx(expected, rel=1e-12)
    if metric.per_row:
        rows = metric.rows(data["y"], predictions)
        assert rows.shape == (len(data["y"]),)
        assert float(metric.from_mean(rows.mean())) == pytest.approx(expected, rel=1e-10)


def test_binary_metrics_match_sklearn(binary: dict[str, Any]) -> None:
    model, X, y = binary["model"], binary["X"], binary["y"]
    _check("accuracy", binary, skm.accuracy_score(y, model.predict(X)))
    _check("f1", binary, skm.f1_score(y, model.predict(X)))
    _check("roc_auc", binary, skm.roc_auc_score(y, model.predict_proba(X)[:, 1]))
    _check("log_loss", binary, skm.log_loss(y, model.predict_proba(X)))


def test_multiclass_metrics_match_sklearn(multiclass: dict[str, Any]) -> None:
    model, X, y = multiclass["model"], multiclass["X"], multiclass["y"]
    proba = model.predict_proba(X)
    _check("accuracy", multiclass, skm.accuracy_score(y, model.predict(X)))
    _check("f1", multiclass, skm.f1_score(y, model.predict(X), average="macro"))
    _check("roc_auc", multiclass, skm.roc_auc_score(y, proba, multi_class="ovr"))
    _check("log_loss", multiclass, skm.log_loss(y, proba, labels=model.classes_))


def test_regression_metrics_match_sklearn(regression: dict[str, Any]) -> None:
    pred = regression["model"].predict(regression["X"])
    y = regression["y"]
    _check("rmse", regression, skm.root_mean_squared_error(y, pred))
    _check("mae", regression, skm.mean_absolute_error(y, pred))
    _check("r2", regression, skm.r2_score(y, pred))


def test_log_loss_of_a_label_the_model_never_saw_is_large_not_an_error() -> None:
    predictions = metrics.Predictions(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 1]))
    metric = metrics.get_metric("log_loss")
    y = np.array([0, 2])
    assert metric.score(y, predictions) == pytest.approx(metric.rows(y, predictions).mean())
    assert metric.rows(y, predictions)[1] > 30


def test_metric_registry_directions_and_errors() -> None:
    lower = {name for name, m in metrics.METRICS.items() if not m.greater_is_better}
    assert lower == triggers.LOWER_IS_BETTER
    assert {name: m.task for name, m in metrics.METRICS.items()} == config.METRIC_TASKS
    assert {m.name for m in metrics.METRICS.values() if m.needs_proba} == {"roc_auc", "log_loss"}
    with pytest.raises(errors.ConfigError, match="'auc' is not known"):
        metrics.get_metric("auc")
    with pytest.raises(errors.ConfigError, match="pipeline's task is regression"):
        metrics.get_metric("accuracy", "regression")


def _reference(name: str, challenger: Any, champion: Any, X: Any, y: Any,
               spec: config.GateSpec, seed: int) -> tuple[float, float, float]:
    """The slow way: sklearn on every resample, one at a time, with the gate's indices."""
    metric = metrics.get_metric(name)
    reference = {"accuracy": skm.accuracy_score, "log_loss": skm.log_loss,
                 "rmse": skm.root_mean_squared_error, "roc_auc": skm.roc_auc_score}[name]
    output = "predict_proba" if metric.needs_proba else "predict"
    new, old = getattr(challenger, output)(X), getattr(champion, output)(X)
    if name == "roc_auc":
        new, old = new[:, 1], old[:, 1]
    sign = 1 if metric.greater_is_better else -1
    index = np.concatenate(list(gate.resample_indices(len(y), spec.bootstrap, seed)))
    diffs = np.array([sign * (reference(y[rows], new[rows]) - reference(y[rows], old[rows]))
                      for rows in index])
    tail = (1 - spec.confidence) / 2
    return float(np.quantile(diffs, tail)), float(np.quantile(diffs, 1 - tail)), diffs.mean()


@pytest.mark.parametrize("name", ["accuracy", "log_loss", "roc_auc"])
def test_ci_matches_a_slow_reference_loop(binary: dict[str, Any], name: str) -> None:
    weak = LogisticRegression(C=0.001).fit(binary["train"][0][:, :2], binary["train"][1])
    champion = _Columns(weak, 2)
    spec = config.GateSpec(metric=name, bootstrap=300, confidence=0.9)
    report = gate.evaluate_gate(binary["model"], champion, binary["X"], binary["y"], spec,
                                "classification", seed=7)
    low, high, mean = _reference(name, binary["model"], champion, binary["X"], binary["y"],
                                 spec, seed=7)
    assert report.ci_low == pytest.approx(low, rel=1e-9, abs=1e-12)
    assert report.ci_high == pytest.approx(high, rel=1e-9, abs=1e-12)
    assert report.mean_diff == pytest.approx(mean, rel=1e-9)


def test_rmse_ci_matches_the_reference(regression: dict[str, Any]) -> None:
    champion = DummyRegressor().fit(*regression["train"])
    spec = config.GateSpec(metric="rmse", bootstrap=200)
    report = gate.evaluate_gate(regression["model"], champion, regression["X"], regression["y"],
                                spec, "regression", seed=3)
    low, high, _ = _reference("rmse", regression["model"], champion, regression["X"],
                              regression["y"], spec, seed=3)
    assert (report.ci_low, report.ci_high) == (pytest.approx(low), pytest.approx(high))
    assert report.passed  # positive = better even though lower rmse is better
    assert report.diff is not None and report.diff > 0


def test_clearly_better_passes_equal_and_worse_fail(binary: dict[str, Any]) -> None:
    X, y = binary["X"], binary["y"]
    dummy = DummyClassifier(strategy="most_frequent").fit(*binary["train"])
    spec = config.GateSpec()
    better = gate.evaluate_gate(binary["model"], dummy, X, y, spec, "classification")
    assert better.passed
    assert better.ci_low is not None and better.ci_low > 0.1
    same = gate.evaluate_gate(binary["model"], binary["model"], X, y, spec, "classification")
    assert not same.passed
    assert (same.ci_low, same.ci_high, same.diff) == (0.0, 0.0, 0.0)
    worse = gate.evaluate_gate(dummy, binary["model"], X, y, spec, "classification")
    assert not worse.passed
    assert worse.ci_high is not None and worse.ci_high < 0
    demanding = config.GateSpec(min_improvement=0.5)
    assert not gate.evaluate_gate(binary["model"], dummy, X, y, demanding, "classification").passed


def test_bootstrap_is_deterministic_by_seed(binary: dict[str, Any]) -> None:
    champion = _Columns(LogisticRegression().fit(binary["train"][0][:, :3], binary["train"][1]), 3)
    spec = config.GateSpec(metric="log_loss", bootstrap=500)
    args = (binary["model"], champion, binary["X"], binary["y"], spec, "classification")
    first, again = gate.evaluate_gate(*args, seed=11), gate.evaluate_gate(*args, seed=11)
    assert first == again
    assert gate.evaluate_gate(*args, seed=12).ci_low != first.ci_low


def test_no_champion_and_broken_models(binary: dict[str, Any]) -> None:
    X, y, spec = binary["X"], binary["y"], config.GateSpec()
    alone = gate.evaluate_gate(binary["model"], None, X, y, spec, "classification")
    assert alone.passed
    assert alone.reason == "no champion"
    expected = skm.accuracy_score(y, binary["model"].predict(X))
    assert alone.challenger_score == pytest.approx(expected)
    broken = gate.evaluate_gate(_Broken(), binary["model"], X, y, spec, "classification")
    assert not broken.passed
    assert broken.reason == "challenger failed to predict: RuntimeError: column 'price' is missing"
    stale = gate.evaluate_gate(binary["model"], _Broken(), X, y, spec, "classification")
    assert stale.passed
    assert "champion failed to predict" in stale.reason
    evidence = json.loads(json.dumps(broken.to_json()))
    assert evidence["passed"] is False


def test_vectorised_bootstrap_is_fast(binary: dict[str, Any]) -> None:
    import time

    n = 2000
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    new = metrics.Predictions(np.where(rng.random(n) < 0.8, y, 1 - y))
    old = metrics.Predictions(np.where(rng.random(n) < 0.7, y, 1 - y))
    start = time.perf_counter()
    diffs = gate.bootstrap_diffs(metrics.get_metric("accuracy"), y, new, old, 1000, seed=0)
    assert time.perf_counter() - start < 2.0
    assert diffs.mean() == pytest.approx(0.1, abs=0.03)


class _Columns:
    """A model that only looks at the first `k` columns (a weaker champion)."""

    def __init__(self, model: Any, k: int) -> None:
        self.model = model
        self.k = k
        self.classes_ = model.classes_

    def predict(self, X: Any) -> Any:
        return self.model.predict(X[:, : self.k])

    def predict_proba(self, X: Any) -> Any:
        return self.model.predict_proba(X[:, : self.k])


class _Broken:
    classes_ = np.array([0, 1])

    def predict(self, X: Any) -> Any:
        raise RuntimeError("column 'price' is missing")
