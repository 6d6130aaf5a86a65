"""Where each pipeline stands, for `driftloop status`: champion, last activity, pending
decisions, a retraining the loop gave up on, recent quarantines, and who holds the lease.

Only the metadata store is read (a dozen indexed queries a pipeline): no model is loaded and
nothing heavy imported, so it answers in well under a second when something looks wrong.

Ticks are not recorded as such; the last tick is told by what it left: the newest decision,
training run, batch or evaluation, whichever is newest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from driftloop.controller import attempts
from driftloop.store import metadata, summaries

QUARANTINE_WINDOW = timedelta(days=1)


@dataclass(frozen=True)
class Champion:
    version: int
    since: datetime | None
    metric: str
    validation: float | None
    """The champion's score on its gate holdout (None without a gate)."""
    live: float | None
    """Its newest score on new labelled data (None before any)."""


@dataclass(frozen=True)
class Activity:
    """The newest thing a tick left in the store."""

    at: datetime
    kind: str  # decision, run, batch, evaluation
    outcome: str


@dataclass(frozen=True)
class Pending:
    decision: int
    at: datetime
    what: str


@dataclass(frozen=True)
class Quarantines:
    count: int
    newest_at: datetime | None
    newest_reason: str | None


@dataclass(frozen=True)
class Lease:
    holder: str
    expires_at: datetime
    held: bool
    """Whether someone holds it now (not released, not expired)."""


@dataclass(frozen=True)
class PipelineStatus:
    name: str
    champion: Champion | None
    last_activity: Activity | None
    pending: tuple[Pending, ...]
    gave_up: str | None
    quarantined_last_day: Quarantines
    lease: Lease | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (times in ISO 8601, UTC); its keys are stable."""
        document: dict[str, Any] = _plain(asdict(self))
        return document


def pipeline_status(
    store: metadata.MetadataStore, name: str, now: datetime,
    trainer_sha256: str | None = None,
) -> PipelineStatus:
    """Where pipeline `name` stands at `now`. `trainer_sha256` is the current trainer
    (`train.fingerprint`), which tells whether a given-up retraining will be retried; without
    it, the trainer of the newest run is assumed."""
    spec = store.pipelines.get(name).spec
    metric = str((spec.get("gate") or {}).get("metric", "accuracy"))
    gave_up = attempts.latest_give_up(store, name, trainer_sha256)
    count, newest = summaries.quarantined_since(store, name, now - QUARANTINE_WINDOW)
    reason = None
    if newest is not None:
        reason = next((text for texts in newest.reasons.values() for text in texts), None)
    lease = store.leases.get(name)
    return PipelineStatus(
        name=name,
        champion=_champion(store, name, metric),
        last_activity=_last_activity(store, name),
        pending=_pending(store, name, gave_up, trainer_sha256),
        gave_up=None if gave_up is None else gave_up.message(),
        quarantined_last_day=Quarantines(count, newest.created_at if newest else None, reason),
        lease=None if lease is None else Lease(
            lease.holder, lease.expires_at, bool(lease.holder) and lease.expires_at > now),
    )


def _champion(store: metadata.MetadataStore, name: str, metric: str) -> Champion | None:
    number = store.aliases.get(name, "champion")
    if number is None:
        return None
    version = store.versions.get(name, number)
    moves = store.aliases.history(name, "champion", last=1)
    live = store.evaluations.list(name, version=number, last=1)
    validation = version.metrics.get(metric)
    return Champion(
        version=number,
        since=moves[-1].at if moves else version.created_at,
        metric=metric,
        validation=None if validation is None else float(validation),
        live=live[-1].value if live else None,
    )


def _last_activity(store: metadata.MetadataStore, name: str) -> Activity | None:
    found = []
    decisions = store.decisions.list(name, kind="retrain", limit=1)  # requests are not ticks'
    if decisions:
        d = decisions[-1]
        reason = (d.evidence.get("policy") or {}).get("reason", "")
        verdict = "retrain" if d.fired else "no retrain"
        found.append(Activity(d.at, "decision", f"decision {d.id}: {verdict} — {reason}"))
    runs = store.runs.list(name, last=1)
    if runs:
        r = runs[-1]
        error = f": {r.error}" if r.error and r.status != "succeeded" else ""
        found.append(Activity(r.finished_at or r.started_at, "run",
                              f"training run {r.id} {r.status}{error}"))
    batches = summaries.newest_batches(store, name, 1)
    if batches:
        b = batches[0]
        found.append(Activity(b.created_at, "batch", f"batch {b.id} {b.status} ({b.rows} rows)"))
    evaluations = store.evaluations.list(name, last=1)
    if evaluations:
        e = evaluations[-1]
        score = "no labels" if e.value is None else f"{e.metric} {e.value:.4f}"
        where = "labels from serving" if e.batch_id is None else f"batch {e.batch_id}"
        found.append(Activity(e.at, "evaluation", f"v{e.version} scored on {where}: {score}"))
    return max(found, key=lambda activity: activity.at, default=None)


def _pending(
    store: metadata.MetadataStore, name: str, gave_up: attempts.GaveUp | None,
    trainer_sha256: str | None,
) -> tuple[Pending, ...]:
    """A manual request no retrain decision has answered yet, and a fired retrain decision
    still without a succeeded run (unless the loop gave up on it)."""
    newest, fired, request = store.decisions.latest(
        name, (("retrain", None), ("retrain", True), ("request", None)))
    pending = []
    if request is not None and (newest is None or request.id > newest.id):
        who = request.evidence.get("actor", "someone")
        pending.append(Pending(request.id, request.at,
                               f"retraining requested by {who}; the next tick acts on it"))
    if fired is not None and (gave_up is None or gave_up.decision_id != fired.id):
        runs = store.runs.list(name, decision_id=fired.id)
        if not any(run.status == "succeeded" for run in runs):
            trainer = trainer_sha256 or (runs[-1].trainer_sha256 if runs else None) or ""
            failed = len(attempts.failures(runs, trainer))
            state = ("training now" if any(run.status == "running" for run in runs)
                     else f"{failed} failed attempt(s) of {attempts.MAX_ATTEMPTS}; "
                     "the next tick retries")
            pending.append(Pending(fired.id, fired.at, f"retrain decision {fired.id}: {state}"))
    return tuple(pending)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
