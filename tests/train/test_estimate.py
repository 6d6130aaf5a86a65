"""Performance estimated before labels arrive (CBPE): the calibrator against scikit-learn's own
calibration and against realised accuracy, under covariate shift, for multi-class models; and
the loop around it: stored per version (sha256-checked), recorded per batch, used by the
performance trigger while labels are missing, checked in the backtest, absent for regression."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import replay_project
from sklearn.calibration import CalibratedClassifierCV, calibration_curve
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

from driftloop.controller import backtest, tick
from driftloop.core import clock as clocks
from driftloop.core import config, errors
from driftloop.policy import signals as policy_signals
from driftloop.policy import triggers
from driftloop.store import metadata
from driftloop.train import calibration

W = np.array([2.0, -1.0])
MAE_LIMIT = 0.03
"""The estimate's stated accuracy: mean absolute error against realised accuracy on batches of
500 rows of a stream whose model is calibrated (binomial noise alone is about 0.015 there)."""


def binary(rng: np.random.Generator, n: int, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose label follows a logistic model: a fitted logistic regression is calibrated.
    A smaller `scale` moves the rows toward the decision boundary (covariate shift)."""
    x = rng.normal(size=(n, 2)) * scale
    y = (rng.random(n) < 1 / (1 + np.exp(-x @ W))).astype(int)
    return x, y


