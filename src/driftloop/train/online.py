"""Online learners: a river model or a scikit-learn estimator with `partial_fit`, behind one
thread-safe wrapper that predicts and learns record by record (or in mini-batches).

`controller.online_session.OnlineSession` owns the live `OnlineModel` (in the controller, the
server and the backtest); the server's predict path calls `predict_and_proba` on it while
feedback labels update it. Every read and every update takes the model's lock, so a prediction
sees the model before or after an update, never half of one; one update is one event (river) or
one mini-batch (`partial_fit`). A prediction and its probabilities come from the same state.

Records are dicts of feature -> value (what river takes; a stream source hands over the same).
Frames are turned into such dicts with `records_of`, so a frame and its records give the same
predictions.

    >>> from river import naive_bayes
    >>> model = OnlineModel(naive_bayes.GaussianNB(), ["x"])
    >>> model.learn_many([{"x": i / 10} for i in range(10)], [int(i >= 5) for i in range(10)])
    >>> model.predict_many([{"x": 0.1}, {"x": 0.9}]), model.n_learned_, model.classes_
    ([0, 1], 10, [0, 1])
"""

from __future__ import annotations

import copy
import pickle
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftloop.core import errors
from driftloop.core.online_spec import OnlineSpec
from driftloop.train import trainer

Record = dict[str, Any]


def records_of(frame: pd.DataFrame, features: Sequence[str]) -> list[Record]:
    """The rows of `frame` as feature dicts with plain Python values (river's input); what
    ``frame[features].to_dict("records")`` gives, several times faster on small frames."""
    names = list(features)
    columns = [frame[name].tolist() for name in names]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


_RENAMED = {"learner": "learner", "river": "_river", "fitted": "_fitted", "pending": "pending"}
"""Attributes stored with a trailing underscore before that was kept for fitted ones: name
without it -> name now."""


