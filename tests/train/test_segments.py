"""Per-segment models (`trainer.segment_by`): one model per value beats one model for all when
the segments behave differently; unseen values go to the fallback; the model survives skops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pydantic
import pytest

from driftloop.core import config, errors
from driftloop.store import artifacts
from driftloop.train import executor, segments


def regions(rows: int = 2000) -> tuple[pd.DataFrame, pd.Series]:
    """Two regions where the same feature means opposite things: y = x > 0 in region 1,
    x < 0 in region 2. One linear model cannot fit both; one per region can."""
    rng = np.random.default_rng(0)
    region = rng.choice([1, 2], size=rows)
    x = rng.normal(size=rows)
    y = np.where(region == 1, x > 0, x < 0).astype(int)
    return pd.DataFrame({"region": region, "x": x}), pd.Series(y)


def _spec(**changes: object) -> config.TrainerSpec:
    return config.TrainerSpec.model_validate(
        {"function": "sklearn.linear_model:LogisticRegression", **changes})


def test_one_model_per_segment_beats_one_for_all() -> None:
    X, y = regions()
    segmented = executor.InlineExecutor().train(_spec(segment_by="region"), X, y, Path("."))
    single = executor.InlineExecutor().train(_spec(), X, y, Path("."))
    model = segmented.estimator
    assert isinstance(model, segments.SegmentedModel)
    assert sorted(model.models) == ["1", "2"]
    assert (model.predict(X) == y).mean() > 0.95
    assert (single.estimator.predict(X) == y).mean() < 0.7
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(axis=1), 1)
    assert list(model.classes_) == [0, 1]
    assert segmented.cpu_seconds > 0


def test_unseen_segments_use_the_fallback_and_floats_find_their_segment() -> None:
    X, y = regions()
    model = executor.InlineExecutor().train(_spec(segment_by="region"), X, y, Path(".")).estimator
    rows = pd.DataFrame({"region": [1.0, 2.0, 7.0], "x": [1.0, 1.0, 1.0]})
    assert model.predict(rows)[:2].tolist() == [1, 0]  # region 1.0 is region 1
    assert model.predict(rows.iloc[2:]).tolist() == model.fallback.predict(rows.iloc[2:]).tolist()


def test_a_segmented_model_round_trips_through_the_artifact_store() -> None:
    X, y = regions(400)
    model = executor.InlineExecutor().train(_spec(segment_by="region"), X, y, Path(".")).estimator
    store = artifacts.ArtifactStore("memory://segments-test")
    artifact = store.put_model(model)
    loaded = store.get_model(artifact.uri, artifact.sha256)
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_the_local_executor_trains_each_segment_in_a_child() -> None:
    X, y = regions(600)
    result = executor.LocalExecutor(timeout=600).train(_spec(segment_by="region"), X, y, Path("."))
    assert sorted(result.estimator.models) == ["1", "2"]


def test_segment_errors() -> None:
    X, y = regions(100)
    with pytest.raises(errors.ConfigError, match=r"'area' is not a feature column.*region, x"):
        executor.InlineExecutor().train(_spec(segment_by="area"), X, y, Path("."))
    with pytest.raises(pydantic.ValidationError, match="`segment_by` and `search` do not"):
        _spec(segment_by="region", search={"trials": 2})
