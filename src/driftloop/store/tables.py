"""The metadata schema: every table of the store, on one `MetaData`.

`store.metadata.MetadataStore` queries these tables; the Alembic migrations in
`store/migrations/versions/` create them (a test checks that both agree). Their column
types (JSON, ids, aware UTC times on every backend) are in `store.column_types`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from driftloop.store import column_types

C = column_types

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)


def _pipeline_fk(**kwargs: Any) -> sa.Column[int]:
    return sa.Column(
        "pipeline_id", C.Id, sa.ForeignKey("pipelines.id", ondelete="CASCADE"), nullable=False,
        **kwargs,
    )


pipelines = sa.Table(
    "pipelines", metadata,
    sa.Column("id", C.Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("spec", C.Json, nullable=False),
    sa.Column("schema", C.Json, nullable=True),
    sa.Column("last_version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", C.UTCDateTime, nullable=False),
)

cursors = sa.Table(
    "cursors", metadata,
    _pipeline_fk(primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("value", C.Json, nullable=True),
    sa.Column("updated_at", C.UTCDateTime, nullable=False),
)

batches = sa.Table(
    "batches", metadata,
    sa.Column("id", C.Id, primary_key=True, autoincrement=True),
    _pipeline_fk(),
    sa.Column("source_uri", sa.Text, nullable=False),
    sa.Column("fingerprint", sa.String(128), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("start", C.UTCDateTime, nullable=True),
    sa.Column("end", C.UTCDateTime, nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("reasons", C.Json, nullable=False),
    sa.Column("data_uri", sa.Text, nullable=True),
    sa.Column("data_sha256", sa.String(64), nullable=True),
    sa.Column("created_at", C.UTCDateTime, nullable=False),
    # {"columns": {column: [messages]}, "rows": n}: data-quality signals; NULL before 0008
    sa.Column("quality", C.Json, nullable=True),
    sa.Column("spec_sha256", sa.String(64), nullable=True),  # the validation settings used
    sa.Column(
        "requeued_from", C.Id, sa.ForeignKey("batches.id", ondelete="SET NULL"), nullable=True,
    ),
    # when retention moved the batch's file to the archive (data_uri then names the archived
    # file) or deleted it (data_uri NULL); NULL: the file is where ingest put it
    sa.Column("archived_at", C.UTCDateTime, nullable=True),
    sa.Column("region", sa.String(100), nullable=True),  # `regions:`; NULL without (0011)
    sa.UniqueConstraint("pipeline_id", "fingerprint"),
    sa.Index(None, "pipeline_id", "status", "id"),
    sa.Index(None, "data_sha256"),  # the batches that share a file (0015)
)

batch_messages = sa.Table(
    # The stream messages (Redis entry ids, JetStream sequences) each batch was made of: a
    # message redelivered after a crash is recognised here and never recorded twice.
    "batch_messages", metadata,
    _pipeline_fk(primary_key=True),
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("message", sa.String(100), primary_key=True),
    sa.Column("batch_id", C.Id, sa.ForeignKey("batches.id", ondelete="CASCADE"), nullable=False),
    sa.Index(None, "batch_id"),
)

uploads = sa.Table(
    # Bodies posted to `POST /v1/batches`, kept until the lease holder records them as a batch
    # (`controller.ingest.ingest_uploads`); `key` is the client's batch id or the body's sha256.
    "uploads", metadata,
    sa.Column("id", C.Id, primary_key=True, autoincrement=True),
    _pipeline_fk(),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("format", sa.String(20), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=True),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("received_at", C.UTCDateTime, nullable=False),
    sa.Column("batch_id", C.Id, sa.ForeignKey("batches.id", ondelete="CASCADE"), nullable=True),
    sa.UniqueConstraint("pipeline_id", "key"),
    sa.Index(None, "pipeline_id", "batch_id", "id"),
)

profiles = sa.Table(
    "profiles", metadata,
    sa.Column("id", C.Id, primary_key=True, autoincrement=True),
    _pipeline_fk(),
    sa.Column("batch_id", C.Id, sa.ForeignKey("batches.id", ondelete="SET NULL"), nullable=True),
    sa.Column("profile", C.Json, nullable=False),
    sa.Column("created_at", C.UTCDateTime, nullable=False),
)

decisions = sa.Table(
    "decisions", metadata,
    sa.Column("id", C.Id, primary_key=True, autoincrement=True),
    _pipeline_fk(),
    sa.Column("kind", sa.String(50), nullable=False),
    sa.Column("fired", sa.Boolean, nullable=False),
    sa.Column("evidence", C.Json, nullable=False),
    sa.Column("caused_by", C.Json, nullable=True),
    sa.Column("at", C.UTCDateTime, nullable=False),
    sa.Index(None, "pipeline_id", "kind", "id"),
    sa.Index(None, "pipeline_id", "id"),  # records after a cursor (0015)
)

runs = sa.Table(
    "runs", metadata,
    sa.Column("id", C.Id, primary_key=True, autoincrement=True),
    _pipeline_fk(),
    sa.Column("trainer", sa.String(200), nullable=False),
    sa.Column("params", C.Json, nullable=False),
    sa.Column(
        "decision_id", C.Id, sa.ForeignKey("decisions.id", ondelete="SET NULL"), nullable=True,
    ),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("compute_seconds", sa.Double, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("started_at", C.UTCDateTime, nullable=False),
    sa.Column("finished_at", C.UTCDateTime, nullable=True),
    # which trainer ran: sha256 of its source file and the spec's trainer section (revision
    # 0007; NULL on older runs)
    sa.Column("trainer_sha256", sa.String(64), nullable=True),
    sa.Column("region", sa.String(100), nullable=True),
    sa.Index(None, "pipeline_id", "status"),
    sa.Index(None, "decision_id"),  # the runs a decision caused (0015)
)

run_batches = sa.Table(
    "run_batches", metadata,
    sa.Column(
        "run_id", C.Id, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True,
    ),
    sa.Column(
        "batch_id", C.Id, sa.ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True,
    ),
    sa.Column("position", sa.Integer, nullable=False),
)

metrics = sa.Table(
    "metrics", metadata,
    sa.Column("id", C.Id, primary_key=True, autoincrement=True),
    sa.Column("run_id", C.Id, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("value", sa.Double, nullable=True),  # SQLite stores NaN as NULL
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("at", C.UTCDateTime, nullable=False),
    sa.Index(None, "run_id", "key", "step"),
)

trials = sa.Table(
    "trials", metadata,
    sa.Column("run_id", C.Id, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("family", sa.String(200), nullable=False),
    sa.Column("params", C.Json, nullable=False),
    sa.Column("score", sa.Double, nullable=True),  # None: the trial failed (see `error`)
    sa.Column("cpu_seconds", sa.Double, nullable=False),
    sa.Column("wall_seconds", sa.Double, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("at", C.UTCDateTime, nullable=False),
)
"""The trials of a run's hyperparameter search (`trainer.search`), one row per trial."""

