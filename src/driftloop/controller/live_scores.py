"""Logged predictions scored with a gate metric against their labels (`controller.rollout`
compares a live test's alias with the champion this way): labels and predictions as the metric
takes them, and the metric on bootstrap resamples of one group's rows."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

from driftloop.store import serving

if TYPE_CHECKING:  # numpy and scikit-learn are imported only while a rollout is judged
    import numpy as np

    from driftloop.gate import metrics

    Array = np.ndarray[Any, Any]


def labels(metric: metrics.Metric, labels: list[Any]) -> Array:
    """Labels as an array; as text for probability metrics (probability keys are text)."""
    import numpy as np

    return np.array([str(v) for v in labels] if metric.needs_proba else labels)


def predictions(metric: metrics.Metric, items: list[serving.Prediction]) -> metrics.Predictions:
    import numpy as np

    from driftloop.gate import metrics

    if metric.needs_proba:
        first = items[0].probabilities
        if first is None:
            raise ValueError("the model gives no probabilities")
        classes = list(first)
        values = np.array(
            [[(p.probabilities or {})[c] for c in classes] for p in items], dtype=float
        )
        return metrics.Predictions(values, np.array(classes))
    return metrics.Predictions(np.array([p.prediction for p in items]))


def bootstrap(
    metric: metrics.Metric, y: Array, predictions: metrics.Predictions, resamples: int, seed: int
) -> Array:
    """The metric on `resamples` bootstrap resamples of one group's rows."""
    import numpy as np
    from sklearn.exceptions import UndefinedMetricWarning

    from driftloop.gate import gate

    out = np.empty(resamples)
    done = 0
    if metric.per_row:
        rows = metric.rows(y, predictions)
        for index in gate.resample_indices(len(y), resamples, seed):
            out[done : done + len(index)] = metric.from_mean(rows[index].mean(axis=1))
            done += len(index)
        return out
    for index in gate.resample_indices(len(y), resamples, seed):
        for picked in index:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UndefinedMetricWarning)
                try:
                    out[done] = metric.score(y[picked], predictions.take(picked))
                except ValueError:
                    out[done] = math.nan
            done += 1
    return out
