"""Fairness mitigation on the real arrests data: every method lowers the demographic parity
difference between skin colours at about the same accuracy; the wrapper's probabilities are
fairlearn's own; a mitigated model is stored and loaded through the artifact store; the
sensitive column it was not given as a feature never reaches the inner estimator."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import specs
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from driftloop.core import config, errors
from driftloop.data import fairness_data
from driftloop.store import artifacts
from driftloop.train import mitigation, trainer

fm = pytest.importorskip("fairlearn.metrics", reason="needs the fairness extra")
from fairlearn import postprocessing, reductions  # noqa: E402

CATEGORIES = ["sex", "employed", "citizen", "colour"]
NUMBERS = ["year", "age", "checks"]
FEATURES = CATEGORIES + NUMBERS


def make_model() -> Pipeline:
    """One-hot categories, scaled numbers, logistic regression."""
    columns = make_column_transformer((OneHotEncoder(), CATEGORIES), (StandardScaler(), NUMBERS))
    return make_pipeline(columns, LogisticRegression(max_iter=500))


@pytest.fixture(scope="module")
def split() -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = fairness_data.arrests()
    train, test = train_test_split(rows, test_size=0.3, random_state=0,
                                   stratify=rows["released"])
    return train, test


def judged(model: Any, test: pd.DataFrame) -> tuple[float, float]:
    """Accuracy and demographic parity difference between colours on `test`."""
    predicted = model.predict(test[FEATURES])
    y, p = (test["released"] == "Yes").astype(int), (predicted == "Yes").astype(int)
    return (float(np.mean(predicted == test["released"])),
            float(fm.demographic_parity_difference(y, p, sensitive_features=test["colour"])))


@pytest.mark.parametrize("method", ["reweight", "exponentiated_gradient",
                                    "threshold_optimizer"])
def test_mitigation_lowers_the_disparity_on_the_arrests_data(
        method: str, split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, test = split
    if method == "exponentiated_gradient":  # ~50 fits of the reduction: fewer rows
        train = train.sample(1500, random_state=0)
    base = make_model().fit(train[FEATURES], train["released"])
    mitigated = mitigation.FairnessMitigated(make_model(), method, "colour").fit(
        train[FEATURES], train["released"])
    (acc0, dpd0), (acc1, dpd1) = judged(base, test), judged(mitigated, test)
    print(f"{method}: accuracy {acc0:.3f} -> {acc1:.3f}, "
          f"demographic parity difference {dpd0:.3f} -> {dpd1:.3f}")
    assert dpd1 < dpd0 / 2
    assert acc1 > acc0 - 0.02


def test_oversampling_evens_the_groups_and_keeps_every_row() -> None:
    groups = np.array(["a"] * 6 + ["b"] * 2)
    rows = mitigation.oversampled(groups, seed=0)
    assert sorted(set(rows[:8])) == list(range(8))
    assert (groups[rows] == "a").sum() == (groups[rows] == "b").sum() == 6


def test_the_probabilities_are_fairlearns(split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, test = split
    train = train.sample(800, random_state=1)
    y = (train["released"] == "Yes").astype(int)
    optimizer = postprocessing.ThresholdOptimizer(
        estimator=make_model(), constraints="equalized_odds", predict_method="predict_proba")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        optimizer.fit(train[FEATURES], y, sensitive_features=train["colour"])
    ours = mitigation.FairnessMitigated(make_model(), "threshold_optimizer", "colour",
                                        "equalized_odds").fit(train[FEATURES], train["released"])
    theirs = optimizer._pmf_predict(test[FEATURES], sensitive_features=test["colour"])[:, 1]
    np.testing.assert_allclose(ours.positive_probability(test[FEATURES]), theirs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        reduction = reductions.ExponentiatedGradient(
            make_model(), reductions.DemographicParity(),
            sample_weight_name="logisticregression__sample_weight")
        reduction.fit(train[FEATURES], y, sensitive_features=train["colour"])
    ours = mitigation.FairnessMitigated(make_model(), "exponentiated_gradient", "colour").fit(
        train[FEATURES], train["released"])
    np.testing.assert_allclose(ours.positive_probability(test[FEATURES]),
                               reduction._pmf_predict(test[FEATURES])[:, 1])


def test_a_mitigated_model_is_stored_and_the_fairness_only_column_stays_out(
        tmp_path: Path, split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, test = split
    (tmp_path / "train.py").write_text(
        "from sklearn.ensemble import HistGradientBoostingClassifier\n\n\n"
        "def make_model():\n"
        "    return HistGradientBoostingClassifier(max_iter=20)\n")
    spec = config.TrainerSpec(function="train:make_model", fairness_mitigation={
        "method": "reweight", "feature": "colour"})
    numbers = train[NUMBERS].assign(carrier=train["colour"]).rename(
        columns={"carrier": mitigation.sensitive_column("colour")})
    model = trainer.fit_model(spec, numbers, train["released"], tmp_path)
    assert list(model.estimator_.feature_names_in_) == NUMBERS
    store = artifacts.ArtifactStore(str(tmp_path / "artifacts"), trusted_modules=["train"])
    stored = store.put_model(model)
    again = store.get_model(stored.uri, stored.sha256)
    np.testing.assert_array_equal(again.predict(test[NUMBERS]), model.predict(test[NUMBERS]))


def test_a_trainer_that_fits_itself_cannot_be_mitigated(tmp_path: Path) -> None:
    (tmp_path / "own.py").write_text(
        "from sklearn.linear_model import LogisticRegression\n\n\n"
        "def fit(X, y):\n    return LogisticRegression().fit(X, y)\n")
    spec = config.TrainerSpec(function="own:fit", fairness_mitigation={
        "method": "reweight", "feature": "g"})
    frame = pd.DataFrame({"x": [0.0, 1.0], "__sensitive_g": ["a", "b"]})
    with pytest.raises(errors.ConfigError, match="fits itself"):
        trainer.fit_model(spec, frame, [0, 1], tmp_path)


def test_threshold_optimizer_on_a_column_the_model_does_not_read_is_refused() -> None:
    text = """