class OnlineModel:
    """A learner that learns from every labelled event, with a lock around every access.

    `learner` is the river model (has `learn_one`) or the scikit-learn estimator (has
    `partial_fit`; learns when `batch_size` events are pending). `classes` are the classes a
    `partial_fit` classifier must know from its first call (default: those of that call).
    Pickled / copied without its lock (a fresh one is made on load).
    """

    def __init__(
        self,
        learner: Any,
        features: Sequence[str],
        *,
        batch_size: int = 1,
        classes: Sequence[Any] | None = None,
    ) -> None:
        self.features = list(features)
        self.batch_size = batch_size
        self.classes = None if classes is None else list(classes)
        self.learner = learner
        self._river = callable(getattr(learner, "learn_one", None))
        if not self._river and not callable(getattr(learner, "partial_fit", None)):
            raise errors.ConfigError(
                f"online.learner gave {type(learner).__name__}, which has neither `learn_one` "
                "(river) nor `partial_fit` (scikit-learn); return an online learner"
            )
        self.classes_: list[Any] = sorted(self.classes) if self.classes else []
        self.n_learned_ = 0
        self._fitted = False
        self.pending: list[tuple[Record, Any]] = []
        self._lock = threading.RLock()

    # -- copies and files ---------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, now in _RENAMED.items():  # a file stored before the rename
            if name + "_" in state:
                state[now] = state.pop(name + "_")
        self.__dict__.update(state)
        self._lock = threading.RLock()

    @property
    def lock(self) -> threading.RLock:
        """The lock every access takes: hold it to read the model as it is now."""
        return self._lock

    def __repr__(self) -> str:
        return f"OnlineModel({self.learner!r}, n_learned_={self.n_learned_})"

    def snapshot(self) -> OnlineModel:
        """A deep copy of the model as it is now (taken under the lock: never half-updated).
        River models are copied through pickle, several times faster than `copy.deepcopy` on
        their trees (the bytes never leave this process)."""
        with self._lock:
            if self._river:
                copied: OnlineModel = pickle.loads(pickle.dumps(self, protocol=5))
                return copied
            return copy.deepcopy(self)

    @property
    def artifact_format(self) -> str:
        """How the artifact store keeps it: ``skops`` for scikit-learn, ``pickle`` for river
        (skops cannot represent river's compiled detectors; see `store.artifacts`)."""
        return "pickle" if self._river else "skops"

    # -- predicting ---------------------------------------------------------------------------

    def predict_many(self, records: Sequence[Record]) -> list[Any]:
        """One prediction per record (None before anything was learned)."""
        with self._lock:
            return self._predict(records)

    def predict_one(self, record: Record) -> Any:
        with self._lock:
            if self._river:
                return self.learner.predict_one(record)
            return self._predict([record])[0]

    def predict(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        """scikit-learn style: predictions for the rows of `frame`."""
        return np.asarray(self.predict_many(records_of(frame, self.features)), dtype=object)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        """Probabilities per row, one column per class of `classes_`."""
        _, proba, _ = self.predict_and_proba(frame)
        if proba is None:
            raise AttributeError(f"{type(self.learner).__name__} gives no probabilities")
        return proba

    def predict_and_proba(
        self, frame: pd.DataFrame
    ) -> tuple[list[Any], np.ndarray[Any, Any] | None, list[Any]]:
        """Predictions, probabilities (None if the learner has none) and the classes they are
        for, all from one state of the model."""
        records = records_of(frame, self.features)
        with self._lock:
            predicted = self._predict(records)
            return predicted, self._proba(records), list(self.classes_)

    def _predict(self, records: Sequence[Record]) -> list[Any]:
        if self._river:
            predict_one = self.learner.predict_one
            return [predict_one(record) for record in records]
        if not self._fitted:
            return [None] * len(records)
        found: list[Any] = self.learner.predict(self._matrix(records)).tolist()
        return found

    def _proba(self, records: Sequence[Record]) -> np.ndarray[Any, Any] | None:
        if self._river:
            if not callable(getattr(self.learner, "predict_proba_one", None)):
                return None
            one = self.learner.predict_proba_one
            rows = [one(record) for record in records]
            return np.asarray(
                [[float(row.get(c, 0.0)) for c in self.classes_] for row in rows], dtype=float
            ).reshape(len(records), len(self.classes_))
        if not self._fitted or not hasattr(self.learner, "predict_proba"):
            return None
        try:
            proba: np.ndarray[Any, Any] = self.learner.predict_proba(self._matrix(records))
        except AttributeError:  # e.g. SGDClassifier with a loss that has no probabilities
            return None
        return proba

    def _matrix(self, records: Sequence[Record]) -> np.ndarray[Any, Any]:
        return np.asarray([[r[f] for f in self.features] for r in records], dtype=float)

    # -- learning -----------------------------------------------------------------------------

    def learn_many(self, records: Sequence[Record], labels: Sequence[Any]) -> None:
        """Learn events in order; each event (river) or mini-batch (partial_fit) is one update."""
        if self._river:
            learn_one, lock = self.learner.learn_one, self._lock
            for record, label in zip(records, labels, strict=True):
                with lock:
                    learn_one(record, label)
                    self.n_learned_ += 1
                    if label not in self.classes_:
                        self.classes_ = _sorted({*self.classes_, label})
            return
        for record, label in zip(records, labels, strict=True):
            self.pending.append((record, label))
            if len(self.pending) >= self.batch_size:
                self._partial_fit()

    def _partial_fit(self) -> None:
        taken, self.pending = self.pending, []
        X = self._matrix([record for record, _ in taken])
        y = np.asarray([label for _, label in taken])
        classes = self.classes_ or _sorted(set(y.tolist()))
        unknown = set(y.tolist()) - set(classes)
        if unknown:
            raise errors.TrainingError(
                f"labels {sorted(map(str, unknown))} were not among the classes "
                f"{classes} the partial_fit learner started with; list every class in "
                "online.classes"
            )
        with self._lock:
            try:
                if self._fitted:
                    self.learner.partial_fit(X, y)
                else:
                    self.learner.partial_fit(X, y, classes=np.asarray(classes))
            except ValueError as exc:
                raise errors.TrainingError(f"partial_fit failed: {exc}") from exc
            self._fitted = True
            self.classes_ = list(classes)
            self.n_learned_ += len(taken)


def _sorted(values: set[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def build_model(spec: OnlineSpec, features: Sequence[str], base_dir: Path) -> OnlineModel:
    """A fresh `OnlineModel` from the spec's ``online.learner`` (module:function) and params.

    >>> spec = OnlineSpec(learner="river.tree:HoeffdingTreeClassifier", params={"delta": 1e-5})
    >>> build_model(spec, ["x"], Path(".")).learner.delta
    1e-05
    """
    try:
        function = trainer.load_trainer(spec.learner, base_dir)
    except errors.ConfigError as exc:
        raise errors.ConfigError(str(exc).replace("trainer.function", "online.learner")) from exc
    try:
        learner = function(**spec.params)
    except TypeError as exc:
        raise errors.ConfigError(f"online.params do not fit {spec.learner!r}: {exc}") from exc
    return OnlineModel(learner, features, batch_size=spec.batch_size, classes=spec.classes)
