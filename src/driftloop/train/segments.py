"""Per-segment models (`trainer.segment_by`): one model per value of a column, plus a fallback
on all rows for values no segment model was trained on.

`executor.Executor.train` calls `split` when the spec names a segment column, trains every
part (the Ray executor trains them in parallel, one task each) and wraps the fitted models in
a `SegmentedModel`, which the gate, the artifact store (skops) and the server use like any
scikit-learn estimator: it routes each row to its segment's model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from driftloop.core import errors


def split(X: Any, y: Any, column: str) -> dict[str, tuple[Any, Any]]:
    """The rows of each value of `column`, keyed by the value as text.

    >>> X = pd.DataFrame({"region": ["n", "s", "n"], "x": [1, 2, 3]})
    >>> {k: len(v[0]) for k, v in split(X, pd.Series([0, 1, 0]), "region").items()}
    {'n': 2, 's': 1}
    """
    if not isinstance(X, pd.DataFrame) or column not in X.columns:
        columns = ", ".join(map(str, getattr(X, "columns", []))) or "none (not a data frame)"
        raise errors.ConfigError(
            f"trainer.segment_by: {column!r} is not a feature column; the features are "
            f"{columns}")
    keys = keys_of(X[column])
    parts: dict[str, tuple[Any, Any]] = {}
    for value in sorted(set(keys)):
        rows = keys == value
        parts[value] = (X[rows], y[rows] if isinstance(y, pd.Series) else np.asarray(y)[rows])
    return parts


def keys_of(values: pd.Series) -> Any:
    """Segment keys as text; whole numbers without a decimal point, so a region 3 sent as 3.0
    in a JSON request finds the model trained on 3.

    >>> keys_of(pd.Series([3, 3.0, 2.5, "north"], dtype=object)).tolist()
    ['3', '3', '2.5', 'north']
    """
    def key(value: Any) -> str:
        if isinstance(value, (int, float, np.integer, np.floating)) and float(value).is_integer():
            return str(int(value))
        return str(value)

    return np.asarray([key(v) for v in values.to_numpy()], dtype=object)


class SegmentedModel:
    """Routes each row to the model of its `column` value in `models`, or to `fallback` for
    values no segment model was trained on. Probabilities are put on the union of classes.

    >>> from sklearn.dummy import DummyClassifier
    >>> X = pd.DataFrame({"region": ["n", "s", "n", "s", "s"], "x": [1, 2, 3, 4, 5]})
    >>> y = pd.Series([0, 1, 0, 1, 1])
    >>> models = {k: DummyClassifier().fit(a, b) for k, (a, b) in split(X, y, "region").items()}
    >>> model = SegmentedModel("region", models, DummyClassifier().fit(X, y))
    >>> model.predict(pd.DataFrame({"region": ["n", "w"], "x": [0, 0]}))
    array([0, 1])
    """

    def __init__(self, column: str, models: dict[str, Any], fallback: Any) -> None:
        self.column = column
        self.models = models
        self.fallback = fallback
        classes = [getattr(m, "classes_", None) for m in [*models.values(), fallback]]
        self.classes_ = (np.unique(np.concatenate([np.asarray(c) for c in classes]))
                         if all(c is not None for c in classes) else None)

    def __repr__(self) -> str:
        return f"SegmentedModel({self.column!r}, segments={sorted(self.models)})"

    def fit(self, X: Any, y: Any) -> SegmentedModel:
        raise errors.TrainingError(
            "a SegmentedModel is built from fitted segment models; train it through an executor")

    def predict(self, X: Any) -> Any:
        return self._route(X, lambda model, rows: np.asarray(model.predict(rows)))

    def predict_proba(self, X: Any) -> Any:
        if self.classes_ is None:
            raise errors.ConfigError("the segment models are not classifiers: no predict_proba")
        return self._route(X, self._proba)

    def _proba(self, model: Any, rows: Any) -> Any:
        """`model`'s probabilities with a zero column for each class it never saw."""
        assert self.classes_ is not None
        own = np.asarray(model.predict_proba(rows), dtype=float)
        full = np.zeros((len(rows), len(self.classes_)))
        full[:, np.searchsorted(self.classes_, model.classes_)] = own
        return full

    def _route(self, X: Any, run: Any) -> Any:
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
        keys = keys_of(frame[self.column])
        out: Any = None
        for value in dict.fromkeys(keys):
            rows = keys == value
            model = self.models.get(value, self.fallback)
            part = run(model, frame[rows])
            if out is None:
                out = np.empty((len(frame), *part.shape[1:]), dtype=part.dtype)
            elif out.dtype != part.dtype:
                out = out.astype(np.result_type(out.dtype, part.dtype))
            out[rows] = part
        return out if out is not None else run(self.fallback, frame)
