"""The live online learner of a pipeline: learn labelled events, watch the error stream,
checkpoint snapshots to the registry, roll back a snapshot that got worse.

`OnlineSession.learn(events)` is the one entry point for labelled events, whoever has them:
the online controller (`controller.online_tick`, each newly labelled batch), the server
(`/v1/feedback` labels joined to their logged predictions) and any stream source (a list of
`Event`). Per call:

1. events without the prediction that was served for them are scored first (all of the
   call's events before any is learned: test-then-train);
2. the learner learns them in order (`train.online.OnlineModel`, lock per update);
3. each error (0/1) goes to the prequential window (the live metric) and to the stream
   detector (river ADWIN / Page-Hinkley); a detection is recorded as a decision (kind
   ``online``, evidence: detector, positions, recent accuracy) and acted on as
   ``online.drift.action`` says (`reset`, `retrain` from the recent window, or `none`);
4. after ``checkpoint.every_events`` events (or ``checkpoint.every`` of clock time) a snapshot
   is stored as a model version with its live metric; if that metric is below the last good
   snapshot's by more than ``checkpoint.tolerance`` the learner is rolled back to the last good
   snapshot (decision ``rollback`` with both metrics); else the champion alias moves to it.
   Right after a rollback the restored snapshot is judged on new events; if it does no
   better, the stream changed rather than the learner, and the next snapshot is accepted
   (decision ``accept``), so a learner is never stuck on an old state.

Only the holder of the pipeline's lease calls `learn` (it writes decisions, versions and the
champion alias): the online controller during its tick, the server while it holds the lease for
a feedback call. A snapshot records how far its lineage has learned each source
(``data_upto_batch``: the newest batch; ``feedback_upto``: the newest feedback label), so
whichever process next holds the lease continues from the champion snapshot (`attach`) and
learns exactly what came after it: nothing is lost when the writer changes, nothing is learned
twice in one lineage.

`on_model(version, model)` is called whenever the live model object or its version changes,
so a server can serve exactly the object that learns.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from driftloop.controller import project as projects
from driftloop.core import online_spec
from driftloop.drift import detectors
from driftloop.store import entities
from driftloop.train import online

DECISION_KIND = "online"

FEEDBACK_CURSOR = "online-feedback"
"""The store cursor: the newest feedback label a lease holder's learner has learned (progress
for operators; where a snapshot stored before snapshots recorded ``feedback_upto`` continues)."""


@dataclass(frozen=True)
class Event:
    """One labelled event: its features, its label, the prediction served for it (None: the
    learner scores it before learning it), the batch it came in (None for served ones) and the
    feedback label it is (None for batch rows)."""

    features: online.Record
    label: Any
    prediction: Any = None
    batch_id: int | None = None
    feedback_id: int | None = None


@dataclass(frozen=True)
class Checkpoint:
    """A stored snapshot: its version, its live metric, and whether it went live."""

    run: entities.TrainingRun
    version: entities.ModelVersion
    metric: float | None
    promoted: bool
    decision: entities.Decision | None


@dataclass(frozen=True)
class LearnReport:
    """What one `learn` call did."""

    learned: int
    errors: tuple[float, ...]
    decisions: tuple[entities.Decision, ...]
    checkpoints: tuple[Checkpoint, ...]


ModelListener = Callable[[entities.ModelVersion | None, online.OnlineModel], None]


class OnlineSession:
    """Owns one pipeline's live `OnlineModel` and its bookkeeping (see the module docstring).

    `model`/`version`: the snapshot to continue from (a copy is learned on); None starts a
    fresh learner. `features`: the model's input columns.
    """

    def __init__(
        self,
        project: projects.Project,
        features: Sequence[str],
        actor: str,
        *,
        model: online.OnlineModel | None = None,
        version: entities.ModelVersion | None = None,
        on_model: ModelListener | None = None,
    ) -> None:
        spec = project.spec.online
        if spec is None:
            raise ValueError(f"pipeline {project.name!r} has no `online:` section")
        self.project = project
        self.features = list(features)
        self.actor = actor
        self.spec: online_spec.OnlineSpec = spec
        self.on_model = on_model
        self.model = model if model is not None else self._fresh()
        self._good: tuple[entities.ModelVersion, float | None] | None = None
        if version is not None:
            self._good = (version, _metric(version))
        self._window: collections.deque[float] = collections.deque(maxlen=spec.checkpoint.window)
        self._recent: collections.deque[tuple[online.Record, Any]] = collections.deque(
            maxlen=spec.drift.window
        )
        self._detector = self._new_detector()
        self.since_events = 0
        self._since_at: datetime = project.clock.now()
        self._batches: set[int] = set()
        self.upto_batch = int(version.metrics.get("data_upto_batch", 0)) if version else 0
        self.feedback_upto = self._feedback_upto(version)
        self._cpu = 0.0
        self._restored = False
        self._lock = threading.RLock()

    @property
    def version(self) -> entities.ModelVersion | None:
        """The last good snapshot (the champion this session serves as)."""
        return self._good[0] if self._good else None

    def live_metric(self) -> float | None:
        """Prequential accuracy over the last `checkpoint.window` scored events."""
        return sum(self._window) / len(self._window) if self._window else None

    def attach(self, version: entities.ModelVersion, model: online.OnlineModel) -> None:
        """Continue from another snapshot (the champion moved elsewhere): what this session
        learned since its own last snapshot is dropped, and it learns again what came after
        `version` (its recorded batch and feedback positions)."""
        with self._lock:
            self.model, self._good = model, (version, _metric(version))
            self.upto_batch = int(version.metrics.get("data_upto_batch", 0))
            self.feedback_upto = self._feedback_upto(version)
            self.since_events, self._since_at = 0, self.project.clock.now()
            self._batches, self._cpu, self._restored = set(), 0.0, False

    # -- learning -----------------------------------------------------------------------------

    def learn(self, events: Sequence[Event]) -> LearnReport:
        """Score (where no prediction came with them), learn, watch and checkpoint `events`."""
        with self._lock:
            model = self.model
            records = [e.features for e in events]
            labels = [e.label for e in events]
            errors = _errors(model, events, records, labels)
            # for a handful of events the wall clock: reading the CPU clock is a system call
            # that, on a busy machine, costs more than learning one event
            clock = time.thread_time if len(events) >= 16 else time.perf_counter
            started = clock()
            model.learn_many(records, labels)
            self._cpu += clock() - started
            self._window.extend([1.0 - error for error in errors])
            self._recent.extend(zip(records, labels, strict=True))
            self.since_events += len(events)
            ids = {e.batch_id for e in events if e.batch_id is not None}
            if ids:
                self._batches |= ids
                self.upto_batch = max(self.upto_batch, *ids)
            labels_seen = [e.feedback_id for e in events if e.feedback_id is not None]
            if labels_seen:
                self.feedback_upto = max(self.feedback_upto, *labels_seen)
            drift = self._watch(errors, ids)
            decisions: tuple[entities.Decision, ...] = () if drift is None else (drift,)
            checkpoints: tuple[Checkpoint, ...] = ()
            if self._due():
                done = self.checkpoint()
                checkpoints = (done,)
                if done.decision is not None:
                    decisions += (done.decision,)
            return LearnReport(len(events), tuple(errors), decisions, checkpoints)

    def _due(self) -> bool:
        every = self.spec.checkpoint
        if self._good is None and self.model.n_learned_ > 0:
            return True  # the first snapshot: something to serve
        if every.every_events is not None and self.since_events >= every.every_events:
            return True
        if every.every is None or self.since_events == 0:
            return False
        return self.project.clock.now() - self._since_at >= every.every

    # -- stream drift -------------------------------------------------------------------------

    def _new_detector(self) -> detectors.ErrorStreamDetector | None:
        drift = self.spec.drift
        if drift.detector == "none":
            return None
        return detectors.ErrorStreamDetector(drift.detector, **drift.params)

    def _watch(self, errors: Sequence[float], batch_ids: set[int]) -> entities.Decision | None:
        if self._detector is None or not errors:
            return None
        detector = self._detector
        start = detector.n_seen_
        update = detector.update
        found = [i for i, error in enumerate(errors) if update(error)]
        if not found:
            return None
        action = self.spec.drift.action
        evidence = {
            "action": "drift",
            "then": action,
            "detector": self._detector.get_params(),
            "positions": [start + i for i in found],
            "events_learned": self.model.n_learned_,
            "recent_accuracy": self.live_metric(),
            "window": len(self._window),
        }
        decision = self.project.store.add_decision(
            self.project.name, kind=DECISION_KIND, fired=action != "none", evidence=evidence,
            caused_by={"batches": sorted(batch_ids)},
        )
        if action != "none":
            fresh = self._fresh()
            if action == "retrain" and self._recent:
                started = time.thread_time()
                records, labels = zip(*self._recent, strict=True)
                fresh.learn_many(list(records), list(labels))
                self._cpu += time.thread_time() - started
            self._replace(fresh)
        return decision

    # -- checkpoints and rollback -------------------------------------------------------------

    def checkpoint(self) -> Checkpoint:
        """Store a snapshot with its live metric; promote it, or roll back to the last good."""
        with self._lock:
            store, name = self.project.store, self.project.name
            metric = self.live_metric()
            model = self.model
            with model.lock:  # stored as it is now: no update lands half-way
                artifact = self.project.artifacts.put_model(model, model.artifact_format)
                learned = model.n_learned_
            run = store.start_run(name, trainer=self.spec.learner, params=dict(self.spec.params),
                                  batch_ids=sorted(self._batches))
            run = store.finish_run(run.id, status="succeeded", compute_seconds=self._cpu)
            version = store.add_model_version(
                name, run_id=run.id, artifact_uri=artifact.uri, sha256=artifact.sha256,
                metrics={"accuracy": metric, "live_rows": len(self._window), "online": True,
                         "events_learned": learned, "cpu_seconds": self._cpu,
                         "data_upto_batch": self.upto_batch,
                         "feedback_upto": self.feedback_upto},
            )
            decision, promoted = self._judge(version, metric)
            self.since_events, self._since_at = 0, self.project.clock.now()
            self._batches, self._cpu = set(), 0.0
            return Checkpoint(run, version, metric, promoted, decision)

    def _judge(
        self, version: entities.ModelVersion, metric: float | None
    ) -> tuple[entities.Decision | None, bool]:
        store, name = self.project.store, self.project.name
        good = self._good
        tolerance = self.spec.checkpoint.tolerance
        worse = (
            good is not None and metric is not None and good[1] is not None
            and metric < good[1] - tolerance
        )
        evidence = {
            "version": version.version, "metric": metric, "window": len(self._window),
            "last_good": good[0].version if good else None,
            "last_good_metric": good[1] if good else None, "tolerance": tolerance,
        }
        decision = None
        if worse and good is not None and not self._restored:
            decision = store.add_decision(name, kind=DECISION_KIND, fired=True, evidence={
                "action": "rollback", **evidence,
                "reason": f"live accuracy {metric:.4f} is below the last good snapshot's "
                          f"{good[1]:.4f} by more than {tolerance}"})
            restored = self.project.artifacts.get_model(good[0].artifact_uri, good[0].sha256)
            self._restored = True
            self._window.clear()
            self._replace(restored.snapshot())  # learn on a copy: the stored one stays
            return decision, False
        if worse and self._restored:
            decision = store.add_decision(name, kind=DECISION_KIND, fired=True, evidence={
                "action": "accept", **evidence,
                "reason": "the restored snapshot did no better on the newest events: the "
                          "stream changed, not the learner"})
        self._restored = False
        shown = "n/a" if metric is None else f"{metric:.4f}"
        store.set_alias(name, "champion", version.version, actor=self.actor,
                        reason=f"online snapshot: live accuracy {shown} over "
                               f"{len(self._window)} events")
        self._good = (version, metric)
        if self.on_model is not None:
            self.on_model(version, self.model)
        return decision, True

    # -- helpers ------------------------------------------------------------------------------

    def _feedback_upto(self, version: entities.ModelVersion | None) -> int:
        """The newest feedback label `version`'s lineage learned (the cursor for a snapshot
        stored before snapshots recorded it; 0 with neither)."""
        if version is not None and "feedback_upto" in version.metrics:
            return int(version.metrics["feedback_upto"])
        stored = self.project.store.get_cursor(self.project.name, FEEDBACK_CURSOR) or {}
        return int(stored.get("after", 0))

    def _fresh(self) -> online.OnlineModel:
        return online.build_model(self.spec, self.features, self.project.base_dir)

    def _replace(self, model: online.OnlineModel) -> None:
        self.model = model
        if self.on_model is not None:
            self.on_model(self.version, model)


def _errors(
    model: online.OnlineModel, events: Sequence[Event], records: list[online.Record],
    labels: list[Any],
) -> list[float]:
    """1.0 per event whose prediction (the one served with it, else made now) was wrong, else
    0.0; none while there is nothing to score (no prediction came and nothing was learned)."""
    predictions = [e.prediction for e in events]
    missing = [i for i, p in enumerate(predictions) if p is None]
    if missing:
        if len(missing) == len(events) and model.n_learned_ == 0:
            return []
        for i, value in zip(missing, model.predict_many([records[i] for i in missing]),
                            strict=True):
            predictions[i] = value
    return [0.0 if _same(p, y) else 1.0 for p, y in zip(predictions, labels, strict=True)]


def _metric(version: entities.ModelVersion) -> float | None:
    value = version.metrics.get("accuracy")
    return None if value is None else float(value)


def _same(prediction: Any, label: Any) -> bool:
    """Equal, also across JSON's types (1 vs "1" vs 1.0 from a served prediction)."""
    return bool(prediction == label) or str(prediction) == str(label)
