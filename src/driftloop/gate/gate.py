"""The promotion gate: is the challenger significantly better than the champion?

The controller calls `evaluate_gate` after a training, with both models and the most recent
labelled rows neither was trained on, and records the `GateReport` as the model version's
evidence. Both models are scored on the same rows; a paired bootstrap resamples row indices
(the same indices for both) and gives a confidence interval for the difference
challenger − champion, oriented so that positive always means "challenger better". With
`require: better` the challenger passes only if the lower end of that interval is above
`min_improvement`: a model that is merely as good as the champion does not replace it. With
`require: not_worse` it passes unless the whole interval lies below 0: a retrained model that
is as good as the champion goes live, with its newer data.

Metrics that are a mean of per-row terms are bootstrapped in one numpy expression per chunk of
resamples; the others (roc_auc, f1, r2) are recomputed with scikit-learn on every resample.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning

from driftloop.core import config, finite
from driftloop.core.types import JSON, Task
from driftloop.gate import metrics

Array = np.ndarray[Any, Any]

# Index matrices are drawn in chunks of about this many cells to bound memory.
_CHUNK_CELLS = 4_000_000


@dataclass(frozen=True)
class GateReport:
    """The gate's verdict and the numbers behind it (scores on the holdout, bootstrap CI)."""

    metric: str
    greater_is_better: bool
    challenger_score: float | None
    champion_score: float | None
    diff: float | None
    mean_diff: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float
    resamples: int
    n: int
    passed: bool
    reason: str

    def to_json(self) -> JSON:
        """The report as JSON-safe values (NaN becomes None)."""
        return {key: finite.or_none(value) for key, value in asdict(self).items()}


def evaluate_gate(
    challenger: Any,
    champion: Any | None,
    X: Any,
    y: Any,
    spec: config.GateSpec,
    task: Task,
    seed: int = 0,
) -> GateReport:
    """Score `challenger` against `champion` on the holdout (`X`, `y`) as `spec` says.

    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> X, y = np.zeros((200, 1)), np.array([0, 1] * 100)
    >>> model = DummyClassifier(strategy="most_frequent").fit(X, y)
    >>> evaluate_gate(model, model, X, y, config.GateSpec(bootstrap=200), "classification").reason
    'challenger accuracy 0.5 vs champion 0.5: diff 0, 95% CI [0, 0] is not above 0'
    """
    report = _compare(challenger, champion, X, y, spec, task, seed)
    if spec.enabled:
        return report
    return replace(report, passed=True, reason="gate disabled: every trained model is promoted")


def unjudged(spec: config.GateSpec, reason: str) -> GateReport:
    """A pass without a comparison (no rows to compare on fairly), saying why."""
    return GateReport(metric=spec.metric, greater_is_better=True, challenger_score=None,
                      champion_score=None, diff=None, mean_diff=None, ci_low=None, ci_high=None,
                      confidence=spec.confidence, resamples=0, n=0, passed=True,
                      reason=f"promoted without comparison: {reason}")


def _compare(
    challenger: Any,
    champion: Any | None,
    X: Any,
    y: Any,
    spec: config.GateSpec,
    task: Task,
    seed: int,
) -> GateReport:
    metric = metrics.get_metric(spec.metric, task)
    y = np.asarray(y)
    scores: dict[str, Any] = dict.fromkeys(
        ("challenger_score", "champion_score", "diff", "mean_diff", "ci_low", "ci_high")
    )

    def report(passed: bool, reason: str) -> GateReport:
        return GateReport(
            metric=metric.name,
            greater_is_better=metric.greater_is_better,
            confidence=spec.confidence,
            resamples=spec.bootstrap,
            n=len(y),
            passed=passed,
            reason=reason,
            **scores,
        )

    if len(y) == 0:
        if champion is None:
            return report(True, "no champion")
        return report(False, "no labelled holdout rows to compare the models on")
    try:
        new = metric.predict(challenger, X)
        new_score = scores["challenger_score"] = metric.score(y, new)
    except Exception as exc:
        return report(False, f"challenger failed to predict: {type(exc).__name__}: {exc}")
    if champion is None:
        return report(True, "no champion")
    try:
        old = metric.predict(champion, X)
        old_score = scores["champion_score"] = metric.score(y, old)
    except Exception as exc:
        return report(
            True,
            f"champion failed to predict on the holdout "
            f"({type(exc).__name__}: {exc}); the challenger can",
        )
    sign = 1.0 if metric.greater_is_better else -1.0
    diff = scores["diff"] = sign * (new_score - old_score)
    diffs = bootstrap_diffs(metric, y, new, old, spec.bootstrap, seed)
    head = f"challenger {metric.name} {new_score:.4g} vs champion {old_score:.4g}: diff {diff:.4g}"
    if np.isnan(diffs).all():
        return report(False, f"{head}; {metric.name} is undefined on every resample")
    tail = (1.0 - spec.confidence) / 2.0
    low, high = (float(v) for v in np.nanquantile(diffs, [tail, 1.0 - tail]))
    scores.update(mean_diff=float(np.nanmean(diffs)), ci_low=low, ci_high=high)
    ci = f"{head}, {spec.confidence:.0%} CI [{low:.4g}, {high:.4g}]"
    if spec.require == "not_worse":
        passed = high >= 0
        return report(passed, f"{ci} {'reaches' if passed else 'is wholly below'} 0: "
                      f"{'not significantly worse' if passed else 'significantly worse'}")
    passed = low > spec.min_improvement
    verdict = "is above" if passed else "is not above"
    return report(passed, f"{ci} {verdict} {spec.min_improvement:g}")


def resample_indices(n: int, resamples: int, seed: int) -> Iterator[Array]:
    """Bootstrap row indices: `resamples` rows of `n` indices, drawn in chunks from `seed`."""
    rng = np.random.default_rng(seed)
    chunk = max(1, min(resamples, _CHUNK_CELLS // max(n, 1)))
    for start in range(0, resamples, chunk):
        yield rng.integers(0, n, size=(min(chunk, resamples - start), n))


def bootstrap_diffs(
    metric: metrics.Metric,
    y: Array,
    new: metrics.Predictions,
    old: metrics.Predictions,
    resamples: int,
    seed: int,
) -> Array:
    """Oriented metric differences (new − old, positive = new better) over paired resamples.

    A resample on which the metric is undefined (one class only, for roc_auc) gives NaN.
    """
    sign = 1.0 if metric.greater_is_better else -1.0
    out = np.empty(resamples)
    done = 0
    if metric.per_row:
        new_rows, old_rows = metric.rows(y, new), metric.rows(y, old)
        for index in resample_indices(len(y), resamples, seed):
            both = metric.from_mean(new_rows[index].mean(axis=1)) - metric.from_mean(
                old_rows[index].mean(axis=1)
            )
            out[done : done + len(index)] = sign * both
            done += len(index)
        return out
    for index in resample_indices(len(y), resamples, seed):
        for rows in index:
            out[done] = sign * (
                _score_or_nan(metric, y[rows], new.take(rows))
                - _score_or_nan(metric, y[rows], old.take(rows))
            )
            done += 1
    return out


def _score_or_nan(metric: metrics.Metric, y: Array, predictions: metrics.Predictions) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        try:
            return metric.score(y, predictions)
        except ValueError:
            return math.nan
