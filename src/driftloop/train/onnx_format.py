"""scikit-learn models as ONNX (skl2onnx), their parity check, and scoring with onnxruntime.

`convert` turns a fitted model into ONNX bytes; `check_parity` scores the same rows with the
model and with the ONNX file through `OnnxModel` (exactly what the server scores with) and
says whether they agree: the same class on at least `MIN_SAME_CLASS` of the rows and every
probability within `MAX_PROBABILITY_DELTA` (a regressor: every prediction within that
tolerance, relative to the prediction's size when it is above 1). A model that cannot be
converted raises `errors.FormatError` with skl2onnx's reason.

The ONNX graph takes one float32 matrix ``X`` of the model's input columns in order, so only
models whose input columns are all numbers (or booleans) convert: float32 is the only input
type onnxruntime's tree ensembles load with (skl2onnx 1.20), and a text column would need a
graph input of its own. Probabilities come out as one tensor (``zipmap`` off), which costs
far less per call than a list of dictionaries.

Needs the ``onnx`` extra (skl2onnx, onnxruntime; protobuf < 7, with which skl2onnx 1.20
still builds the tree ensembles of HistGradientBoosting).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from driftloop.core import errors

if TYPE_CHECKING:
    import pandas as pd

MIN_SAME_CLASS = 0.999
MAX_PROBABILITY_DELTA = 1e-5


def convert(model: Any, frame: pd.DataFrame) -> bytes:
    """The ONNX bytes of the fitted `model`, whose input is the columns of `frame`; a
    `FormatError` naming the reason when the model or its input cannot be converted."""
    inputs = numeric_matrix(frame)
    try:
        from skl2onnx import to_onnx
    except ImportError as exc:
        raise errors.FormatError(
            "ONNX export needs skl2onnx and onnxruntime: pip install 'driftloop[onnx]'") from exc
    options = {id(model): {"zipmap": False}} if hasattr(model, "predict_proba") else None
    try:
        with warnings.catch_warnings():
            # skl2onnx 1.20 hands protobuf numpy booleans for integer attributes of tree
            # ensembles; protobuf 6 warns (and 7 refuses), so the warning is expected here
            warnings.filterwarnings(
                "ignore", message=".*Expected an int, got a boolean", category=DeprecationWarning)
            graph = to_onnx(model, inputs[:1], options=options)
    except Exception as exc:  # skl2onnx raises many types; each says what it cannot convert
        raise errors.FormatError(
            f"skl2onnx cannot convert {type(model).__name__}: {_first_line(exc)}",
            model=type(model).__name__) from exc
    data: bytes = graph.SerializeToString()
    return data


def numeric_matrix(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
    """`frame` as the float32 matrix the ONNX graph reads; `FormatError` naming the first
    column that is not a number."""
    import pandas as pd

    for name, dtype in frame.dtypes.items():
        if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
            raise errors.FormatError(
                f"ONNX export takes number columns only; column {name!r} holds {dtype} "
                "(encode it as numbers in the trainer, or serve this model with scikit-learn)",
                column=str(name))
    matrix: np.ndarray[Any, Any] = frame.to_numpy(dtype=np.float32, na_value=np.nan)
    return matrix


class OnnxModel:
    """An ONNX file scored with onnxruntime on one thread, answering like the scikit-learn
    model it was converted from: `predict`, `predict_proba` and (one run for both)
    `predict_and_proba`, which the server calls.

    `classes_` are the original model's classes (None for a regressor); predictions are the
    class of the largest probability, so they have the same values and types as scikit-learn's.
    `columns` name the input columns in the graph's order.
    """

    runtime = "onnx"

    def __init__(self, data: bytes, columns: list[str], classes_: Any = None) -> None:
        import onnxruntime

        self.columns = list(columns)
        self.classes_ = None if classes_ is None else np.asarray(classes_)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # single records: a thread team costs more than a row
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            data, sess_options=options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        outputs = [output.name for output in self._session.get_outputs()]
        # classifiers give (label, probabilities), regressors (variable,)
        self._output = [outputs[-1]] if self.classes_ is not None else [outputs[0]]
        self._matched: Any = None  # the last column Index found in the graph's order

    def __repr__(self) -> str:
        return f"OnnxModel(columns={self.columns!r})"

    def run(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        """The graph's output for `frame`: probabilities per class, or predictions."""
        if frame.columns is not self._matched:  # the server passes the same Index each time
            if list(frame.columns) != self.columns:  # (text Index: 14 us to compare)
                frame = frame[self.columns]
            else:
                self._matched = frame.columns
        return self.run_array(frame.to_numpy(dtype=np.float32, na_value=np.nan))

    def run_array(self, matrix: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """The graph's output for a matrix of the `columns` in order (cast to float32)."""
        found: np.ndarray[Any, Any] = self._session.run(
            self._output, {self._input: matrix.astype(np.float32, copy=False)})[0]
        return found

    def predict_and_proba(self, frame: pd.DataFrame) -> tuple[list[Any], Any, Any]:
        """(predictions, probabilities or None, classes) from one run of the graph."""
        return self._answers(self.run(frame))

    def predict_and_proba_array(self, matrix: np.ndarray[Any, Any]) -> tuple[list[Any], Any, Any]:
        """`predict_and_proba` for a matrix of the `columns` in order: the server's input when
        every feature is a float column, with no frame built."""
        return self._answers(self.run_array(matrix))

    def _answers(self, out: np.ndarray[Any, Any]) -> tuple[list[Any], Any, Any]:
        if self.classes_ is None:
            return np.asarray(out).reshape(-1).tolist(), None, None
        proba = np.asarray(out, dtype=np.float64)
        return self.classes_[proba.argmax(axis=1)].tolist(), proba, self.classes_

    def predict(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        return np.asarray(self.predict_and_proba(frame)[0])

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        if self.classes_ is None:
            raise AttributeError("a regressor has no predict_proba")
        return np.asarray(self.run(frame), dtype=np.float64)


def check_parity(model: Any, onnx: OnnxModel, frame: pd.DataFrame) -> dict[str, Any]:
    """How `onnx` agrees with `model` on the rows of `frame`: a report with ``passed``, the
    ``rows`` compared, ``same_class`` (share of rows with the same predicted class) and
    ``max_probability_delta`` (classifiers) or ``max_relative_delta`` (regressors), the limits,
    and the ``reason`` when it failed."""
    expected = np.asarray(model.predict(frame))
    predicted, proba, _classes = onnx.predict_and_proba(frame)
    report: dict[str, Any] = {"rows": len(frame), "min_same_class": MIN_SAME_CLASS,
                              "max_delta": MAX_PROBABILITY_DELTA}
    if proba is None:
        got = np.asarray(predicted, dtype=np.float64)
        delta = np.abs(got - expected) / np.maximum(1.0, np.abs(expected))
        worst = float(delta.max()) if len(delta) else 0.0
        report["max_relative_delta"] = worst
        passed = worst <= MAX_PROBABILITY_DELTA
        why = f"a prediction differs by {worst:.3g} (relative; limit {MAX_PROBABILITY_DELTA:g})"
    else:
        same = float(np.mean(np.asarray(predicted) == expected)) if len(frame) else 1.0
        worst = float(np.abs(proba - model.predict_proba(frame)).max()) if len(frame) else 0.0
        report.update(same_class=same, max_probability_delta=worst)
        passed = same >= MIN_SAME_CLASS and worst <= MAX_PROBABILITY_DELTA
        why = (f"the same class on {same:.4%} of rows (at least {MIN_SAME_CLASS:.1%} needed) "
               if same < MIN_SAME_CLASS else
               f"a probability differs by {worst:.3g} (limit {MAX_PROBABILITY_DELTA:g})")
    report["passed"] = bool(passed and len(frame) > 0)
    if not len(frame):
        report["reason"] = "no stored rows to compare on"
    elif not passed:
        report["reason"] = why
    return report


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