name: p
source: {kind: files, path: '*.csv'}
target: y
trainer:
  function: m:f
  fairness_mitigation: {method: threshold_optimizer, feature: g}
fairness: {sensitive: [g]}
"""
    with pytest.raises(errors.ConfigError, match="model_inputs"):
        config.parse_spec(text)
    assert config.parse_spec(specs.overridden(text, add={"fairness": {"model_inputs": ["g"]}}))


ARRESTS_SPEC = """
name: arrests
store: sqlite:///driftloop.db
artifacts: ./artifacts
source: {kind: files, path: data/*.csv}
target: released
trainer:
  function: train:make_model
  executor: inline
  fairness_mitigation: {method: reweight, feature: colour}
triggers: [{kind: volume, every: 1 batch}]
gate: {require: not_worse, holdout: 1 batch, bootstrap: 100}
fairness: {sensitive: [colour], positive: "Yes"}
"""

ARRESTS_TRAIN = """
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def make_model():
    columns = make_column_transformer(
        (OneHotEncoder(), ["sex", "employed", "citizen"]),
        (StandardScaler(), ["year", "age", "checks"]))
    return make_pipeline(columns, LogisticRegression(max_iter=500))
"""


def test_the_loop_trains_a_mitigated_challenger_that_never_sees_the_column(
        tmp_path: Path) -> None:
    from driftloop.controller import project as projects
    from driftloop.controller import tick

    (tmp_path / "data").mkdir()
    (tmp_path / "driftloop.yaml").write_text(ARRESTS_SPEC)
    (tmp_path / "train.py").write_text(ARRESTS_TRAIN)
    project = projects.open_project(tmp_path / "driftloop.yaml")
    controller = tick.Controller(project)
    rows = fairness_data.arrests().sample(frac=1.0, random_state=0)
    for index in range(3):
        rows.iloc[index * 1500:(index + 1) * 1500].to_csv(
            tmp_path / "data" / f"{index:03}.csv", index=False)
        controller.tick()
    newest = project.store.versions.list(project.name)[-1]
    model = project.artifacts.get_model(newest.artifact_uri, newest.sha256)
    assert isinstance(model, mitigation.FairnessMitigated)
    assert "colour" not in model.estimator_.feature_names_in_
    assert newest.gate_report is not None and "fairness" in newest.gate_report
    found = project.store.findings.list(project.name, "fairness")
    assert found and found[-1].report["columns"]["colour"]["judged"]
