"""The LightGBM family (`lightgbm` extra): meets the trainer contract, wins a search where trees
should, and its model files load under the project's allow-list."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import require_service

import driftloop
from driftloop.controller import project as projects
from driftloop.core import config
from driftloop.gate import metrics
from driftloop.store import artifacts
from driftloop.train import boosting, executor

CLASSIFIER = "driftloop.train.boosting:lightgbm_classifier"


@pytest.fixture(autouse=True)
def _lightgbm() -> None:
    if importlib.util.find_spec("lightgbm") is None:
        require_service("LightGBM", "lightgbm is not installed (pip install -e '.[lightgbm]')")


def _xor(rows: int = 1200) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.uniform(-1, 1, size=(rows, 2)), columns=["a", "b"])
    return X, pd.Series((X["a"] * X["b"] > 0).astype(int))


def test_the_lightgbm_trainers_meet_the_contract() -> None:
    assert driftloop.check_trainer(CLASSIFIER, {"n_estimators": 20}) == []
    assert driftloop.check_trainer(boosting.lightgbm_regressor, {"n_estimators": 20},
                                   task="regression") == []


def test_a_search_picks_lightgbm_over_a_line_on_xor_and_its_model_loads(tmp_path: Path) -> None:
    spec = config.PipelineSpec.model_validate({
        "name": "p", "source": {"path": "in/*.csv"}, "target": "y",
        "trainer": {"function": "sklearn.linear_model:LogisticRegression", "search": {
            "trials": 2, "candidates": {"lightgbm": {
                "function": CLASSIFIER, "params": {"n_estimators": 50},
                "space": {"num_leaves": {"low": 4, "high": 16}}}}}},
    })
    X, y = _xor()
    result = executor.InlineExecutor().train(
        spec.trainer, X, y, Path("."), metrics.Scorer("accuracy", "classification"))
    scores = {t.family: t.score for t in result.trials}
    assert scores["lightgbm"] > scores["LogisticRegression"] + 0.3
    assert type(result.estimator).__name__ == "LGBMClassifier"
    store = artifacts.ArtifactStore(str(tmp_path),
                                    trusted_modules=projects.trusted_modules(spec))
    stored = store.put_model(result.estimator)
    loaded = store.get_model(stored.uri, stored.sha256)
    assert (loaded.predict_proba(X) == result.estimator.predict_proba(X)).all()
    plain = artifacts.ArtifactStore(str(tmp_path))  # without the family's trust: refused
    with pytest.raises(driftloop.DriftloopError, match="lightgbm"):
        plain.get_model(stored.uri, stored.sha256)
