"""The controller of an online pipeline (one with an `online:` section): one `tick` is

    lease → ingest → for each new accepted batch: score it with the live learner (stored as an
    evaluation: test) → learn its labelled rows (train) → watch the error stream → checkpoint
    → learn the feedback labels sent to the server since (`controller.online_feedback`)
    → retention (one bounded slice, as in `tick.Controller`: `controller.retention_tick`)

Called by `driftloop tick` / `run` and by the backtest (same code, fake clock), in place of
`controller.tick.Controller`. The learner lives in an `OnlineSession`. A new process continues
from the champion snapshot and learns again the batches and feedback labels that came after it
(the snapshot records the newest of each it has learned), so what it holds is always what the
store implies; batches already scored are not scored twice. Late labels (a batch of labels for
earlier rows) are not learned by the online path.

The lease decides who writes: a prediction server learns feedback labels itself only while it
holds the lease (`server.online_serving`), and gives it back after each call. So the learner that
checkpoints may change between ticks: each tick first checks that the session still continues
from the champion as stored, and if another writer moved it, continues from that snapshot
instead (`OnlineSession.attach`), learning again what came after it.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from driftloop.controller import (
    evaluate,
    history,
    online_feedback,
    online_session,
    retention_tick,
    retrain,
)
from driftloop.controller import ingest as ingesting
from driftloop.controller import lease as leases
from driftloop.controller import project as projects
from driftloop.controller import tick as ticking
from driftloop.store import entities, serving
from driftloop.train import online as learners
from driftloop.validation import schema as schemas


class OnlineController:
    """Reconciles one online pipeline; the same `tick()` contract as `tick.Controller`."""

    def __init__(
        self,
        project: projects.Project,
        *,
        holder: str | None = None,
        lease_ttl: timedelta | None = None,
        retain: bool = True,
    ) -> None:
        self.project = project
        self.holder = holder or leases.holder_name("controller")
        self.lease_ttl = lease_ttl or project.spec.lease_timeout
        self.history = history.History(project)
        self.evaluations = evaluate.Evaluations(project)
        self.retention = (retention_tick.Retention(project, self.history, self.evaluations)
                           if retain else None)  # as in `tick.Controller`
        self._serving = serving.ServingStore(project.store)
        self._session: online_session.OnlineSession | None = None

    def session(self) -> online_session.OnlineSession | None:
        """The live learner's session, continuing from the champion snapshot as stored now
        (None: no schema yet, so no feature columns)."""
        store, name = self.project.store, self.project.name
        session = self._session
        if session is not None:
            number = store.aliases.get(name, "champion")
            mine = session.version.version if session.version is not None else None
            if number is not None and number != mine:  # another writer moved it
                session.attach(*self._snapshot(number))
            return session
        schema = store.pipelines.get(name).schema
        if schema is None:
            return None
        columns = [column["name"] for column in schema.get("columns", [])]
        features = self.project.spec.feature_columns(columns)
        number = store.aliases.get(name, "champion")
        version: entities.ModelVersion | None = None
        model: learners.OnlineModel | None = None
        if number is not None:
            version, model = self._snapshot(number)
        self._session = online_session.OnlineSession(
            self.project, features, self.holder, model=model, version=version
        )
        return self._session

    def _snapshot(self, number: int) -> tuple[entities.ModelVersion, learners.OnlineModel]:
        """Version `number` and a copy of its learner to learn on (the snapshot stays as
        stored)."""
        version = self.project.store.versions.get(self.project.name, number)
        loaded = self.project.artifacts.get_model(version.artifact_uri, version.sha256)
        return version, loaded.snapshot()

    def tick(self) -> ticking.TickResult:
        """One step under the pipeline's lease (renewed while it works, as `tick.Controller`
        does); the lease is kept afterwards until `release()`."""
        store, name = self.project.store, self.project.name
        with leases.hold(store, name, self.holder, self.lease_ttl) as held:
            if held is None:
                return ticking.TickResult(
                    acted=False, skipped="another controller holds the lease")
            return self._reconcile()

    def release(self) -> None:
        """Give up the lease (if this controller holds it)."""
        self.project.store.leases.release(self.project.name, self.holder)

    def _reconcile(self) -> ticking.TickResult:
        batches = tuple(
            ingesting.ingest(self.project, on_accepted=self.history.add, known=self.history)
        )
        self.history.refresh()
        self.evaluations.refresh()
        session = self.session()
        if session is None:
            swept = self.retention.step() if self.retention is not None else None
            return ticking.TickResult(acted=bool(batches), batches=batches, swept=swept)
        evaluations: list[entities.Evaluation] = []
        decisions: list[entities.Decision] = []
        checkpoints: list[online_session.Checkpoint] = []
        for batch in self.history.batches(after_id=session.upto_batch):
            evaluation, report = self.learn_batch(session, batch)
            if evaluation is not None:
                evaluations.append(evaluation)
            decisions += report.decisions
            checkpoints += report.checkpoints
        labelled = online_feedback.pending(self.project, self._serving, session)
        if labelled:
            stored = self.project.store.pipelines.get(self.project.name).schema
            assert stored is not None  # the session's features came from it
            report = online_feedback.learn(
                self.project, session, labelled, schemas.Schema.from_json(stored))
            decisions += report.decisions
            checkpoints += report.checkpoints
        outcome = None
        if checkpoints:
            last = checkpoints[-1]
            reason = "online snapshot" if last.promoted else "online snapshot rolled back"
            outcome = retrain.Outcome(last.run, last.version, last.promoted, reason)
        swept = (self.retention.step(versions=bool(checkpoints))
                 if self.retention is not None else None)
        acted = bool(batches or evaluations or decisions or checkpoints or labelled)
        return ticking.TickResult(
            acted, None, batches, tuple(evaluations), decisions[-1] if decisions else None,
            outcome, swept=swept,
        )

    def learn_batch(
        self, session: online_session.OnlineSession, batch: entities.Batch
    ) -> tuple[entities.Evaluation | None, online_session.LearnReport]:
        """Score the batch's labelled rows with the learner as it is, then learn them."""
        spec = self.project.spec
        rows = self.history.of(batch.id)
        labelled = rows[rows[spec.target].notna()]
        records = learners.records_of(labelled, session.features)
        labels = labelled[spec.target].tolist()
        evaluation = None
        predictions: list[object] = [None] * len(records)
        scoring = session.model.n_learned_ > 0 and session.version is not None
        if scoring and records and batch.id > self.evaluations.last_batch_id():
            predictions = session.model.predict_many(records)
            right = np.asarray(predictions, dtype=object) == np.asarray(labels, dtype=object)
            right = right.astype(bool)
            errors = (~right).astype(float).tolist()
            assert session.version is not None
            evaluation = self.project.store.evaluations.add(
                self.project.name, batch_id=batch.id, version=session.version.version,
                metric="accuracy", value=float(np.mean(right)), rows=len(records),
                errors=errors,
            )
            self.evaluations.add(evaluation)
        events = [
            online_session.Event(record, label, prediction, batch.id)
            for record, label, prediction in zip(records, labels, predictions, strict=True)
        ]
        if not events:  # nothing labelled: the batch is still done
            session.upto_batch = max(session.upto_batch, batch.id)
        report = session.learn(events)
        return evaluation, report

    def finish(self) -> online_session.Checkpoint | None:
        """Checkpoint what was learned since the last snapshot (the backtest's last step)."""
        session = self._session
        if session is None or session.since_events == 0:
            return None
        return session.checkpoint()