def multiclass(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Three classes drawn from a softmax of linear scores."""
    x = rng.normal(size=(n, 3))
    scores = x @ np.array([[2.0, -1.0, 0.0], [0.0, 1.5, -1.5], [-1.0, 0.0, 2.0]])
    p = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in p])
    return x, y


def frame(x: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])


def fitted(rng: np.random.Generator, make: Any) -> tuple[LogisticRegression, Any, Any]:
    """A model trained on one sample and a held-out sample to calibrate on."""
    x, y = make(rng, 3000)
    model = LogisticRegression().fit(frame(x), y)
    return model, *make(rng, 1000)


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_estimate_matches_realised_accuracy_and_sklearn_calibration(method: str) -> None:
    rng = np.random.default_rng(0)
    model, x_held, y_held = fitted(rng, binary)
    calibrator = calibration.fit_calibrator(model, frame(x_held), pd.Series(y_held), method)
    assert calibrator is not None and calibrator.rows == 1000
    reference = CalibratedClassifierCV(FrozenEstimator(model), method=method)
    reference.fit(frame(x_held), y_held)
    # the held-out rows say the raw model is already calibrated: the curve is near the diagonal
    truth, predicted = calibration_curve(y_held, model.predict_proba(frame(x_held))[:, 1],
                                         n_bins=5)
    assert np.abs(truth - predicted).max() < 0.08
    misses, versus_sklearn = [], []
    for _ in range(20):
        x, y = binary(rng, 500)
        estimate = calibration.estimate_accuracy(model, calibrator, frame(x))
        assert estimate is not None
        realised = float((model.predict(frame(x)) == y).mean())
        sklearn_estimate = float(reference.predict_proba(frame(x)).max(axis=1).mean())
        misses.append(abs(estimate - realised))
        versus_sklearn.append(abs(estimate - sklearn_estimate))
    assert np.mean(misses) < MAE_LIMIT, np.mean(misses)
    assert np.mean(versus_sklearn) < 0.01, np.mean(versus_sklearn)


def test_estimate_drops_when_rows_move_toward_the_decision_boundary() -> None:
    rng = np.random.default_rng(1)
    model, x_held, y_held = fitted(rng, binary)
    calibrator = calibration.fit_calibrator(model, frame(x_held), pd.Series(y_held))
    assert calibrator is not None
    x, _ = binary(rng, 2000)
    near, y_near = binary(rng, 2000, scale=0.3)
    before = calibration.estimate_accuracy(model, calibrator, frame(x))
    after = calibration.estimate_accuracy(model, calibrator, frame(near))
    realised_after = float((model.predict(frame(near)) == y_near).mean())
    assert before is not None and after is not None
    assert before - after > 0.15, (before, after)
    assert abs(after - realised_after) < MAE_LIMIT


def test_multiclass_estimate_is_close_to_realised_accuracy() -> None:
    rng = np.random.default_rng(2)
    model, x_held, y_held = fitted(rng, multiclass)
    calibrator = calibration.fit_calibrator(model, frame(x_held), pd.Series(y_held))
    assert calibrator is not None
    misses = []
    for _ in range(10):
        x, y = multiclass(rng, 500)
        estimate = calibration.estimate_accuracy(model, calibrator, frame(x))
        assert estimate is not None
        misses.append(abs(estimate - float((model.predict(frame(x)) == y).mean())))
    assert np.mean(misses) < MAE_LIMIT, np.mean(misses)


def test_models_without_probabilities_and_small_holdouts_get_no_calibrator() -> None:
    from sklearn.linear_model import Ridge
    from sklearn.svm import SVC

    rng = np.random.default_rng(3)
    x, y = binary(rng, 200)
    assert calibration.fit_calibrator(Ridge().fit(x, y), frame(x), pd.Series(y)) is None
    assert calibration.fit_calibrator(SVC().fit(x, y), frame(x), pd.Series(y)) is None
    small = LogisticRegression().fit(x, y)
    assert calibration.fit_calibrator(small, frame(x[:10]), pd.Series(y[:10])) is None


def test_a_stored_calibrator_of_unknown_method_is_refused() -> None:
    with pytest.raises(errors.IntegrityError, match="unknown method"):
        calibration.Calibrator.from_json({"method": "pickle", "x": [], "y": []})


# -- the trigger -------------------------------------------------------------------------------

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def test_trigger_judges_the_estimate_while_labels_are_missing() -> None:
    trigger = triggers.PerformanceTrigger(metric="accuracy", floor=0.7, window=100)
    missing = policy_signals.Signals(NOW, estimated_metric=0.6, estimated_rows=150)
    result = trigger.evaluate(missing)
    assert result.fired and result.evidence["source"] == "estimated"
    assert result.reason.startswith("estimated accuracy 0.6 over 150 rows is below the floor")
    # labelled rows cover the window and the unlabelled ones do not: the live metric decides
    both = policy_signals.Signals(NOW, live_metric=0.9, live_rows=500, estimated_metric=0.6,
                                  estimated_rows=50)
    assert not trigger.evaluate(both).fired
    assert trigger.evaluate(both).evidence["source"] == "live"
    too_few = policy_signals.Signals(NOW, estimated_metric=0.6, estimated_rows=50)
    assert not trigger.evaluate(too_few).fired


# -- the loop ----------------------------------------------------------------------------------

SPEC = """
name: cbpe
source: {kind: files, path: unused/*.csv}
target: y
timestamp: t
task: %(task)s
trainer:
  function: sklearn.linear_model:%(model)s
  executor: inline
triggers: [{kind: performance, floor: 0.7, window: 200}]
gate: {enabled: true, holdout_rows: 400, bootstrap: 100}
"""


def stream(rng: np.random.Generator, days: int, task: str, scale: float = 1.0) -> pd.DataFrame:
    x, y = binary(rng, days * 200, scale)
    data = frame(x).assign(
        y=y if task == "classification" else x @ W + rng.normal(size=len(x)),
        t=pd.date_range("2024-01-01", periods=len(x), freq=timedelta(days=1) / 200, tz="UTC"),
    )
    return data


def controller(
    tmp_path: Path, data: pd.DataFrame, task: str = "classification", **overrides: Any
) -> tuple[tick.Controller, clocks.FakeClock, list[pd.Timestamp]]:
    model = "LogisticRegression" if task == "classification" else "Ridge"
    spec = config.parse_spec(SPEC % {"task": task, "model": model})
    spec = backtest.policy_spec(spec, overrides)
    ends = backtest.batch_ends(data, "t", timedelta(days=1), timedelta(days=10))
    project = replay_project(tmp_path, spec, data, ends)
    return tick.Controller(project), project.clock, ends


def test_each_batch_gets_an_estimate_and_unlabelled_ones_reach_the_trigger(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(4)
    calm = stream(rng, 13, "classification")
    shifted = stream(rng, 3, "classification", scale=0.15)  # near the boundary: ~55% right
    shifted["t"] += pd.Timedelta(days=13)
    shifted["y"] = np.nan  # and no labels yet
    ctl, clock, ends = controller(tmp_path, pd.concat([calm, shifted], ignore_index=True),
                                  cooldown="30d")
    results = []
    for end in ends:
        clock.set(end.to_pydatetime())
        results.append(ctl.tick())
    store, name = ctl.project.store, ctl.project.name
    (version,) = store.versions.list(name)
    assert version.calibration_uri is not None and version.metrics["calibration_rows"] == 400
    evaluations = store.evaluations.list(name)
    labelled = [e for e in evaluations if e.value is not None]
    assert labelled and all(e.estimated_rows == e.rows == 200 for e in labelled)
    mae = np.mean([abs(e.estimated_value - e.value) for e in labelled])  # type: ignore[operator]
    assert mae < 0.05, mae
    unlabelled = [e for e in evaluations if e.value is None]
    assert len(unlabelled) == 3 and all(e.estimated_value < 0.65 for e in unlabelled)
    # the first unlabelled batch: the live window still says 0.8, the estimate says otherwise
    first = results[-3].decision
    assert first is not None and first.caused_by["estimated"] == [unlabelled[0].id]
    signals = first.evidence["signals"]
    assert signals["live_metric"] > 0.7 and signals["estimated_rows"] == 200
    policy = first.evidence["policy"]
    performance = next(r for r in policy["results"] if r["kind"] == "performance")
    assert performance["fired"] and performance["evidence"]["source"] == "estimated"
    assert policy["blocked_by_cooldown"]  # the 30-day cooldown holds it back


def test_a_changed_calibrator_file_is_refused(tmp_path: Path) -> None:
    ctl, clock, ends = controller(tmp_path, stream(np.random.default_rng(5), 12, "classification"))
    for end in ends[:2]:
        clock.set(end.to_pydatetime())
        ctl.tick()
    version = ctl.project.store.versions.list(ctl.project.name)[0]
    assert version.calibration_uri is not None
    path = Path(version.calibration_uri.removeprefix("file://"))
    path.write_text('{"method": "isotonic", "x": [0.0], "y": [1.0], "rows": 1}')
    fresh = tick.Controller(ctl.project)
    with pytest.raises(errors.IntegrityError, match="does not match its recorded hash"):
        fresh.models.calibrator(version)


def test_regression_pipelines_get_no_estimate(tmp_path: Path) -> None:
    ctl, clock, ends = controller(tmp_path, stream(np.random.default_rng(6), 12, "regression"),
                                  "regression")
    for end in ends:
        clock.set(end.to_pydatetime())
        ctl.tick()
    store, name = ctl.project.store, ctl.project.name
    assert all(v.calibration_uri is None for v in store.versions.list(name))
    evaluations = store.evaluations.list(name)
    assert evaluations and all(e.value is not None and e.estimated_value is None
                               for e in evaluations)


def test_backtest_reports_the_estimates_error_per_policy(tmp_path: Path) -> None:
    data = stream(np.random.default_rng(7), 14, "classification")
    spec = config.parse_spec(SPEC % {"task": "classification", "model": "LogisticRegression"})
    spec = backtest.policy_spec(spec, {"estimate": {"rows": 400}})
    results = backtest.backtest(data, spec, {"default": {}}, base_dir=tmp_path,
                                warmup=timedelta(days=10))
    by_name = {r.policy: r for r in results}
    # the gate holds rows out (default policy) or, off, `estimate.rows` are held out in an
    # extra fit (every-batch, weekly): every policy's batches were estimated
    for result in results:
        assert result.estimated_batches == 4, result.policy
        assert result.estimate_mae is not None and result.estimate_mae < 0.06, result
    assert all(step.estimate is not None for step in by_name["default"].steps[1:])


def test_dashboard_chart_shows_the_estimate_beside_the_realised_accuracy() -> None:
    from driftloop.ui import views

    clock = clocks.FakeClock(NOW)
    store = metadata.MetadataStore.open("sqlite://", clock=clock)
    store.pipelines.ensure("p", {})
    store.evaluations.add("p", batch_id=None, version=1, metric="accuracy", value=0.8, rows=4,
                         errors=[0, 0, 1, 0], estimated_value=0.75, estimated_rows=4)
    clock.advance(timedelta(hours=1))
    store.evaluations.add("p", batch_id=None, version=1, metric="accuracy", value=None, rows=0,
                         errors=[], estimated_value=0.6, estimated_rows=5)
    live = views.charts(store, "p")["live"]
    assert [s["label"] for s in live["series"]] == ["accuracy", "estimated accuracy"]
    assert [s["values"] for s in live["series"]] == [[0.8, None], [0.75, 0.6]]
    store.close()
