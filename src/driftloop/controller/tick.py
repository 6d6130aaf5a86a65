"""The controller: one `tick` is one idempotent reconcile step of a pipeline.

    lease → ingest → repair → evaluate (test) → gather signals → decide → retrain → gate → promote

Called by `driftloop tick` / `driftloop run`, and by the backtest with a fake clock and a frame
source. A tick reads stored state, decides, acts and records; run twice on the same state it
does nothing new, because it decides only when there is something new (batches, a schedule
occurrence, a manual request) and every fired decision is marked done by its run's outcome.
In-memory caches (rows, loaded models, the concept detector) are rebuilt from the store by a
new process, so they never hold state the store does not.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from driftloop.controller import evaluate, history, retrain
from driftloop.controller import project as projects
from driftloop.controller import signals as gathering
from driftloop.policy import policy as policies
from driftloop.store import entities
from driftloop.train import executor as executors

MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class TickResult:
    """What one tick did, for the CLI and the backtest."""

    acted: bool
    skipped: str | None = None
    batches: tuple[entities.Batch, ...] = ()
    evaluations: tuple[entities.Evaluation, ...] = ()
    decision: entities.Decision | None = None
    outcome: retrain.Outcome | None = None
    repaired: tuple[str, ...] = field(default=())


class Controller:
    """Reconciles one pipeline. `holder` names this controller in leases and the audit log."""

    def __init__(
        self,
        project: projects.Project,
        *,
        holder: str | None = None,
        lease_ttl: timedelta = timedelta(minutes=10),
        executor: executors.Executor | None = None,
    ) -> None:
        self.project = project
        self.holder = holder or f"controller@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_ttl = lease_ttl
        self.executor = executor or executors.build_executor(project.spec.trainer.executor)
        self.policy = policies.Policy.from_spec(project.spec)
        self.history_ = history.History(project)
        self.evaluations_ = evaluate.Evaluations(project)
        self.monitor_ = evaluate.ConceptMonitor(project, self.evaluations_)
        self.models_: dict[int, Any] = {}

    def tick(self) -> TickResult:
        """One reconcile step; returns what it did."""
        store, name = self.project.store, self.project.name
        if store.acquire_lease(name, self.holder, self.lease_ttl) is None:
            return TickResult(acted=False, skipped="another controller holds the lease")
        batches = tuple(self.ingest())
        repaired = tuple(self.repair())
        rows = self.history_.rows()
        evaluations = tuple(self.evaluate(rows))
        decision = self.decide(rows)
        outcome = None
        if decision is not None and decision.fired:
            outcome = self.act(decision, rows)
        else:
            outcome = self.retry_unfinished(rows)
        acted = bool(batches or repaired or evaluations or decision or outcome)
        return TickResult(acted, None, batches, evaluations, decision, outcome, repaired)

    def ingest(self) -> list[entities.Batch]:
        from driftloop.controller import ingest

        return ingest.ingest(self.project, on_accepted=self.history_.add)

    def champion(self) -> tuple[entities.ModelVersion, Any] | None:
        """The champion version and its model (loaded once, hash-verified)."""
        store, name = self.project.store, self.project.name
        number = store.get_alias(name, "champion")
        if number is None:
            return None
        version = store.get_model_version(name, number)
        if number not in self.models_:
            self.models_ = {number: self.project.artifacts.get_model(version.artifact_uri, version.sha256)}
        return version, self.models_[number]

    def evaluate(self, rows: Any) -> list[entities.Evaluation]:
        """Score the champion on every accepted batch newer than its training data and not yet scored."""
        self.evaluations_.refresh()
        live = self.champion()
        if live is None or not len(rows):
            return []
        version, model = live
        store, name = self.project.store, self.project.name
        last = self.evaluations_.last()
        done_upto = last.batch_id if last else 0
        trained_upto = int(version.metrics.get("data_upto_batch", max(version.batch_ids, default=0)))
        scored = []
        for batch in store.list_batches(name, status="accepted", after_id=max(done_upto, trained_upto)):
            batch_rows = rows[rows[history.BATCH_COLUMN] == batch.id]
            scored.append(evaluate.evaluate_batch(self.project, model, version.version, batch, batch_rows))
        self.evaluations_.refresh()
        return scored

    def decide(self, rows: Any) -> entities.Decision | None:
        """Evaluate the policy if anything is new since the last decision, and record it."""
        store, name = self.project.store, self.project.name
        last = _last(store.list_decisions(name, kind="retrain", limit=1))
        last_fired = _last(store.list_decisions(name, kind="retrain", fired=True, limit=1))
        live = self.champion()
        gathered = gathering.gather(
            self.project, rows, live[0] if live else None, self.monitor_, last, last_fired
        )
        verdict = self.policy.decide(gathered.signals)
        is_new = last is None or gathered.last_batch_id > int(last.evidence.get("last_batch_id", 0))
        if not (is_new or verdict.fire):
            return None
        if last is None and not len(rows):
            return None
        last_eval = self.evaluations_.last()
        evidence = {
            "policy": verdict.to_json(),
            "last_batch_id": gathered.last_batch_id,
            "last_evaluation_id": last_eval.id if last_eval else 0,
            "signals": _signals_json(gathered.signals),
            "drift": gathered.signals.drift,
        }
        return store.add_decision(
            name, kind="retrain", fired=verdict.fire, evidence=evidence, caused_by=gathered.caused_by
        )

    def act(self, decision: entities.Decision, rows: Any) -> retrain.Outcome:
        outcome = retrain.retrain(self.project, decision, rows, self.champion(), self.executor, self.holder)
        if outcome.promoted and outcome.version is not None:
            self.models_ = {outcome.version.version: outcome.model}  # the bytes just stored
        return outcome

    def repair(self) -> list[str]:
        """Finish what a crashed tick left: close orphaned runs, promote a passed version."""
        store, name = self.project.store, self.project.name
        repaired = []
        for run in store.list_runs(name, status="running"):
            store.finish_run(run.id, status="failed", compute_seconds=None, error="interrupted: the controller stopped during training")
            repaired.append(f"run {run.id} marked failed (interrupted)")
        promoted = retrain.promote_pending(self.project, self.holder)
        if promoted is not None:
            repaired.append(f"version {promoted.version} promoted (interrupted before promotion)")
        return repaired

    def retry_unfinished(self, rows: Any) -> retrain.Outcome | None:
        """A fired decision whose every run failed is retried, at most MAX_ATTEMPTS times."""
        store, name = self.project.store, self.project.name
        last_fired = _last(store.list_decisions(name, kind="retrain", fired=True, limit=1))
        if last_fired is None:
            return None
        runs = store.list_runs(name, decision_id=last_fired.id)
        if any(run.status == "succeeded" for run in runs) or len(runs) >= MAX_ATTEMPTS:
            return None
        return self.act(last_fired, rows)


def _last(decisions: list[entities.Decision]) -> entities.Decision | None:
    return decisions[-1] if decisions else None


def _signals_json(signals: Any) -> dict[str, Any]:
    return {
        "now": signals.now.isoformat(),
        "has_champion": signals.has_champion,
        "live_metric": signals.live_metric,
        "live_rows": signals.live_rows,
        "champion_metric": signals.champion_metric,
        "new_labelled_rows": signals.new_labelled_rows,
        "concept_drift": signals.concept_drift,
        "manual": signals.manual,
    }
