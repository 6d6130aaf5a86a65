"""Live performance: the champion scores each new labelled batch before anything learns from it.

Called by the tick right after ingest (test-then-train: in a backtest this is the accuracy that
counts). Each evaluation is stored with the per-row errors, which feed the streaming
concept-drift detector (river ADWIN / Page-Hinkley) and the performance trigger's window, and
with the accuracy estimated from the model's calibrated confidences before the labels were
looked at (`train.calibration`), which stands in for the labels while they are missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from driftloop.controller import project as projects
from driftloop.drift import detectors
from driftloop.store import entities, serving

if TYPE_CHECKING:  # numpy, pandas and scikit-learn are imported only when something is scored
    import numpy as np
    import pandas as pd

    from driftloop.train import calibration


def errors_of(task: str, y_true: pd.Series, y_pred: np.ndarray) -> list[float]:
    """Per-row error: 0/1 misclassification, or absolute error for regression."""
    import numpy as np

    if task == "classification":
        wrong: list[float] = (np.asarray(y_true) != np.asarray(y_pred)).astype(float).tolist()
        return wrong
    diff = np.asarray(y_true, dtype=float) - np.asarray(y_pred, dtype=float)
    off: list[float] = np.abs(diff).tolist()
    return off


def evaluate_batch(
    project: projects.Project,
    model: Any,
    version: int,
    batch: entities.Batch,
    rows: pd.DataFrame,
    calibrator: calibration.Calibrator | None = None,
) -> entities.Evaluation:
    """Score the champion on one batch's labelled rows and store the result; with the model's
    `calibrator`, first estimate its accuracy on all the batch's rows without their labels."""
    from driftloop.data import calendar
    from driftloop.gate import metrics
    from driftloop.train import calibration

    spec = project.spec
    inputs = calendar.model_input(spec, rows)
    estimate = None
    if calibrator is not None and len(rows):
        estimate = calibration.estimate_accuracy(model, calibrator, inputs)
    known = rows[spec.target].notna()
    labelled = rows if known.all() else rows[known]
    features = inputs if known.all() else inputs[known]
    value, errors = None, []
    if len(labelled):
        metric = metrics.get_metric(spec.gate.metric, spec.task)
        y_pred = model.predict(features)
        predictions = (
            metric.predict(model, features) if metric.needs_proba else metrics.Predictions(y_pred)
        )
        value = metric.score(labelled[spec.target], predictions)
        errors = errors_of(spec.task, labelled[spec.target], y_pred)
        if spec.fairness is not None:
            from driftloop.controller import responsible

            responsible.record_fairness(project, batch.id, version, labelled, y_pred)
        if spec.explain is not None and spec.explain.live is not None:
            from driftloop.controller import responsible

            responsible.explain_live(project, batch.id, version, model, features,
                                     labelled[spec.target])
    return project.store.add_evaluation(
        project.name,
        batch_id=batch.id,
        version=version,
        metric=spec.gate.metric,
        value=value,
        rows=len(labelled),
        errors=errors,
        estimated_value=estimate,
        estimated_rows=len(rows) if estimate is not None else 0,
    )


class Evaluations:
    """The pipeline's stored evaluations, read incrementally and kept in memory, oldest first."""

    def __init__(self, project: projects.Project) -> None:
        self.project = project
        self.items: list[entities.Evaluation] = []

    def refresh(self) -> list[entities.Evaluation]:
        """Read evaluations stored since the last call; returns all of them."""
        after = self.items[-1].id if self.items else 0
        self.items += self.project.store.list_evaluations(self.project.name, after_id=after)
        return self.items

    def add(self, evaluation: entities.Evaluation) -> None:
        """Keep an evaluation this process just stored (the newest one: saves reading it back)."""
        self.items.append(evaluation)

    def forget(self, ids: set[int]) -> None:
        """Drop evaluations retention moved out of the store (`controller.records`)."""
        if ids:
            self.items = [e for e in self.items if e.id not in ids]

    def last(self) -> entities.Evaluation | None:
        return self.items[-1] if self.items else None

    def last_batch_id(self) -> int:
        """The newest batch scored (evaluations of served predictions have no batch)."""
        return next((e.batch_id for e in reversed(self.items) if e.batch_id is not None), 0)

    def newest(self, version: int, after_id: int = 0) -> Iterator[entities.Evaluation]:
        """Evaluations of one model version with id > `after_id`, newest first."""
        for evaluation in reversed(self.items):
            if evaluation.id <= after_id:
                return
            if evaluation.version == version:
                yield evaluation

    def of(self, version: int, after_id: int = 0) -> list[entities.Evaluation]:
        """Evaluations of one model version with id > `after_id` (newest last)."""
        return list(self.newest(version, after_id))[::-1]


