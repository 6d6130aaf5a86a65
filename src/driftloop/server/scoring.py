"""Check request records against the pipeline's schema and run a live model on them.

`POST /v1/predict` calls `InputSchema.check` (every problem of every record, each naming the
record index and the field: missing, null where the data never had nulls, wrong type,
non-finite number, unknown category) and then `score`, which builds the frame exactly as
training saw it (`validation.schema.coerce`, feature columns in schema order, then the
calendar features derived by `data.calendar.model_input`, as in training) and returns one
`Scored` per record. Extra fields in a record are ignored.

    >>> from driftloop.validation import schema as schemas
    >>> import pandas as pd
    >>> inferred = schemas.infer_schema(pd.DataFrame({"x": [0.5, 1.5], "y": [0, 1]}), target="y")
    >>> inputs = InputSchema(inferred, ["x"])
    >>> try:
    ...     inputs.check([{"x": 1.0}, {"x": "high"}, {}])
    ... except errors.ValidationError as exc:
    ...     for problem in exc.context["problems"]:
    ...         print(problem)
    {'record': 1, 'field': 'x', 'msg': 'expected a number, got text'}
    {'record': 2, 'field': 'x', 'msg': 'missing'}
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from driftloop.core import errors, types
from driftloop.server import live_models
from driftloop.train import onnx_format
from driftloop.validation import schema as schemas

MAX_PROBLEMS = 50


@dataclass(frozen=True)
class Scored:
    """One record's answer: the prediction and (for probabilistic models) class → p."""

    prediction: Any
    probabilities: dict[str, float] | None


class InputSchema:
    """The feature columns a model reads, with what the schema allows in each."""

    def __init__(
        self, schema: schemas.Schema, features: list[str], allow_new_categories: bool = False,
        derive: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    ) -> None:
        self.schema = schema
        self.features = features
        self.allow_new_categories = allow_new_categories
        self.derive = derive  # the model's input from the checked columns (`data.calendar`)
        self._columns = [schema.column(name) for name in features]
        # every feature a float64 column: the single-record fast path (`frame`, `score`)
        self.plain_numbers = derive is None and all(
            c.kind == "numeric" and c.dtype == "float64" for c in self._columns)
        self.index = pd.Index(features)  # built once: a text Index costs more than a row

    def check(self, records: list[Any]) -> list[types.JSON]:
        """The records cut to the feature columns, as plain JSON values; `ValidationError`
        (422) naming every offending record and field otherwise."""
        problems: list[types.JSON] = []
        clean: list[types.JSON] = []
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                problems.append({"record": index, "field": None,
                                 "msg": f"a record must be an object, got {_kind(record)}"})
                continue
            row: types.JSON = {}
            for column in self._columns:
                if column.name not in record:
                    problems.append({"record": index, "field": column.name, "msg": "missing"})
                    continue
                value, problem = self.value(column, record[column.name])
                if problem is not None:
                    problems.append({"record": index, "field": column.name, "msg": problem})
                row[column.name] = value
            clean.append(row)
            if len(problems) >= MAX_PROBLEMS:
                break
        if problems:
            said = "; ".join(
                f"record {p['record']}: " + (f"field {p['field']!r}: " if p["field"] else "")
                + p["msg"] for p in problems[:5])
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            reasons: dict[str, list[str]] = {}
            for p in problems:
                said_here = f"record {p['record']}: {p['msg']}"
                reasons.setdefault(p["field"] or "*", []).append(said_here)
            raise errors.ValidationError(
                f"{len(problems)} problem(s) in the records: {said}{more}", reasons=reasons,
                problems=problems)
        return clean

    def value(self, column: schemas.ColumnSchema, value: Any) -> tuple[Any, str | None]:
        """`value` as stored for `column` and None, or None and what is wrong with it."""
        if value is None:
            if column.missing_rate > 0:
                return None, None
            return None, "null, but this column had no missing values in the training data"
        if column.kind == "numeric":
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None, f"expected a number, got {_kind(value)}"
            try:
                number = float(value)
            except OverflowError:
                return None, "number too large"
            if not math.isfinite(number):
                return None, "not a finite number"
            return value, None
        if column.kind == "boolean":
            if not isinstance(value, bool):
                return None, f"expected true or false, got {_kind(value)}"
            return value, None
        if column.kind == "datetime":
            if not isinstance(value, str):
                return None, f"expected an ISO 8601 time string, got {_kind(value)}"
            try:
                datetime.fromisoformat(value)
            except ValueError:
                return None, f"{value[:40]!r} is not an ISO 8601 time"
            return value, None
        if isinstance(value, bool) or not isinstance(value, str | int):
            return None, f"expected a text category, got {_kind(value)}"
        text = str(value)
        known = column.categories
        if known is not None and not self.allow_new_categories and text not in known:
            return None, f"unknown category {text[:40]!r}; known: {', '.join(known[:10])}"
        return text, None

    def frame(self, rows: list[types.JSON]) -> pd.DataFrame:
        """Checked rows as the model's input frame (schema dtypes, feature order)."""
        if self.plain_numbers:
            # Every feature is a float64 column: one float matrix (null -> NaN) is what
            # `coerce` gives, at a fraction of its cost (the single-record hot path).
            return pd.DataFrame(self.matrix(rows), columns=self.index, copy=False)
        raw = pd.DataFrame(rows, columns=self.features)
        checked = schemas.coerce(raw, self.schema)[self.features]
        return checked if self.derive is None else self.derive(checked)

    def matrix(self, rows: list[types.JSON]) -> np.ndarray[Any, Any]:
        """Checked rows as a float64 matrix in feature order (null -> NaN); for schemas whose
        features are all float64 columns (`plain_numbers`)."""
        names = self.features
        matrix = np.array([[row[name] for name in names] for row in rows], dtype=np.float64)
        return matrix.reshape(len(rows), len(names))


