"""What the metadata store hands out: frozen dataclasses, one per stored concept.

Every layer above the store reads these; none of them sees a database row. Times are aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from driftloop.core.types import JSON, BatchStatus, RunStatus


@dataclass(frozen=True)
class Pipeline:
    id: int
    name: str
    spec: JSON
    schema: JSON | None
    created_at: datetime


@dataclass(frozen=True)
class Batch:
    """One ingested unit of data, kept as a Parquet artifact (`data_uri`): an accepted batch
    its rows coerced to the schema, a quarantined one its rows as the source read them (so
    `driftloop batches requeue` can validate them again; None when they could not be read).

    `reasons` say why a batch was quarantined; `quality` lists the data-quality signals of
    an accepted one per column (values beyond the first data's range, new categories, more
    missing values), `quality_rows` how many of its rows carry one. `spec_sha256` names the
    validation settings it was judged under; `requeued_from` the quarantined batch a requeue
    accepted as this one (whose status is then ``requeued``).
    """

    id: int
    pipeline: str
    source_uri: str
    fingerprint: str
    rows: int
    start: datetime | None
    end: datetime | None
    status: BatchStatus
    reasons: dict[str, list[str]]
    data_uri: str | None
    data_sha256: str | None
    created_at: datetime
    quality: dict[str, list[str]] = field(default_factory=dict)
    quality_rows: int = 0
    spec_sha256: str | None = None
    requeued_from: int | None = None
    archived_at: datetime | None = None
    region: str | None = None
    """The region it was ingested in (`regions:`); None for a pipeline without regions."""


@dataclass(frozen=True)
class Profile:
    """A statistical summary of some data (a batch, or a model's training set)."""

    id: int
    pipeline: str
    batch_id: int | None
    profile: JSON
    created_at: datetime


@dataclass(frozen=True)
class TrainingRun:
    """One training. A run a stopped controller left unfinished is "interrupted" (not
    "failed"), one whose federated round did not run "postponed"; `trainer_sha256` identifies
    the trainer's code and settings (`train.fingerprint`), None on runs recorded before the
    store kept it."""

    id: int
    pipeline: str
    trainer: str
    params: JSON
    batch_ids: tuple[int, ...]
    decision_id: int | None
    status: RunStatus
    compute_seconds: float | None
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    trainer_sha256: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class MetricPoint:
    run_id: int
    key: str
    value: float
    step: int
    at: datetime


@dataclass(frozen=True)
class TrialRecord:
    """One trial of a run's hyperparameter search: the model family, the sampled parameters,
    the validation score (None if the trial failed, with `error`) and its cost."""

    number: int
    family: str
    params: JSON
    score: float | None
    cpu_seconds: float
    wall_seconds: float
    error: str | None = None


@dataclass(frozen=True)
class Trial:
    """A stored `TrialRecord`, with the run it belongs to and when it was recorded."""

    run_id: int
    number: int
    family: str
    params: JSON
    score: float | None
    cpu_seconds: float
    wall_seconds: float
    error: str | None
    at: datetime


@dataclass(frozen=True)
class ModelVersion:
    """A trained model: its artifact, its metrics, and what it came from."""

    id: int
    pipeline: str
    version: int
    run_id: int | None
    artifact_uri: str
    sha256: str
    metrics: JSON
    profile_id: int | None
    gate_report: JSON | None
    created_at: datetime
    batch_ids: tuple[int, ...] = field(default=())
    calibration_uri: str | None = None
    """The confidence calibrator (`train.calibration`), stored like the model; None: none."""
    calibration_sha256: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class Transfer:
    """A model version exported to another format, or a model imported from one.

    An export keeps the exported file as an artifact (`artifact_uri`, `sha256`; None for a
    folder written only outside the store) and whether it `passed` its parity check, with the
    figures in `report`; an import says in `location` where the model came from."""

    id: int
    pipeline: str
    version: int
    direction: str
    format: str
    location: str
    artifact_uri: str | None
    sha256: str | None
    passed: bool
    report: JSON
    actor: str
    at: datetime

@dataclass(frozen=True)
class AliasMove:
    """One move of an alias (champion, challenger, shadow, canary); the history is all moves."""

    id: int
    pipeline: str
    alias: str
    version: int | None
    previous: int | None
    actor: str
    reason: str
    at: datetime
    action: str = "promote"
    """What the move was: "promote", "rollback", "rollout", "rollout.end", ... (moves recorded
    before the store kept it read as "promote")."""


@dataclass(frozen=True)
class Decision:
    """What the policy decided at one point, fired or not, and the evidence it went on."""

    id: int
    pipeline: str
    kind: str
    fired: bool
    evidence: JSON
    caused_by: JSON
    at: datetime


@dataclass(frozen=True)
class Finding:
    """A responsible-AI record: the fairness report of a labelled batch (`kind` "fairness"),
    the explanation of a model version ("explanation"), or how much a version's explanation
    moved from the champion's when it was trained ("explanation_drift"). `value` is the
    headline number (worst demographic parity difference, top importance, distance),
    `report` the evidence."""

    id: int
    pipeline: str
    kind: str
    batch_id: int | None
    version: int | None
    value: float | None
    report: JSON
    at: datetime


@dataclass(frozen=True)
class Evaluation:
    """How a model version scored on one batch's labelled rows, with the per-row errors
    (0/1 misclassification or absolute error) that feed the concept-drift detector.

    `estimated_value` is the accuracy estimated from the model's calibrated confidences on all
    `estimated_rows` rows of the batch before any label was looked at (CBPE); None for models
    without a calibrator. `value` is None when the batch had no labels."""

    id: int
    pipeline: str
    batch_id: int | None
    version: int
    metric: str
    value: float | None
    rows: int
    errors: tuple[float, ...]
    at: datetime
    estimated_value: float | None = None
    estimated_rows: int = 0


@dataclass(frozen=True)
class AuditEntry:
    id: int
    actor: str
    action: str
    target: str
    details: JSON
    at: datetime


@dataclass(frozen=True)
class Lease:
    """Who may act on a pipeline until when; `token` grows with every new holder (fencing)."""

    pipeline: str
    holder: str
    token: int
    expires_at: datetime
