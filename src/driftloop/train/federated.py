"""Federated training by parameter averaging (FedAvg, weighted by rows) for linear models.

Each region fits on its own rows and hands over only what `Update` holds: its row count and
its parameters (the scaler's sums and the model's coefficients and intercepts). `aggregate`
sees nothing else, so no row leaves a region. One round:

1. standardisation first: each region sends `count`, `sum` and `sum of squares` per feature
   (aggregates of its rows); the global mean and variance follow exactly, as if pooled;
2. then `rounds` of FedAvg: every region starts from the global coefficients, runs `epochs`
   passes of `partial_fit` (SGD) over its rows, and sends its coefficients back (with its
   step count, so SGD's decaying learning rate goes on across rounds instead of restarting);
   the new global model is their average weighted by the regions' row counts.

The estimator must be a `partial_fit` linear model with `coef_` and `intercept_`
(`SGDClassifier`, `SGDRegressor`, `Perceptron`, `PassiveAggressiveClassifier`).

`train.federated_rounds` runs these rounds between regions' processes (the loop's
`trainer.federated` mode); `federated_fit` runs them in one process over in-memory shards.

    >>> import numpy as np
    >>> from sklearn.linear_model import SGDClassifier
    >>> rng = np.random.default_rng(0)
    >>> shards = []
    >>> for shift in (0.0, 0.5, 1.0):
    ...     x = rng.normal(shift, 1, size=(400, 2))
    ...     shards.append((x, (x[:, 0] + x[:, 1] > 2 * shift).astype(int)))
    >>> fitted = federated_fit(lambda: SGDClassifier(loss="log_loss", random_state=0), shards)
    >>> round(float(fitted.score(np.vstack([s[0] for s in shards]),
    ...                          np.concatenate([s[1] for s in shards]))), 1) >= 0.8
    True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Update:
    """What one region sends: how many rows it learned from, and parameter arrays."""

    rows: int
    params: dict[str, Array]


def aggregate(updates: Sequence[Update]) -> dict[str, Array]:
    """The row-weighted average of each parameter (FedAvg).

    >>> aggregate([Update(1, {"w": np.array([0.0])}), Update(3, {"w": np.array([4.0])})])
    {'w': array([3.])}
    """
    total = sum(u.rows for u in updates)
    return {name: sum(u.params[name] * (u.rows / total) for u in updates)  # type: ignore[misc]
            for name in updates[0].params}


def scaler_update(x: Array) -> Update:
    """A region's standardisation statistics: per-feature count, sum and sum of squares."""
    return Update(len(x), {"sum": x.sum(axis=0), "squares": (x * x).sum(axis=0)})


def global_scaler(updates: Sequence[Update]) -> StandardScaler:
    """The scaler pooled data would give, from the regions' statistics."""
    rows = sum(u.rows for u in updates)
    mean: Array = np.sum([u.params["sum"] for u in updates], axis=0) / rows
    variance = np.sum([u.params["squares"] for u in updates], axis=0) / rows - mean * mean
    scaler = StandardScaler()
    scaler.mean_, scaler.var_ = mean, np.maximum(variance, 0.0)
    scaler.scale_ = np.where(scaler.var_ > 0, np.sqrt(scaler.var_), 1.0)
    scaler.n_features_in_, scaler.n_samples_seen_ = len(mean), rows
    return scaler


def _partial_fit(model: Any, x: Array, y: Array, classes: Array | None) -> None:
    """One `partial_fit` call; `classes` for a classifier, None for a regressor."""
    if classes is None:
        model.partial_fit(x, y)
    else:
        model.partial_fit(x, y, classes=classes)


def _set(model: Any, x: Array, y: Array, params: dict[str, Array], classes: Array | None) -> None:
    """`model` with the parameters `params` (allocated by one step, then overwritten)."""
    _partial_fit(model, x[:1], y[:1], classes)
    model.coef_, model.intercept_ = params["coef"].copy(), params["intercept"].copy()
    model.t_ = float(params["steps"][0])  # the learning-rate schedule goes on, not restarts


def local_update(
    model: Any, x: Array, y: Array, start: dict[str, Array] | None, classes: Array | None,
    epochs: int, seed: int,
) -> Update:
    """`model` from the global parameters `start`, `epochs` shuffled passes over one region's
    (already standardised) rows; its coefficients and intercept as an `Update`. `classes`:
    every label of the federation (a classifier), None for a regressor."""
    rng = np.random.default_rng(seed)
    if start is not None:
        _set(model, x, y, start, classes)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        _partial_fit(model, x[order], y[order], classes)
    return Update(len(x), {"coef": np.array(model.coef_, dtype=float),
                           "intercept": np.array(model.intercept_, dtype=float),
                           "steps": np.array([model.t_])})


def assemble(model: Any, mean: Array, var: Array, rows: int, params: dict[str, Array],
             classes: Array | None, columns: Sequence[str] | None = None) -> Pipeline:
    """The global model: the standardisation `mean`/`var` of `rows` rows, then `model` with the
    averaged `params` (set without learning from any row: a zero row only allocates them);
    `columns`: the input's column names, if it has them."""
    scaler = StandardScaler()
    scaler.mean_, scaler.var_ = np.asarray(mean, dtype=float), np.asarray(var, dtype=float)
    scaler.scale_ = np.where(scaler.var_ > 0, np.sqrt(scaler.var_), 1.0)
    scaler.n_features_in_, scaler.n_samples_seen_ = len(scaler.mean_), rows
    first = np.zeros((1, len(scaler.mean_)))
    label = classes[:1] if classes is not None else np.zeros(1)
    _set(model, first, label, params, classes)
    if columns is not None:
        scaler.feature_names_in_ = np.asarray(columns, dtype=object)
    return make_pipeline(scaler, model)


def federated_fit(
    make_model: Callable[[], Any],
    shards: Sequence[tuple[Array, Array]],
    rounds: int = 10,
    epochs: int = 1,
    seed: int = 0,
    aggregator: Callable[[Sequence[Update]], dict[str, Array]] = aggregate,
) -> Pipeline:
    """A scaler + linear model trained by FedAvg over `shards` (one `(x, y)` per region);
    `aggregator` combines updates (the default `aggregate`; a test passes a spy)."""
    if rounds < 1 or epochs < 1 or not shards:
        raise ValueError(f"`rounds` and `epochs` of federated_fit must be >= 1 and there must "
                         f"be a shard; got rounds={rounds}, epochs={epochs}, {len(shards)} shards")
    classes = np.unique(np.concatenate([y for _, y in shards]))
    scaler = global_scaler([scaler_update(np.asarray(x, dtype=float)) for x, _ in shards])
    scaled = [(scaler.transform(np.asarray(x, dtype=float)), np.asarray(y)) for x, y in shards]
    params: dict[str, Array] | None = None
    for step in range(rounds):
        updates = [local_update(make_model(), x, y, params, classes, epochs, seed + 97 * step + i)
                   for i, (x, y) in enumerate(scaled)]
        params = aggregator(updates)
    return assemble(make_model(), scaler.mean_, scaler.var_, scaler.n_samples_seen_,
                    params, classes)  # type: ignore[arg-type]
