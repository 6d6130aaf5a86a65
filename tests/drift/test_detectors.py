"""Conformance of drift.detectors against bare river on fixed streams."""

from __future__ import annotations

import numpy as np
import pytest
from river import drift as river_drift

from driftloop.core import errors
from driftloop.drift import detectors

CASES = [
    ("adwin", {}, river_drift.ADWIN),
    ("adwin", {"delta": 0.01, "grace_period": 20}, river_drift.ADWIN),
    ("page_hinkley", {}, river_drift.PageHinkley),
    ("page_hinkley", {"threshold": 20.0, "min_instances": 50}, river_drift.PageHinkley),
]


def _bernoulli_stream(seed: int = 42, n: int = 3000, change: int = 1000) -> list[float]:
    rng = np.random.default_rng(seed)
    p = np.where(np.arange(n) < change, 0.1, 0.5)
    return (rng.random(n) < p).astype(float).tolist()


def _river_points(factory: type, params: dict[str, object], stream: list[float]) -> list[int]:
    bare = factory(**params)
    points = []
    for i, x in enumerate(stream):
        bare.update(x)
        if bare.drift_detected:
            points.append(i)
    return points


@pytest.mark.parametrize(("kind", "params", "factory"), CASES)
def test_repr_and_params_round_trip(kind: str, params: dict[str, object], factory: type) -> None:
    detector = detectors.ErrorStreamDetector(kind, **params)  # type: ignore[arg-type]
    twin = detectors.ErrorStreamDetector(**detector.get_params())
    assert repr(twin) == repr(detector)
    assert repr(detector).startswith(f"ErrorStreamDetector(kind='{kind}'")
    for key, value in params.items():
        assert f"{key}={value!r}" in repr(detector)


@pytest.mark.parametrize(("kind", "params", "factory"), CASES)
@pytest.mark.parametrize("seed", [0, 42, 7])
def test_drift_points_equal_bare_river(
    kind: str, params: dict[str, object], factory: type, seed: int
) -> None:
    stream = _bernoulli_stream(seed)
    expected = _river_points(factory, params, stream)
    detector = detectors.ErrorStreamDetector(kind, **params)  # type: ignore[arg-type]
    flags = [detector.update(x) for x in stream]
    assert detector.drift_points_ == expected == [i for i, f in enumerate(flags) if f]
    assert any(1000 <= i < 1400 for i in expected), "the change at 1000 is found"
    assert detectors.scan(stream, kind, **params) == expected  # type: ignore[arg-type]
    detector.reset()
    assert detector.drift_points_ == [] and detector.scan(stream) == expected


@pytest.mark.parametrize(("kind", "params", "factory"), CASES)
def test_stationary_stream_matches_river(
    kind: str, params: dict[str, object], factory: type
) -> None:
    rng = np.random.default_rng(5)
    stream = (rng.random(1000) < 0.1).astype(float).tolist()
    expected = _river_points(factory, params, stream)
    assert detectors.scan(stream, kind, **params) == expected  # type: ignore[arg-type]
    assert len(expected) <= 1


def test_bad_kind_and_params_are_config_errors() -> None:
    with pytest.raises(errors.ConfigError, match="must be one of"):
        detectors.ErrorStreamDetector("ddm")  # type: ignore[arg-type]
    with pytest.raises(errors.ConfigError, match="page_hinkley"):
        detectors.ErrorStreamDetector("page_hinkley", mode="sideways")
    with pytest.raises(errors.ConfigError, match="adwin"):
        detectors.ErrorStreamDetector("adwin", nonsense=1)
