"""Fairness mitigation around a trainer's estimator (`trainer.fairness_mitigation`).

`FairnessMitigated` wraps the unfitted estimator the trainer made and fits it one of four ways,
with the groups of one sensitive column:

- ``reweight`` (pre-processing): each row weighs P(group) P(label) / P(group, label), so group
  and label are independent in the weighted data (Kamiran & Calders 2012);
- ``oversample`` (pre-processing): rows of every smaller group are drawn again, with
  replacement, until each group has as many rows as the largest;
- ``exponentiated_gradient`` (in-processing): fairlearn's reduction under the declared
  constraint (demographic parity or equalized odds);
- ``threshold_optimizer`` (post-processing): fairlearn's per-group thresholds on the
  estimator's scores; it needs the group of every row it predicts.

A sensitive column that is not a model input reaches `fit` under `sensitive_column(name)` and
is dropped before the estimator sees it; `predict` never needs it (except for
``threshold_optimizer``, which the spec allows only on a model input).

fairlearn's fitted objects hold types skops cannot store, so the wrapper keeps what defines them
as plain values: the reduction's predictors and their weights, the optimizer's per-group
threshold operations (operator, threshold, probability). It predicts deterministically: the
favourable class where fairlearn's probability of it (its ``_pmf_predict``) is at least 1/2,
where fairlearn would draw at random.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.pipeline import Pipeline

PREFIX = "__sensitive_"


def sensitive_column(name: str) -> str:
    """The training column that carries a sensitive column the model does not use.

    >>> sensitive_column("race")
    '__sensitive_race'
    """
    return PREFIX + name


class FairnessMitigated(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A binary classifier fitted with a fairness mitigation on the groups of `feature`."""

    def __init__(self, estimator: Any, method: str, feature: str,
                 constraint: str = "demographic_parity", seed: int = 0) -> None:
        self.estimator = estimator
        self.method = method
        self.feature = feature
        self.constraint = constraint
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: Any) -> FairnessMitigated:
        """Fit with the mitigation; `X` holds the sensitive column (or its carrier column)."""
        groups, inputs = self._split(X)
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise ValueError(f"fairness mitigation needs two classes; got {len(self.classes_)}")
        positive = (y == self.classes_[1]).astype(np.int64)
        if self.method == "reweight":
            self.estimator_ = _fit_weighted(clone(self.estimator), inputs, y,
                                            reweighing(groups, positive))
        elif self.method == "oversample":
            rows = oversampled(groups, self.seed)
            self.estimator_ = clone(self.estimator).fit(inputs.iloc[rows], y[rows])
        elif self.method == "exponentiated_gradient":
            self._reduction(inputs, positive, groups)
        elif self.method == "threshold_optimizer":
            self._thresholds(inputs, positive, groups)
        else:
            raise ValueError(f"unknown fairness mitigation {self.method!r}")
        return self

    def _reduction(self, X: pd.DataFrame, y: Any, groups: Any) -> None:
        from fairlearn import reductions

        moments = {"demographic_parity": reductions.DemographicParity,
                   "equalized_odds": reductions.EqualizedOdds}
        estimator = clone(self.estimator)
        fitted = reductions.ExponentiatedGradient(
            estimator, moments[self.constraint](), sample_weight_name=_weight_name(estimator))
        with _quiet():
            fitted.fit(X, y, sensitive_features=groups)
        weights = fitted.weights_.to_numpy(dtype=float)
        kept = np.flatnonzero(weights > 0)
        self.predictors_ = [fitted.predictors_[i] for i in kept]
        self.weights_ = weights[kept]

    def _thresholds(self, X: pd.DataFrame, y: Any, groups: Any) -> None:
        from fairlearn import postprocessing

        optimizer = postprocessing.ThresholdOptimizer(
            estimator=clone(self.estimator), constraints=self.constraint,
            predict_method="predict_proba")
        with _quiet():
            optimizer.fit(X, y, sensitive_features=groups)
        self.estimator_ = optimizer.estimator_
        self.thresholds_ = {
            str(group): {key: _plain_operation(value) for key, value in bunch.items()}
            for group, bunch in optimizer.interpolated_thresholder_.interpolation_dict.items()}

    def positive_probability(self, X: pd.DataFrame) -> Any:
        """The probability of the favourable (larger) class, as fairlearn defines it."""
        groups, inputs = self._split(X, fitting=False)
        if self.method == "exponentiated_gradient":
            votes = np.stack([np.asarray(p.predict(inputs), dtype=float)
                              for p in self.predictors_], axis=1)
            return votes @ self.weights_
        scores = self.estimator_.predict_proba(inputs)[:, 1]
        if self.method != "threshold_optimizer":
            return scores
        out = scores.copy()  # a group unseen in training keeps the estimator's own score
        for group, rule in self.thresholds_.items():
            mine = groups == group
            value = (rule["p0"] * _apply(rule["operation0"], scores[mine])
                     + rule["p1"] * _apply(rule["operation1"], scores[mine]))
            if "p_ignore" in rule:
                value = (rule["p_ignore"] * rule["prediction_constant"]
                         + (1 - rule["p_ignore"]) * value)
            out[mine] = value
        return out

    def predict_proba(self, X: pd.DataFrame) -> Any:
        positive = np.asarray(self.positive_probability(X), dtype=float)
        return np.stack([1.0 - positive, positive], axis=1)

    def predict(self, X: pd.DataFrame) -> Any:
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]

    def _split(self, X: pd.DataFrame, fitting: bool = True) -> tuple[Any, pd.DataFrame]:
        """The rows' groups (as text) and the estimator's inputs (carrier columns dropped)."""
        carrier = sensitive_column(self.feature)
        inputs = X.drop(columns=[c for c in X.columns if str(c).startswith(PREFIX)])
        if carrier in X.columns:
            return X[carrier].astype(str).to_numpy(), inputs
        if self.feature in X.columns:
            return X[self.feature].astype(str).to_numpy(), inputs
        if fitting or self.method == "threshold_optimizer":
            raise ValueError(f"the sensitive column {self.feature!r} is missing")
        return None, inputs