class ModelInput:
    """Checked rows as a model reads them: with `InputSchema.plain_numbers` a float64
    `matrix` in feature order, which an ONNX graph or a plain estimator fit on these columns
    reads as it is (`score_input`); the frame is built only when a model needs it, then kept.

        >>> from driftloop.validation import schema as schemas
        >>> import pandas as pd
        >>> inputs = InputSchema(schemas.infer_schema(
        ...     pd.DataFrame({"x": [0.5, 1.5], "y": [0, 1]}), target="y"), ["x"])
        >>> data = ModelInput.of(inputs, inputs.check([{"x": 1.0}, {"x": 2.0}]))
        >>> data.matrix.tolist(), data.take([1]).frame["x"].tolist()
        ([[1.0], [2.0]], [2.0])
    """

    def __init__(
        self, inputs: InputSchema, rows: list[types.JSON],
        matrix: np.ndarray[Any, Any] | None = None,
    ) -> None:
        self.inputs = inputs
        self.rows = rows
        self.matrix = matrix
        self._frame: pd.DataFrame | None = None

    @classmethod
    def of(cls, inputs: InputSchema, rows: list[types.JSON]) -> ModelInput:
        """`rows` (checked by `inputs.check`), with their matrix where the schema allows one."""
        return cls(inputs, rows, inputs.matrix(rows) if inputs.plain_numbers else None)

    @property
    def frame(self) -> pd.DataFrame:
        """The model's input frame (`InputSchema.frame`), built on first use."""
        if self._frame is None:
            self._frame = (self.inputs.frame(self.rows) if self.matrix is None else
                           pd.DataFrame(self.matrix, columns=self.inputs.index, copy=False))
        return self._frame

    def take(self, indices: list[int]) -> ModelInput:
        """The rows at `indices`, in that order; without a matrix, their part of the whole
        frame (`coerce` gives a whole request's columns one dtype and one category list)."""
        part = ModelInput(self.inputs, [self.rows[i] for i in indices],
                          None if self.matrix is None else self.matrix[indices])
        if self.matrix is None:
            part._frame = self.frame.iloc[indices].reset_index(drop=True)
        return part


def score_input(live: live_models.LiveModel, data: ModelInput) -> list[Scored]:
    """`score` for checked rows: an ONNX graph whose input is the feature columns in order
    (`train.onnx_format.OnnxModel`) or a plain estimator fit on them
    (`LiveModel.array_features`) reads the float matrix itself, with no frame built; any
    other model reads the frame."""
    model, matrix = live.model, data.matrix
    if matrix is not None:
        features = data.inputs.features
        if isinstance(model, onnx_format.OnnxModel) and model.columns == features:
            return _scored(*model.predict_and_proba_array(matrix))
        if not callable(getattr(model, "predict_and_proba", None)) and (
                live.array_features == features):
            return _estimated(live, matrix)
    return score(live, data.frame, floats=matrix is not None)