model_versions = sa.Table(
    "model_versions", metadata,
    sa.Column("id", C.Id, primary_key=True, autoincrement=True),
    _pipeline_fk(),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("run_id", C.Id, sa.ForeignKey("runs.id", ondelete="SET NULL"), nullable=True),
    sa.Column("artifact_uri", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("metrics", C.Json, nullable=False),
    sa.Column(
        "profile_id", C.Id, sa.ForeignKey("profiles.id", ondelete="SET NULL"), nullable=True,
    ),
    sa.Column("gate_report", C.Json, nullable=True),
    sa.Column("created_at", C.UTCDateTime, nullable=False),
    # the confidence calibrator (`train.calibration`), an artifact like the model; NULL: none
    sa.Column("calibration_uri", sa.Text, nullable=True),
    sa.Column("calibration_sha256", sa.String(64), nullable=True),
    sa.Column("region", sa.String(100), nullable=True),
    sa.UniqueConstraint("pipeline_id", "version"),
    sa.Index(None, "run_id"),
    sa.Index(None, "profile_id"),  # 0015
)

aliases = sa.Table(
    "aliases", metadata,
    _pipeline_fk(primary_key=True),
    sa.Column("alias", sa.String(50), primary_key=True),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("updated_at", C.UTCDateTime, nullable=False),
)

alias_moves = sa.Table(
    "alias_moves", metadata,
    sa.Column("id", C.Id, primary_key=True, autoincrement=True),
    _pipeline_fk(),
    sa.Column("alias", sa.String(50), nullable=False),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("previous", sa.Integer, nullable=True),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", C.UTCDateTime, nullable=False),
    # "promote", "rollback", "rollout", ...; NULL on moves older than revision 0006 ("promote")
    sa.Column("action", sa.String(100), nullable=True),
    sa.Index(None, "pipeline_id", "alias", "id"),
    sa.Index(None, "pipeline_id", "id"),  # moves after a cursor (0015)
)

evaluations = sa.Table(
    "evaluations", metadata,
    sa.Column("id", C.Id, primary_key=True, autoincrement=True),
    _pipeline_fk(),
    sa.Column("batch_id", C.Id, sa.ForeignKey("batches.id", ondelete="SET NULL"), nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("metric", sa.String(100), nullable=False),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("errors", C.Json, nullable=False),
    sa.Column("at", C.UTCDateTime, nullable=False),
    # accuracy estimated from calibrated confidences on all the batch's rows (labels unused)
    sa.Column("estimated_value", sa.Double, nullable=True),
    sa.Column("estimated_rows", sa.BigInteger, nullable=True),
    sa.Index(None, "pipeline_id", "version", "id"),
    sa.Index(None, "pipeline_id", "id"),  # evaluations after a cursor (0015)
)

findings = sa.Table(
    "findings", metadata,
    sa.Column("id", C.Id, primary_key=True, autoincrement=True),
    _pipeline_fk(),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("batch_id", C.Id, sa.ForeignKey("batches.id", ondelete="SET NULL"), nullable=True),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("report", C.Json, nullable=False),
    sa.Column("at", C.UTCDateTime, nullable=False),
    sa.Index(None, "pipeline_id", "kind", "id"),
)
"""Fairness reports of batches, explanations of versions and their drift (`Finding`)."""

audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("id", C.Id, primary_key=True, autoincrement=True),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(100), nullable=False),
    sa.Column("target", sa.String(400), nullable=False),
    sa.Column("details", C.Json, nullable=True),
    sa.Column("at", C.UTCDateTime, nullable=False),
    sa.Index(None, "action"),
    sa.Index(None, "target"),
)

