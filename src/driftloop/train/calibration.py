"""Confidence-based performance estimation (CBPE, as NannyML does it): a classifier's accuracy on
rows whose labels have not arrived yet, from its calibrated confidences.

At training time a `Calibrator` is fit on held-out labelled rows: the model's confidence in its
own answer (the largest class probability) against whether that answer was right. It is
top-label calibration, the same for binary and multi-class models: isotonic regression
(scikit-learn's `IsotonicRegression`, the default) or a sigmoid on the logit of the confidence
(Platt scaling with scikit-learn's `LogisticRegression`). The expected accuracy of a batch is
then the mean calibrated confidence over its rows (`estimate_accuracy`); under covariate shift
toward the decision boundary the confidences fall and so does the estimate. Regression models
and classifiers without `predict_proba` get no calibrator, hence no estimate.

A calibrator is a few numbers (isotonic breakpoints, or the sigmoid's slope and intercept) kept
as JSON next to the model in the artifact store, sha256-checked like a model; loading one never
unpickles anything.

>>> import numpy as np
>>> confidence = np.array([0.55, 0.6, 0.7, 0.8, 0.9, 0.95])
>>> correct = np.array([0, 1, 0, 1, 1, 1])
>>> calibrator = Calibrator.fit(confidence, correct)
>>> calibrator.apply(np.array([0.5, 0.75, 0.99])).round(2).tolist()
[0.0, 0.75, 1.0]
>>> Calibrator.from_json(calibrator.to_json()) == calibrator
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from driftloop.core import errors
from driftloop.core.types import JSON

Method = Literal["isotonic", "sigmoid"]
MIN_ROWS = 20
"""Fewer held-out rows than this calibrate nothing (the estimate would be noise)."""

_EPS = 1e-6


@dataclass(frozen=True)
class Calibrator:
    """Maps a model's top-class confidence to the probability that its answer is right.

    `x`, `y`: isotonic breakpoints (confidence → accuracy, interpolated linearly, clipped at
    the ends, as `IsotonicRegression(out_of_bounds="clip")` predicts); for `sigmoid`,
    `x` = (slope, intercept) on the logit of the confidence and `y` is empty. `rows`: how many
    held-out rows it was fit on.
    """

    method: Method
    x: tuple[float, ...]
    y: tuple[float, ...]
    rows: int

    @classmethod
    def fit(
        cls, confidence: npt.ArrayLike, correct: npt.ArrayLike, method: Method = "isotonic"
    ) -> Calibrator:
        """Fit on held-out rows: each row's top-class confidence and whether it was right."""
        conf = np.asarray(confidence, dtype=float)
        hit = np.asarray(correct, dtype=float)
        if method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(conf, hit)
            x, y = iso.X_thresholds_, iso.y_thresholds_
            return cls(method, tuple(map(float, x)), tuple(map(float, y)), len(conf))
        if method == "sigmoid":
            if len(np.unique(hit)) < 2:  # all right (or all wrong): a constant
                rate = float(hit.mean())
                return cls("isotonic", (0.0,), (rate,), len(conf))
            from sklearn.linear_model import LogisticRegression

            logistic = LogisticRegression(C=1e6).fit(_logit(conf)[:, None], hit.astype(int))
            slope, intercept = float(logistic.coef_[0, 0]), float(logistic.intercept_[0])
            return cls(method, (slope, intercept), (), len(conf))
        raise errors.ConfigError(
            f"`method` of the calibration must be 'isotonic' or 'sigmoid'; got {method!r}."
        )

    def apply(self, confidence: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """The calibrated confidence (probability of a right answer) of each row."""
        conf = np.asarray(confidence, dtype=float)
        if self.method == "sigmoid":
            slope, intercept = self.x
            result: npt.NDArray[np.float64] = 1.0 / (
                1.0 + np.exp(-(slope * _logit(conf) + intercept)))
            return result
        interpolated: npt.NDArray[np.float64] = np.interp(conf, self.x, self.y)
        return interpolated

    def to_json(self) -> JSON:
        return {"method": self.method, "x": list(self.x), "y": list(self.y), "rows": self.rows}

    @classmethod
    def from_json(cls, data: JSON) -> Calibrator:
        method = data.get("method")
        if method not in ("isotonic", "sigmoid"):
            raise errors.IntegrityError(f"a stored calibrator has an unknown method {method!r}")
        return cls(method, tuple(map(float, data["x"])), tuple(map(float, data["y"])),
                   int(data.get("rows", 0)))


def confidences(model: Any, features: pd.DataFrame) -> npt.NDArray[np.float64] | None:
    """Each row's largest class probability; None for a model without `predict_proba`."""
    if not callable(getattr(model, "predict_proba", None)) or not len(features):
        return None
    proba = np.asarray(model.predict_proba(features), dtype=float)
    if proba.ndim != 2:
        return None
    top: npt.NDArray[np.float64] = proba.max(axis=1)
    return top


def fit_calibrator(
    model: Any, features: pd.DataFrame, labels: pd.Series, method: Method = "isotonic"
) -> Calibrator | None:
    """A calibrator for `model` from held-out labelled rows it never trained on; None when the
    model gives no probabilities or there are fewer than `MIN_ROWS` rows."""
    if len(features) < MIN_ROWS:
        return None
    conf = confidences(model, features)
    if conf is None:
        return None
    correct = np.asarray(model.predict(features)) == np.asarray(labels)
    return Calibrator.fit(conf, correct, method)


def estimate_accuracy(
    model: Any, calibrator: Calibrator, features: pd.DataFrame
) -> float | None:
    """The expected accuracy of `model` on `features`: the mean calibrated top-class
    confidence. Labels are never looked at."""
    conf = confidences(model, features)
    if conf is None:
        return None
    return float(calibrator.apply(conf).mean())


def _logit(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    clipped = np.clip(p, _EPS, 1 - _EPS)
    result: npt.NDArray[np.float64] = np.log(clipped / (1 - clipped))
    return result