def reweighing(groups: Any, positive: Any) -> Any:
    """Kamiran-Calders weights: P(group) P(label) / P(group, label) for each row.

    >>> reweighing(np.array(["a", "a", "a", "b"]), np.array([1, 1, 0, 0])).round(3).tolist()
    [0.75, 0.75, 1.5, 0.5]
    """
    frame = pd.DataFrame({"g": groups, "y": positive})
    n = len(frame)
    p_group = frame["g"].map(frame["g"].value_counts() / n)
    p_label = frame["y"].map(frame["y"].value_counts() / n)
    p_both = frame.groupby(["g", "y"])["y"].transform("size") / n
    return (p_group * p_label / p_both).to_numpy(dtype=float)


def oversampled(groups: Any, seed: int) -> Any:
    """Row indices: every row once, plus rows of each smaller group drawn again (with
    replacement) until every group has as many rows as the largest."""
    rng = np.random.default_rng(seed)
    values, counts = np.unique(groups, return_counts=True)
    rows = [np.arange(len(groups))]
    for value, count in zip(values, counts, strict=True):
        rows.append(rng.choice(np.flatnonzero(groups == value), counts.max() - count))
    return np.concatenate(rows)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence fairlearn's own deprecation warnings about the pandas it calls (not our use)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _weight_name(estimator: Any) -> str:
    """The `fit` keyword of row weights: a Pipeline's last step takes them."""
    if isinstance(estimator, Pipeline):
        return f"{estimator.steps[-1][0]}__sample_weight"
    return "sample_weight"


def _fit_weighted(estimator: Any, X: Any, y: Any, weights: Any) -> Any:
    return estimator.fit(X, y, **{_weight_name(estimator): weights})


def _plain_operation(value: Any) -> Any:
    """A fairlearn ThresholdOperation as (operator, threshold); numbers as floats."""
    if hasattr(value, "operator") and hasattr(value, "threshold"):
        return [str(value.operator), float(value.threshold)]
    return float(value)


def _apply(operation: list[Any], scores: Any) -> Any:
    operator, threshold = operation
    return (scores > threshold) if operator == ">" else (scores < threshold)