notifications = sa.Table(
    # The webhook outbox (`store.outbox`): one row per (hook, event), written in the transaction
    # that moves the hook's cursors past the event, so an event is queued once and never lost.
    "notifications", metadata,
    sa.Column("id", C.Id, primary_key=True, autoincrement=True),
    _pipeline_fk(),
    sa.Column("hook", sa.String(64), nullable=False),
    sa.Column("event", sa.String(50), nullable=False),
    sa.Column("event_key", sa.String(200), nullable=False),
    sa.Column("payload", C.Json, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # pending, sent, dead
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_at", C.UTCDateTime, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", C.UTCDateTime, nullable=False),
    sa.Column("sent_at", C.UTCDateTime, nullable=True),
    sa.UniqueConstraint("pipeline_id", "hook", "event_key"),
    sa.Index(None, "pipeline_id", "status", "next_at"),
)

notes = sa.Table(
    # Notes people leave on a model version, a decision or a batch (`store.notes`).
    "notes", metadata,
    sa.Column("id", C.Id, primary_key=True, autoincrement=True),
    _pipeline_fk(),
    sa.Column("target", sa.String(20), nullable=False),  # version, decision, batch
    sa.Column("target_id", sa.BigInteger, nullable=False),
    sa.Column("author", sa.String(200), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("at", C.UTCDateTime, nullable=False),
    sa.Index(None, "pipeline_id", "target", "target_id"),
)

archives = sa.Table(
    # Files retention wrote to the artifact store (`store.archive`): predictions of one day, or
    # one batch's rows; `deleted_at` is set when `driftloop gc` removed the file.
    "archives", metadata,
    sa.Column("id", C.Id, primary_key=True, autoincrement=True),
    _pipeline_fk(),
    sa.Column("kind", sa.String(20), nullable=False),  # "predictions" or "batch"
    sa.Column("day", sa.String(10), nullable=False),  # YYYY-MM-DD (UTC) of its rows
    sa.Column("uri", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("batch_id", C.Id, sa.ForeignKey("batches.id", ondelete="SET NULL"), nullable=True),
    sa.Column("first_at", C.UTCDateTime, nullable=True),
    sa.Column("last_at", C.UTCDateTime, nullable=True),
    sa.Column("created_at", C.UTCDateTime, nullable=False),
    sa.Column("deleted_at", C.UTCDateTime, nullable=True),
    sa.Index(None, "pipeline_id", "kind", "day"),
)

leases = sa.Table(
    "leases", metadata,
    sa.Column("pipeline", sa.String(200), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("token", sa.BigInteger, nullable=False),
    sa.Column("expires_at", C.UTCDateTime, nullable=False),
)


model_transfers = sa.Table(
    "model_transfers", metadata,
    sa.Column("id", C.Id, primary_key=True, autoincrement=True),
    sa.Column(
        "pipeline_id", C.Id, sa.ForeignKey("pipelines.id", ondelete="CASCADE"), nullable=False,
    ),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("direction", sa.String(10), nullable=False),  # "export" or "import"
    sa.Column("format", sa.String(20), nullable=False),  # "onnx", "mlflow"
    sa.Column("location", sa.Text, nullable=False),  # the file or folder written or read
    sa.Column("artifact_uri", sa.Text, nullable=True),  # the exported file, kept like a model
    sa.Column("sha256", sa.String(64), nullable=True),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("report", C.Json, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("at", C.UTCDateTime, nullable=False),
    sa.Index(None, "pipeline_id", "version"),
)
"""Exports of a model version to another format (with their parity report) and imports of a
model from one (where from); `store.transfers` reads and writes them."""

# The serving tables live in their own module but on the same metadata (imported last, so
# `metadata` above exists when it runs).
from driftloop.store import serving_tables as serving_tables  # noqa: E402
