"""The metrics a gate (and a performance trigger) can judge models by.

Each `Metric` registers itself by name (`register`) right where it is defined, knows whether
greater is better and whether it needs probabilities, and computes its score with scikit-learn.
Metrics that are a function of a mean of per-row terms (accuracy, log loss, squared and
absolute error) also give those terms, so `gate.gate` can bootstrap them with one vectorised
numpy expression instead of a loop over resamples. The gate and the controller (live metric)
call `get_metric(name)`.

    >>> import numpy as np
    >>> m = get_metric("rmse")
    >>> y, p = np.array([1.0, 2.0, 3.0]), Predictions(np.array([1.0, 2.0, 5.0]))
    >>> round(m.score(y, p), 4), round(float(m.from_mean(m.rows(y, p).mean())), 4)
    (1.1547, 1.1547)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import metrics as skm

from driftloop.core import errors
from driftloop.core.types import Task

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Predictions:
    """A model's output on some rows: labels / values (`predict`) or a probability matrix
    (`predict_proba`, columns in the order of `classes`)."""

    values: Array
    classes: Array | None = None

    def take(self, rows: Array) -> Predictions:
        return Predictions(self.values[rows], self.classes)


@dataclass(frozen=True)
class Metric:
    """One metric: how to score, in which direction, and (optionally) its per-row terms."""

    name: str
    task: Task
    greater_is_better: bool
    needs_proba: bool
    scorer: Callable[[Array, Predictions], float]
    row_terms: Callable[[Array, Predictions], Array] | None = None
    root: bool = False  # the metric is sqrt(mean of row terms), e.g. rmse

    @property
    def per_row(self) -> bool:
        return self.row_terms is not None

    def predict(self, model: Any, X: Any) -> Predictions:
        """Run `model` on `X` the way this metric needs (probabilities or predictions)."""
        classes = getattr(model, "classes_", None)
        classes = None if classes is None else np.asarray(classes)
        if self.needs_proba:
            if not hasattr(model, "predict_proba"):
                raise errors.ConfigError(
                    f"metric {self.name!r} needs probabilities but {type(model).__name__} has no "
                    "predict_proba; choose accuracy or f1, or a probabilistic model")
            return Predictions(np.asarray(model.predict_proba(X), dtype=float), classes)
        return Predictions(np.asarray(model.predict(X)), classes)

    def score(self, y: Any, predictions: Predictions) -> float:
        """The metric on these rows, computed by scikit-learn."""
        return float(self.scorer(np.asarray(y), predictions))

    def rows(self, y: Any, predictions: Predictions) -> Array:
        """Per-row terms whose mean (through `from_mean`) is the metric."""
        if self.row_terms is None:
            raise errors.ConfigError(f"metric {self.name!r} is not a mean of per-row terms")
        return np.asarray(self.row_terms(np.asarray(y), predictions), dtype=float)

    def from_mean(self, mean: Array | float) -> Array:
        """The metric from the mean of its row terms (element-wise for many resamples)."""
        mean = np.asarray(mean, dtype=float)
        return np.sqrt(mean) if self.root else mean


METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add a metric to the registry under its name."""
    METRICS[metric.name] = metric
    return metric


def get_metric(name: str, task: Task | None = None) -> Metric:
    """The registered metric `name`; a `ConfigError` if unknown or not for `task`.

    >>> get_metric("log_loss").greater_is_better
    False
    """
    metric = METRICS.get(name)
    if metric is None:
        raise errors.ConfigError(
            f"metric {name!r} is not known; choose one of {', '.join(sorted(METRICS))}")
    if task is not None and metric.task != task:
        fitting = ", ".join(sorted(m.name for m in METRICS.values() if m.task == task))
        raise errors.ConfigError(
            f"metric {name!r} is for {metric.task}, but the pipeline's task is {task}; "
            f"choose one of {fitting}")
    return metric


@dataclass(frozen=True)
class Scorer:
    """A fitted model's `metric` on some rows: what a hyperparameter search (`train.search`)
    optimises. A plain picklable value, so trials in other processes can use it.

    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> model = DummyClassifier().fit(np.zeros((4, 1)), [0, 1, 1, 1])
    >>> Scorer("accuracy", "classification")(model, np.zeros((2, 1)), [1, 0])
    0.5
    """

    metric: str
    task: Task

    @property
    def greater_is_better(self) -> bool:
        return get_metric(self.metric, self.task).greater_is_better

    def __call__(self, model: Any, X: Any, y: Any) -> float:
        metric = get_metric(self.metric, self.task)
        return metric.score(y, metric.predict(model, X))


# --- classification -------------------------------------------------------------------------


def _proba_for_labels(y: Array, p: Predictions) -> tuple[Array, Array]:
    """The probability matrix with a zero column for every label of `y` the model never saw."""
    if p.classes is None:
        raise errors.ConfigError("probabilities need the model's `classes_`")
    unseen = np.setdiff1d(np.unique(y), p.classes)
    if unseen.size == 0:
        return p.values, p.classes
    labels = np.concatenate([p.classes, unseen])
    proba = np.hstack([p.values, np.zeros((len(p.values), unseen.size))])
    return proba, labels


def _true_class_proba(y: Array, p: Predictions) -> Array:
    proba, labels = _proba_for_labels(y, p)
    order = np.argsort(labels)
    column = order[np.searchsorted(labels, y, sorter=order)]
    return proba[np.arange(len(y)), column]


def _log_loss_rows(y: Array, p: Predictions) -> Array:
    eps = np.finfo(p.values.dtype).eps
    terms: Array = -np.log(np.clip(_true_class_proba(y, p), eps, 1 - eps))
    return terms


def _log_loss(y: Array, p: Predictions) -> float:
    proba, labels = _proba_for_labels(y, p)
    return float(skm.log_loss(y, proba, labels=labels))


def _roc_auc(y: Array, p: Predictions) -> float:
    proba, labels = _proba_for_labels(y, p)
    if proba.shape[1] == 2:
        positive = labels[1]
        return float(skm.roc_auc_score(y == positive, proba[:, 1]))
    return float(skm.roc_auc_score(y, proba, multi_class="ovr", labels=labels))


def _f1(y: Array, p: Predictions) -> float:
    labels = p.classes if p.classes is not None else np.union1d(y, p.values)
    if len(labels) <= 2:
        positive = 1 if 1 in list(labels) else sorted(labels)[-1]
        return float(skm.f1_score(y, p.values, pos_label=positive, zero_division=0.0))
    return float(skm.f1_score(y, p.values, average="macro", zero_division=0.0))


register(Metric("accuracy", "classification", True, False,
                lambda y, p: float(skm.accuracy_score(y, p.values)),
                lambda y, p: (y == p.values).astype(float)))
register(Metric("log_loss", "classification", False, True, _log_loss, _log_loss_rows))
register(Metric("roc_auc", "classification", True, True, _roc_auc))
register(Metric("f1", "classification", True, False, _f1))

# --- regression -----------------------------------------------------------------------------

register(Metric("rmse", "regression", False, False,
                lambda y, p: float(skm.root_mean_squared_error(y, p.values)),
                lambda y, p: (y.astype(float) - p.values.astype(float)) ** 2, root=True))
register(Metric("mae", "regression", False, False,
                lambda y, p: float(skm.mean_absolute_error(y, p.values)),
                lambda y, p: np.abs(y.astype(float) - p.values.astype(float))))
register(Metric("r2", "regression", True, False,
                lambda y, p: float(skm.r2_score(y, p.values))))
