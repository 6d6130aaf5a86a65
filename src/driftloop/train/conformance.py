"""Does a trainer meet the contract? `check_trainer(fn)` tries it the way a training would.

Like river's `check_estimator`: one suite every trainer passes before a pipeline relies on it.
It takes the function itself (or its ``module:function`` name) and, on a small generated data
set of the task (numeric feature columns in a DataFrame, as the controller hands them over):

1. calls it in its form (`train.trainer`): ``make_model(**params)`` must give an unfitted
   estimator with `fit`, ``fit(X, y, **params)`` a fitted one;
2. fits it (the first form) and predicts: one prediction per row, from the classes it saw;
3. for classification, `predict_proba`: one row per input, one column per class, rows summing
   to 1 (the gate, the calibrated estimate and the canary read probabilities);
4. stores it and loads it back as a pipeline would (skops, with its trainer's module trusted,
   and LightGBM's types for `train.boosting`) and checks the loaded model predicts the same.

Each failure is one line in the answer; an empty list means the trainer meets the contract.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from driftloop.core import errors
from driftloop.store import artifacts
from driftloop.train import boosting, trainer

Task = Literal["classification", "regression"]


def check_trainer(
    fn: Callable[..., Any] | str,
    params: Mapping[str, Any] | None = None,
    *,
    task: Task = "classification",
    rows: int = 200,
) -> list[str]:
    """What keeps `fn` from working as a pipeline's trainer; empty when nothing does.

    Parameters
    ----------
    fn
        The trainer: ``make_model(**params) -> unfitted estimator`` or ``fit(X, y, **params) ->
        fitted estimator``, or its ``module:function`` name (imported with the current folder
        first on the path, like ``trainer.function`` of a spec).
    params
        The ``trainer.params`` it is called with.
    task
        ``"classification"`` (two classes) or ``"regression"``.
    rows
        Rows of the generated data set.

    Returns
    -------
    list of str
        One line per problem found.

    Examples
    --------
    >>> import driftloop
    >>> driftloop.check_trainer("sklearn.linear_model:LogisticRegression", {"C": 0.5})
    []
    >>> driftloop.check_trainer(lambda: "not a model")
    ['make_model returned str, which has no `fit`: return an unfitted scikit-learn estimator']
    >>> driftloop.check_trainer("sklearn.svm:LinearSVC")
    ['LinearSVC has no `predict_proba`: a classifier must give probabilities']
    >>> driftloop.check_trainer("sklearn.linear_model:Ridge", task="regression")
    []
    """
    function = trainer.load_trainer(fn, Path(".")) if isinstance(fn, str) else fn
    name = getattr(function, "__name__", repr(function))
    name = "make_model" if name == "<lambda>" else name
    X, y = _data(task, rows)
    try:
        model = _fitted(function, name, dict(params or {}), X, y)
    except _Problem as problem:
        return [str(problem)]
    problems = _predictions(model, name, X, y, task)
    if not problems:
        problems += _round_trip(model, X, fn if isinstance(fn, str) else None, function)
    return problems


class _Problem(Exception):
    """A check that leaves nothing to check after it."""


def _data(task: Task, rows: int) -> tuple[pd.DataFrame, pd.Series[Any]]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.uniform(size=rows)})
    signal = X["a"] + 2 * X["b"] + rng.normal(scale=0.3, size=rows)
    if task == "classification":
        return X, pd.Series((signal > signal.median()).astype(int), name="y")
    return X, pd.Series(signal, name="y")


def _fitted(function: Callable[..., Any], name: str, params: dict[str, Any],
            X: pd.DataFrame, y: pd.Series[Any]) -> Any:
    itself = trainer.fits_itself(function)
    arguments = {"X": X, "y": y, **params} if itself else params
    try:
        inspect.signature(function).bind(**arguments)
    except TypeError as exc:
        raise _Problem(f"{name} cannot be called with {sorted(arguments)}: {exc}") from exc
    except ValueError:
        pass  # a builtin without a signature: the call tells
    try:
        model = function(**arguments)
    except Exception as exc:
        raise _Problem(f"{name} raised {type(exc).__name__}: {exc}") from exc
    if itself:
        if not callable(getattr(model, "predict", None)):
            raise _Problem(f"{name} returned {type(model).__name__}, which has no `predict`: a "
                           "trainer taking X and y returns a fitted estimator")
        return model
    if not callable(getattr(model, "fit", None)):
        raise _Problem(f"{name} returned {type(model).__name__}, which has no `fit`: return an "
                       "unfitted scikit-learn estimator")
    try:
        fitted = model.fit(X, y)
    except Exception as exc:
        raise _Problem(
            f"fitting {type(model).__name__} raised {type(exc).__name__}: {exc}") from exc
    return model if fitted is None else fitted


def _predictions(model: Any, name: str, X: pd.DataFrame, y: pd.Series[Any],
                 task: Task) -> list[str]:
    kind = type(model).__name__
    try:
        predicted = np.asarray(model.predict(X))
    except Exception as exc:
        return [f"{kind}.predict raised {type(exc).__name__}: {exc}"]
    if predicted.shape[:1] != (len(X),):
        return [f"{kind}.predict gave shape {predicted.shape} for {len(X)} rows"]
    if task == "regression":
        return []
    problems = []
    unseen = sorted(set(predicted.tolist()) - set(y.tolist()))
    if unseen:
        problems.append(f"{kind}.predict gave {len(unseen)} values that are not classes of y, "
                        f"e.g. {unseen[:3]}")
    if not callable(getattr(model, "predict_proba", None)):
        return [*problems, f"{kind} has no `predict_proba`: a classifier must give probabilities"]
    try:
        proba = np.asarray(model.predict_proba(X), dtype=float)
    except Exception as exc:
        return [*problems, f"{kind}.predict_proba raised {type(exc).__name__}: {exc}"]
    classes = y.nunique()
    if proba.shape != (len(X), classes):
        problems.append(f"{kind}.predict_proba gave shape {proba.shape}; expected "
                        f"({len(X)}, {classes}): a row per input, a column per class")
    elif not np.allclose(proba.sum(axis=1), 1.0, atol=1e-6):
        problems.append(f"{kind}.predict_proba rows do not sum to 1")
    return problems


def _round_trip(model: Any, X: pd.DataFrame, spelled: str | None,
                function: Callable[..., Any]) -> list[str]:
    module = (spelled.partition(":")[0] if spelled is not None
              else getattr(function, "__module__", None))
    modules = [module] if module else []
    store = artifacts.ArtifactStore(
        f"memory://driftloop-check-trainer-{uuid.uuid4().hex}",
        trusted_modules=modules + boosting.trusted_for(modules))
    kind = type(model).__name__
    try:
        stored = store.put_model(model)
        loaded = store.get_model(stored.uri, stored.sha256)
    except errors.IntegrityError as exc:
        return [f"{kind} cannot be loaded back from its model file: {exc}; list the modules of "
                "its types in trainer.trusted_modules"]
    except Exception as exc:
        return [f"{kind} cannot be stored in the skops format: {type(exc).__name__}: {exc}"]
    finally:
        if store.fs.exists(store.root):
            store.fs.rm(store.root, recursive=True)
    if not np.array_equal(np.asarray(loaded.predict(X)), np.asarray(model.predict(X))):
        return [f"{kind} predicts differently after it was stored and loaded back"]
    return []

