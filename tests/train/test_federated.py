"""Federated averaging: the aggregation step receives parameter arrays and row counts only, the
pooled scaler is recovered exactly from per-region sums, and on regions drawn from one
distribution the federated model scores as the pooled one does."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier
from sklearn.preprocessing import StandardScaler

from driftloop.train import federated

Shard = tuple[np.ndarray, np.ndarray]


def regions(seed: int, shifts: Sequence[float], rows: int = 600) -> list[Shard]:
    rng = np.random.default_rng(seed)
    found = []
    for shift in shifts:
        x = rng.normal(shift, 1 + shift, size=(rows, 4))
        found.append((x, (x @ np.array([1.0, -1.0, 0.5, 0.0]) > shift).astype(int)))
    return found


def model() -> SGDClassifier:
    return SGDClassifier(loss="log_loss", random_state=0)


def test_the_aggregator_receives_parameters_and_row_counts_only() -> None:
    shards = regions(0, [0.0, 1.0, 2.0], rows=500)
    seen: list[federated.Update] = []

    def spy(updates: Sequence[federated.Update]) -> dict[str, np.ndarray]:
        seen.extend(updates)
        return federated.aggregate(updates)

    federated.federated_fit(model, shards, rounds=3, aggregator=spy)
    assert len(seen) == 9
    for update in seen:
        assert update.rows == 500
        shapes = {name: array.shape for name, array in update.params.items()}
        assert shapes == {"coef": (1, 4), "intercept": (1,), "steps": (1,)}  # no row dimension
    stats = federated.scaler_update(shards[0][0])
    assert {k: v.shape for k, v in stats.params.items()} == {"sum": (4,), "squares": (4,)}


def test_the_scaler_from_region_sums_is_the_pooled_one() -> None:
    shards = regions(1, [0.0, 3.0])
    pooled = StandardScaler().fit(np.vstack([x for x, _ in shards]))
    combined = federated.global_scaler([federated.scaler_update(x) for x, _ in shards])
    np.testing.assert_allclose(combined.mean_, pooled.mean_)
    np.testing.assert_allclose(combined.scale_, pooled.scale_)


def test_on_alike_regions_federated_scores_as_pooled() -> None:
    train, test = regions(2, [0.5] * 3), regions(3, [0.5])[0]
    fed = federated.federated_fit(model, train, rounds=10)
    x = np.vstack([x for x, _ in train])
    y = np.concatenate([y for _, y in train])
    pooled = federated.federated_fit(model, [(x, y)], rounds=10)  # one region: plain SGD
    assert fed.score(*test) > 0.85
    assert abs(fed.score(*test) - pooled.score(*test)) < 0.03


def test_rounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rounds=0"):
        federated.federated_fit(model, regions(0, [0.0]), rounds=0)
