"""Scoring a live model: arrays for plain estimators, predictions from probabilities for the
classifiers whose `predict` is their argmax, always the answers scikit-learn itself gives."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from driftloop.server import live_models, scoring
from driftloop.store import entities


def _data(classes: int, rows: int = 300) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(rows, 3)), columns=["a", "b", "c"])
    score = frame["a"] + frame["b"] + rng.normal(scale=0.5, size=rows)
    y = pd.Series(np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1])))
    return frame, y.map(lambda k: f"class-{k}") if classes > 2 else y


def live(model: object) -> live_models.LiveModel:
    version = entities.ModelVersion.__new__(entities.ModelVersion)
    return live_models.LiveModel("champion", version, model, datetime.now(UTC))


def test_plain_estimators_score_arrays_meta_estimators_frames_with_equal_answers() -> None:
    frame, y = _data(classes=2)
    plain = live(HistGradientBoostingClassifier(max_iter=20).fit(frame, y))
    piped = live(make_pipeline(StandardScaler(), HistGradientBoostingClassifier(max_iter=20))
                 .fit(frame, y))
    unnamed = live(HistGradientBoostingClassifier(max_iter=20).fit(frame.to_numpy(), y))
    assert plain.array_features == ["a", "b", "c"]
    assert piped.array_features is None and unnamed.array_features is None
    scoring.prepare_scoring_thread()  # silences the no-column-names warning for arrays
    for model in (plain, piped):
        assert scoring.score(model, frame, floats=True) == scoring.score(model, frame)
    with pytest.raises(ValueError, match="feature names"):  # other order: not an array
        scoring.score(plain, frame[["c", "b", "a"]], floats=True)


ARGMAX_MODELS: list[Any] = [
    HistGradientBoostingClassifier(max_iter=20, random_state=0),
    RandomForestClassifier(n_estimators=2, random_state=0),  # pure leaves: ties of 0.5 / 0.5
    ExtraTreesClassifier(n_estimators=4, max_depth=3, random_state=0),
    DecisionTreeClassifier(max_depth=3, random_state=0),
    LogisticRegression(),
    make_pipeline(StandardScaler(), HistGradientBoostingClassifier(max_iter=10)),
]


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("estimator", ARGMAX_MODELS, ids=lambda m: type(m).__name__)
def test_predictions_taken_from_probabilities_equal_predict(estimator: Any, classes: int) -> None:
    frame, y = _data(classes)
    model = live(estimator.fit(frame, y))
    assert model.argmax_classes is not None
    scored = scoring.score(model, frame)
    assert [s.prediction for s in scored] == np.asarray(estimator.predict(frame)).tolist()
    proba = estimator.predict_proba(frame)
    assert [list(s.probabilities.values()) for s in scored] == proba.tolist()


def test_forest_ties_are_decided_by_predict() -> None:
    frame, y = _data(2)
    forest = RandomForestClassifier(n_estimators=2, random_state=0).fit(frame, y)  # pure leaves
    proba = forest.predict_proba(frame)
    assert (proba[:, 0] == proba[:, 1]).any()  # the case the fallback is for
    scored = scoring.score(live(forest), frame)
    assert [s.prediction for s in scored] == forest.predict(frame).tolist()


@pytest.mark.parametrize(
    "estimator",
    [GradientBoostingClassifier(n_estimators=5), KNeighborsClassifier()],
    ids=lambda m: type(m).__name__,
)
def test_other_classifiers_predict_themselves(estimator: Any) -> None:
    frame, y = _data(2)
    model = live(estimator.fit(frame, y))
    assert model.argmax_classes is None
    scored = scoring.score(model, frame)
    assert [s.prediction for s in scored] == estimator.predict(frame).tolist()
