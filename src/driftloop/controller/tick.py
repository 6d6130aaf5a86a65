"""The controller: one `tick` is one idempotent reconcile step of a pipeline.

    lease → ingest → repair → evaluate (test) → gather signals → decide → retrain → gate → promote
          → retention (one bounded slice: `controller.retention_tick`)

Called by `driftloop tick` / `driftloop run`, and by the backtest with a fake clock and a frame
source. A tick reads stored state, decides, acts and records; run twice on the same state it
does nothing new, because it decides only when there is something new (batches, a schedule
occurrence, a manual request) and every fired decision is marked done by its run's outcome.
In-memory caches (rows, loaded models, the concept detector) are rebuilt from the store by a
new process, so they never hold state the store does not. Within one step, what may change
between steps (the champion alias, the newest decisions) is read once and passed down.

Nothing heavy is loaded before it is needed: a step reads records (batches, decisions, the
champion's version) and decides from them; the champion's model is loaded only to score a new
batch, to gate a challenger or to score late labels, and the rows only to score, gather drift
signals or train. So a step with nothing new imports neither pandas, scikit-learn, skops nor
river. The champion's file is checked against its sha256 once per process; a champion that
cannot be loaded is recorded as a health problem (a decision of kind ``health``) and the step
goes on as if there were no champion: the policy fires, the gate has nothing to compare with,
and the retrained model replaces it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from driftloop.controller import (
    attempts,
    champion_models,
    evaluate,
    history,
    retention_tick,
    retrain,
    rollout,
)
from driftloop.controller import gather as gathering
from driftloop.controller import ingest as ingesting
from driftloop.controller import lease as leases
from driftloop.controller import project as projects
from driftloop.core import errors
from driftloop.core.types import JSON
from driftloop.policy import policy as policies
from driftloop.policy import signals as policy_signals
from driftloop.store import entities, faults, serving
from driftloop.train import fingerprint

if TYPE_CHECKING:
    from driftloop.controller import online_tick
    from driftloop.train import executor as executors

log = logging.getLogger(__name__)

_SLOTS = (("retrain", None), ("retrain", True), ("request", None))

STORE_RETRY_SECONDS = 30.0
"""How long `driftloop run` waits before the next tick when the store refused writes."""


@dataclass(frozen=True)
class Latest:
    """The newest retrain decision, the newest fired one, and the newest manual request."""

    decision: entities.Decision | None
    fired: entities.Decision | None
    request: entities.Decision | None


@dataclass(frozen=True)
class TickResult:
    """What one tick did, for the CLI and the backtest."""

    acted: bool
    skipped: str | None = None
    batches: tuple[entities.Batch, ...] = ()
    evaluations: tuple[entities.Evaluation, ...] = ()
    decision: entities.Decision | None = None
    outcome: retrain.Outcome | None = None
    repaired: tuple[str, ...] = ()
    rollout: entities.Decision | None = None
    swept: retention_tick.Swept | None = None


class Controller:
    """Reconciles one pipeline. `holder` names this controller in leases and the audit log."""

    def __init__(
        self,
        project: projects.Project,
        *,
        holder: str | None = None,
        lease_ttl: timedelta | None = None,
        executor: executors.Executor | None = None,
        retain: bool = True,
    ) -> None:
        self.project = project
        self.holder = holder or leases.holder_name("controller")
        # A tick renews its lease while it works (`lease.hold`), so a short one outlives any
        # training; it only bounds how long a dead controller blocks the others.
        self.lease_ttl = lease_ttl or project.spec.lease_timeout
        self._executor = executor
        self.policy = policies.Policy.from_spec(project.spec)
        self.history = history.History(project)
        self.models = champion_models.Models(project)
        self.evaluations = evaluate.Evaluations(project)
        # `retain=False`: no retention step (a backtest's store is in memory and thrown away)
        self.retention = (retention_tick.Retention(project, self.history, self.evaluations)
                           if retain else None)
        self._serving = serving.ServingStore(project.store)
        self._monitor = evaluate.ConceptMonitor(project, self.evaluations)
        self._profiles: dict[int, JSON] = {}
        self._settled: set[int] = set()  # fired decisions with a succeeded run
        self._latest = Latest(None, None, None)

    @property
    def executor(self) -> executors.Executor:
        """Where trainings run (`trainer.executor`), built on first use: a step that trains
        nothing needs neither the executors nor the trainer search."""
        if self._executor is None:
            from driftloop.train import executor as executors

            self._executor = executors.build_executor(self.project.spec.trainer.executor)
        return self._executor

    def tick(self) -> TickResult:
        """One reconcile step under the pipeline's lease; returns what it did. The lease is
        kept afterwards: `release()` gives it up, for another controller to take the next tick.

        A store that cannot take writes (a full disk, a database that is down) stops the step
        with `errors.TemporaryError` saying so; every write of the step is one transaction that
        the store rolled back, and an artifact is written under a temporary name first, so the
        next tick, once the store takes writes again, ingests the same data as if nothing
        happened."""
        store, name = self.project.store, self.project.name
        started = time.perf_counter()
        try:
            with leases.hold(store, name, self.holder, self.lease_ttl) as held:
                if held is None:
                    log.info("%s: another controller holds the lease; tick skipped", name)
                    return TickResult(acted=False, skipped="another controller holds the lease")
                result = self.reconcile()
        except Exception as exc:
            why = faults.storage_fault(exc)
            if why is None:
                raise
            raise errors.TemporaryError(
                f"{why}: ingestion and training stop until the store takes writes again, then "
                f"resume by themselves (nothing stored was changed). Cause: {exc}",
                delay=STORE_RETRY_SECONDS, pipeline=name) from exc
        log.info("%s: tick in %.3f s: %d batch(es), %d evaluation(s), decision %s, %s", name,
                 time.perf_counter() - started, len(result.batches), len(result.evaluations),
                 _kind(result.decision), _outcome(result.outcome))
        return result

    def release(self) -> None:
        """Give up the lease (if this controller holds it)."""
        self.project.store.leases.release(self.project.name, self.holder)

    def reconcile(self) -> TickResult:
        """The step itself; the caller holds the lease."""
        batches = tuple(self.ingest())
        repaired = tuple(retrain.repair(self.project, self.holder))
        rolled = rollout.evaluate_rollout(self.project, self._serving, self.holder)
        self.history.refresh()
        live = self.models.usable(self.models.champion())
        evaluations = tuple(self.evaluate(live)) + tuple(self.evaluate_feedback())
        latest = self.latest()
        decision = self.decide(live, latest)
        outcome = None
        if decision is not None and decision.fired:
            outcome = self.act(decision) if self.trains() else None
        else:
            outcome = self.retry_unfinished(latest.fired)
        swept = self.retention.step() if self.retention is not None else None
        acted = bool(batches or repaired or evaluations or decision or outcome or rolled)
        return TickResult(
            acted, None, batches, evaluations, decision, outcome, repaired, rolled, swept)

    def ingest(self) -> list[entities.Batch]:
        return ingesting.ingest(self.project, on_accepted=self.history.add, known=self.history)

    def latest(self) -> Latest:
        """The newest retrain decision, fired retrain decision and manual request: one read of
        the decisions newer than those known. Decisions are only ever added, and retrain ones
        only by the lease holder, so a fired one not known yet is newer than the newest known."""
        known = (self._latest.decision, self._latest.fired, self._latest.request)
        seen = [d.id if d else 0 for d in known]
        found = self.project.store.decisions.latest(
            self.project.name, _SLOTS, after=[seen[0], max(seen[0], seen[1]), seen[2]]
        )
        self._latest = Latest(*(new or old for new, old in zip(found, known, strict=True)))
        return self._latest

    def profile(self, profile_id: int) -> JSON:
        """A stored profile (profiles never change: the champion's is read once)."""
        if profile_id not in self._profiles:
            self._profiles = {profile_id: self.project.store.profiles.get(profile_id).profile}
        return self._profiles[profile_id]

    def evaluate(self, live: entities.ModelVersion | None) -> list[entities.Evaluation]:
        """Score the champion on every accepted batch newer than its training data and not
        scored yet (the champion's model is loaded only if there is such a batch)."""
        self.evaluations.refresh()
        if live is None or not len(self.history):
            return []
        done_upto = self.evaluations.last_batch_id()
        trained_upto = int(live.metrics.get("data_upto_batch", max(live.batch_ids, default=0)))
        pending = self.history.batches(after_id=max(done_upto, trained_upto))
        model = self.models.live_model(live) if pending else None
        if model is None:
            return []
        scored = []
        for batch in pending:
            rows = self.history.of(batch.id)
            origins = self.history.origins(batch.id)
            calibrator = None
            if origins is None:
                pairs = [(live.version, model, rows)]
                calibrator = self.models.calibrator(live)
            else:  # late labels: their rows were estimated when they arrived
                pairs = self.late_pairs(rows, origins)
            for number, scorer, part in pairs:
                evaluation = evaluate.evaluate_batch(
                    self.project, scorer, number, batch, part, calibrator
                )
                scored.append(evaluation)
                self.evaluations.add(evaluation)
        return scored

    def evaluate_feedback(self) -> list[entities.Evaluation]:
        """Labels that came back through the server become evaluations too."""
        scored = evaluate.evaluate_feedback(self.project, self._serving)
        for evaluation in scored:
            self.evaluations.add(evaluation)
        return scored

    def late_pairs(self, rows: Any, origins: Any) -> list[tuple[int, Any, Any]]:
        """Late labels are scored by the model that was live when their rows arrived (the one
        that evaluated those rows then); rows from before any champion are not scored."""
        served = {e.batch_id: e.version for e in self.evaluations.items if e.batch_id is not None}
        pairs = []
        for number in sorted({served[o] for o in set(origins.tolist()) if o in served}):
            mask = [served.get(o) == number for o in origins.tolist()]
            pairs.append((number, self.models.model_of(number), rows[mask]))
        return pairs

    def decide(
        self, live: entities.ModelVersion | None, latest: Latest
    ) -> entities.Decision | None:
        """Evaluate the policy if anything is new since the last decision, and record it.

        What is new is told from records first (batch ids, the newest request, the clock for
        a schedule, an unusable champion); only then are the signals gathered (rows, drift,
        the live window), so a step with nothing new reads no rows."""
        store, name = self.project.store, self.project.name
        last = latest.decision
        seen = int(last.evidence.get("last_batch_id", 0)) if last else 0
        unusable = self.models.unusable_champion(live)
        is_new = (
            last is None
            or bool(self.history.batch_ids(after_id=seen))
            or (unusable is not None and last.evidence.get(champion_models.UNUSABLE) != unusable)
        )
        if not is_new and not self.policy.fires_without_new_data(
            policy_signals.Signals(
                now=self.project.clock.now(),
                has_champion=live is not None,
                last_training_at=latest.fired.at if latest.fired else None,
                last_decision_at=last.at if last else None,
                manual=gathering.pending(latest.request, last) is not None,
            )
        ):
            return None
        if last is None and not len(self.history):
            return None  # nothing to decide on yet
        gathered = gathering.gather(
            self.project,
            self.history,
            live,
            self.profile,
            self._monitor,
            last,
            latest.fired,
            latest.request,
        )
        verdict = self.policy.decide(gathered.signals)
        # On unchanged data only a request or a schedule occurrence is news; anything else
        # would re-decide on the same evidence (retries of a decision are `retry_unfinished`'s).
        if not is_new and not (
            verdict.fire and set(verdict.fired_kinds) & set(policies.WITHOUT_NEW_DATA)
        ):
            return None
        last_eval = self.evaluations.last()
        evidence = {
            "policy": verdict.to_json(),
            "last_batch_id": gathered.last_batch_id,
            "last_evaluation_id": last_eval.id if last_eval else 0,
            "signals": gathered.signals.to_json(),
            "drift": gathered.signals.drift,
        }
        if unusable is not None:
            evidence[champion_models.UNUSABLE] = unusable
        return store.decisions.add(
            name,
            kind="retrain",
            fired=verdict.fire,
            evidence=evidence,
            caused_by=gathered.caused_by,
        )

    def trains(self) -> bool:
        """Whether this controller trains: a federated pipeline's (`trainer.federated`) trains
        only within a federated round (`controller.federation`), whose executor takes part in
        it; until then a fired decision waits, and the round acts on it."""
        if self.project.spec.trainer.federated is None:
            return True
        from driftloop.train import federated_executor

        return isinstance(self.executor, federated_executor.FederatedExecutor)

    def act(self, decision: entities.Decision) -> retrain.Outcome:
        """Retrain for `decision`; the gate compares with the champion if it can be loaded."""
        rows = self.history.rows()
        live = self.models.usable(self.models.champion())
        model = self.models.live_model(live) if live is not None else None
        champion = (live, model) if live is not None and model is not None else None
        outcome = retrain.retrain(
            self.project, decision, rows, champion, self.executor, self.holder, self.renew_lease
        )
        number = self.project.store.aliases.get(self.project.name, "champion")
        if outcome.version is not None and number == outcome.version.version:
            self.models.installed(outcome.version, outcome.model)
        return outcome

    def renew_lease(self) -> None:
        """Keep the lease before a write that must happen once (a training can be long);
        `ConflictError` if another controller took it meanwhile (this one then stops)."""
        store, name = self.project.store, self.project.name
        if store.leases.acquire(name, self.holder, self.lease_ttl) is None:
            raise errors.ConflictError(
                "the lease was lost during the tick; another controller carries on",
                pipeline=name,
                holder=self.holder,
            )

    def retry_unfinished(self, last_fired: entities.Decision | None) -> retrain.Outcome | None:
        """A fired decision without a succeeded run is retried until it has
        `attempts.MAX_ATTEMPTS` failed runs of the current trainer (`controller.attempts`)."""
        if last_fired is None or last_fired.id in self._settled or not self.trains():
            return None
        runs = self.project.store.runs.list(self.project.name, decision_id=last_fired.id)
        if any(run.status == "succeeded" for run in runs):
            self._settled.add(last_fired.id)  # for good: runs are only ever added or finished
            return None
        trainer = fingerprint.trainer_sha256(self.project.spec.trainer, self.project.base_dir)
        if attempts.gave_up(runs, trainer) is not None:
            return None  # until a new decision, or a changed trainer
        return self.act(last_fired)


def build_controller(
    project: projects.Project, **options: Any
) -> Controller | online_tick.OnlineController:
    """The controller the pipeline needs: `online_tick.OnlineController` with an `online:`
    section (imported only then: it brings river), else `Controller` (`options` go to it:
    holder, lease_ttl, executor, retain)."""
    if project.spec.online is not None:
        from driftloop.controller import online_tick

        options.pop("executor", None)
        return online_tick.OnlineController(project, **options)
    return Controller(project, **options)


def _kind(decision: entities.Decision | None) -> str:
    if decision is None:
        return "none"
    return f"{decision.kind} ({'fired' if decision.fired else 'not fired'})"


def _outcome(outcome: retrain.Outcome | None) -> str:
    if outcome is None:
        return "no training"
    made = "no version" if outcome.version is None else f"v{outcome.version.version}"
    return (f"training {outcome.run.status}: {made}, "
            f"{'promoted' if outcome.promoted else 'not promoted'} ({outcome.reason})")