class ConceptMonitor:
    """The concept-drift detector over the current champion's error stream.

    Kept in memory between ticks; rebuilt from stored evaluations when the champion changes or
    the process is new, so its state is always what the store implies.
    """

    def __init__(self, project: projects.Project, evaluations: Evaluations) -> None:
        self.project = project
        self.evaluations = evaluations
        self._version: int | None = None
        self._detector: detectors.ErrorStreamDetector | None = None
        self._last_evaluation: int = 0
        self._detections: list[int] = []

    def update(self, version: int) -> list[int]:
        """Feed new evaluations of `version`; returns the ids of those where drift was detected."""
        concept = self.project.spec.drift.concept
        if concept.detector == "none":
            return []
        if version != self._version or self._detector is None:
            self._version, self._last_evaluation, self._detections = version, 0, []
            self._detector = detectors.ErrorStreamDetector(concept.detector, **concept.params)
        for evaluation in self.evaluations.of(version, after_id=self._last_evaluation):
            if any([self._detector.update(error) for error in evaluation.errors]):
                self._detections.append(evaluation.id)
            self._last_evaluation = evaluation.id
        return self._detections


FEEDBACK_CURSOR = "feedback"
"""The store cursor: the last feedback label turned into an evaluation."""


def evaluate_feedback(
    project: projects.Project, store: serving.ServingStore
) -> list[entities.Evaluation]:
    """Labels sent to the server for the champion's predictions, as evaluations of the version
    that answered: they feed the live metric, the performance trigger and the concept-drift
    detector exactly like labelled batches do. Read incrementally from a stored cursor."""
    spec, name = project.spec, project.name
    after = int((project.store.get_cursor(name, FEEDBACK_CURSOR) or {}).get("after", 0))
    labelled = store.labelled(name, after_id=after, alias="champion")
    if not labelled:
        return []
    import pandas as pd

    from driftloop.gate import metrics

    metric = metrics.get_metric(spec.gate.metric, spec.task)
    scored = []
    for version in sorted({item.prediction.version for item in labelled}):
        mine = [item for item in labelled if item.prediction.version == version]
        y_true = _labels(spec.task, [item.label for item in mine])
        y_pred = _labels(spec.task, [item.prediction.prediction for item in mine])
        value = None
        if not metric.needs_proba:
            value = metric.score(y_true, metrics.Predictions(y_pred))
        if spec.fairness is not None:
            _feedback_fairness(project, version, [item.prediction.features for item in mine],
                               y_true, y_pred)
        scored.append(
            project.store.add_evaluation(
                name,
                batch_id=None,
                version=version,
                metric=spec.gate.metric,
                value=value,
                rows=len(mine),
                errors=errors_of(spec.task, pd.Series(y_true), y_pred),
            )
        )
    project.store.set_cursor(name, FEEDBACK_CURSOR, {"after": labelled[-1].feedback_id})
    return scored


def _feedback_fairness(project: projects.Project, version: int, records: list[Any],
                       y_true: np.ndarray, y_pred: np.ndarray) -> None:
    """The fairness report of labelled served predictions, on the sensitive columns the
    requests carried (those that are model inputs; the others never reach the server)."""
    import pandas as pd

    from driftloop.controller import responsible

    spec = project.spec
    assert spec.fairness is not None  # callers checked
    rows = pd.DataFrame(records)
    rows[spec.target] = y_true
    responsible.record_fairness(project, None, version, rows, y_pred, source="feedback")


def _labels(task: str, values: list[Any]) -> np.ndarray[Any, Any]:
    """Labels as JSON sent them, comparable: text for classes, floats for regression."""
    import numpy as np

    if task == "classification":
        return np.asarray([str(value) for value in values])
    return np.asarray(values, dtype=float)