def score(
    live: live_models.LiveModel, frame: pd.DataFrame, *, floats: bool = False,
) -> list[Scored]:
    """Predictions (and class probabilities when the model has `predict_proba`) per row. An
    online learner answers both from one state (`predict_and_proba`) while it learns.
    `floats`: every column of `frame` is float64 (`InputSchema.plain_numbers`), so a plain
    estimator fit on these columns in this order reads them as an array
    (`LiveModel.array_features`)."""
    if callable(getattr(live.model, "predict_and_proba", None)):
        return _scored(*live.model.predict_and_proba(frame))
    data: Any = frame
    if floats and live.array_features == list(frame.columns):
        data = frame.to_numpy()
    return _estimated(live, data)


def _scored(values: list[Any], probabilities: Any, known: Any) -> list[Scored]:
    """`Scored` answers from a model that gives (predictions, probabilities or None, classes)
    from one call (an online learner, an ONNX graph)."""
    if probabilities is None:
        return [Scored(value, None) for value in values]
    names = [str(c) for c in known]
    return [
        Scored(value, dict(zip(names, row, strict=True)))
        for value, row in zip(values, probabilities.tolist(), strict=True)
    ]


def _estimated(live: live_models.LiveModel, data: Any) -> list[Scored]:
    """`Scored` answers of a scikit-learn estimator for `data` (a frame or a float matrix)."""
    classes = live.classes
    if classes is None:
        return [Scored(value, None) for value in np.asarray(live.model.predict(data)).tolist()]
    proba = np.asarray(live.model.predict_proba(data), dtype=float)
    if live.argmax_classes is not None:
        predicted = _argmax_predict(live.model, data, proba, live.argmax_classes)
    else:
        predicted = np.asarray(live.model.predict(data)).tolist()
    keys = [str(c) for c in classes]
    return [
        Scored(value, dict(zip(keys, row, strict=True)))
        for value, row in zip(predicted, proba.tolist(), strict=True)
    ]


def _argmax_predict(model: Any, data: Any, proba: np.ndarray[Any, Any], classes: Any) -> list[Any]:
    """`model.predict(data)` for a model of `live_models.ARGMAX_CLASSIFIERS`, from its
    probabilities: the class of each row's unique largest probability; rows with a tied maximum
    (where the model may break the tie on its raw scores) are asked of `model.predict`
    itself."""
    best = proba.argmax(axis=1)
    predicted = np.asarray(classes)[best]
    tied = (proba == proba[np.arange(len(proba)), best][:, None]).sum(axis=1) > 1
    if tied.any():
        rows = np.flatnonzero(tied)
        subset = data.iloc[rows] if isinstance(data, pd.DataFrame) else data[rows]
        predicted[rows] = model.predict(subset)
    found: list[Any] = predicted.tolist()
    return found


def prepare_scoring_thread() -> None:
    """Set up the calling thread to score small requests.

    One OpenMP thread: a server answers small requests, one worker per core, and OpenMP teams
    (HistGradientBoosting, LightGBM) cost more to start and join than a single row takes; on a
    busy machine a team waits for a free core, which made single-record p99 latency tens to
    hundreds of milliseconds instead of a few.

    scikit-learn's ``assume_finite``: `InputSchema.check` has already refused infinities, and NaN
    only passes for columns that had missing values in the training data (so the model was fit
    on them); skipping the second scan halves a single-record predict (measured with
    HistGradientBoosting: 4.3 -> 2.2 ms).

    Arrays for plain estimators (`score`): the warning that the array has no column names is
    silenced, since `LiveModel.array_features` matched the names first."""
    import sklearn
    import threadpoolctl

    threadpoolctl.threadpool_limits(limits=1, user_api="openmp")
    sklearn.set_config(assume_finite=True)  # scikit-learn's configuration is per thread
    warnings.filterwarnings(
        "ignore", message="X does not have valid feature names", category=UserWarning)


def _kind(value: Any) -> str:
    names = {dict: "object", list: "array", str: "text", bool: "boolean"}
    return names.get(type(value), type(value).__name__)
