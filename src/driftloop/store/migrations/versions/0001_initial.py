"""Initial schema: pipelines, cursors, batches, profiles, decisions, runs and their lineage,
metrics, model versions, evaluations, aliases and their moves, the audit log, leases.

Revision ID: 0001
Revises:
Create Date: 2024-06-01

Written out in plain SQLAlchemy types (not imported from `tables.py`) so the revision stays
what it was when later revisions change the tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _id() -> sa.Column[int]:
    return sa.Column("id", ID, primary_key=True, autoincrement=True)


def _pipeline(table: str, primary_key: bool = False) -> sa.Column[int]:
    return sa.Column(
        "pipeline_id", ID,
        sa.ForeignKey("pipelines.id", name=f"fk_{table}_pipeline_id_pipelines", ondelete="CASCADE"),
        nullable=False, primary_key=primary_key,
    )


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKey:
    return sa.ForeignKey(f"{target}.id", name=f"fk_{table}_{column}_{target}", ondelete=ondelete)


def upgrade() -> None:
    op.create_table(
        "pipelines", _id(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("schema", JSON, nullable=True),
        sa.Column("last_version", sa.Integer, nullable=False, server_default="0"),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_pipelines"),
        sa.UniqueConstraint("name", name="uq_pipelines_name"),
    )
    op.create_table(
        "cursors", _pipeline("cursors", primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("value", JSON, nullable=True),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("pipeline_id", "key", name="pk_cursors"),
    )
    op.create_table(
        "batches", _id(), _pipeline("batches"),
        sa.Column("source_uri", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        _time("start", nullable=True),
        _time("end", nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reasons", JSON, nullable=False),
        sa.Column("data_uri", sa.Text, nullable=True),
        sa.Column("data_sha256", sa.String(64), nullable=True),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_batches"),
        sa.UniqueConstraint(
            "pipeline_id", "fingerprint", name="uq_batches_pipeline_id_fingerprint",
        ),
    )
    op.create_index("ix_batches_pipeline_id_status_id", "batches", ["pipeline_id", "status", "id"])
    op.create_table(
        "profiles", _id(), _pipeline("profiles"),
        sa.Column(
            "batch_id", ID, _fk("profiles", "batch_id", "batches", "SET NULL"), nullable=True,
        ),
        sa.Column("profile", JSON, nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_profiles"),
    )
    op.create_table(
        "decisions", _id(), _pipeline("decisions"),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("fired", sa.Boolean, nullable=False),
        sa.Column("evidence", JSON, nullable=False),
        sa.Column("caused_by", JSON, nullable=True),
        _time("at"),
        sa.PrimaryKeyConstraint("id", name="pk_decisions"),
    )
    op.create_index("ix_decisions_pipeline_id_kind_id", "decisions", ["pipeline_id", "kind", "id"])
    op.create_table(
        "runs", _id(), _pipeline("runs"),
        sa.Column("trainer", sa.String(200), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column(
            "decision_id", ID, _fk("runs", "decision_id", "decisions", "SET NULL"), nullable=True,
        ),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("compute_seconds", sa.Double, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        _time("started_at"),
        _time("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_index("ix_runs_pipeline_id_status", "runs", ["pipeline_id", "status"])
    op.create_table(
        "run_batches",
        sa.Column("run_id", ID, _fk("run_batches", "run_id", "runs", "CASCADE"), nullable=False),
        sa.Column(
            "batch_id", ID, _fk("run_batches", "batch_id", "batches", "CASCADE"), nullable=False,
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "batch_id", name="pk_run_batches"),
    )
    op.create_table(
        "metrics", _id(),
        sa.Column("run_id", ID, _fk("metrics", "run_id", "runs", "CASCADE"), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Double, nullable=True),
        sa.Column("step", sa.BigInteger, nullable=False),
        _time("at"),
        sa.PrimaryKeyConstraint("id", name="pk_metrics"),
    )
    op.create_index("ix_metrics_run_id_key_step", "metrics", ["run_id", "key", "step"])
    op.create_table(
        "model_versions", _id(), _pipeline("model_versions"),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column(
            "run_id", ID, _fk("model_versions", "run_id", "runs", "SET NULL"), nullable=True,
        ),
        sa.Column("artifact_uri", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("metrics", JSON, nullable=False),
        sa.Column(
            "profile_id", ID, _fk("model_versions", "profile_id", "profiles", "SET NULL"),
            nullable=True,
        ),
        sa.Column("gate_report", JSON, nullable=True),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
        sa.UniqueConstraint(
            "pipeline_id", "version", name="uq_model_versions_pipeline_id_version",
        ),
    )
    op.create_index("ix_model_versions_run_id", "model_versions", ["run_id"])
    op.create_table(
        "aliases", _pipeline("aliases", primary_key=True),
        sa.Column("alias", sa.String(50), primary_key=True),
        sa.Column("version", sa.Integer, nullable=True),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("pipeline_id", "alias", name="pk_aliases"),
    )
    op.create_table(
        "alias_moves", _id(), _pipeline("alias_moves"),
        sa.Column("alias", sa.String(50), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("previous", sa.Integer, nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        _time("at"),
        sa.PrimaryKeyConstraint("id", name="pk_alias_moves"),
    )
    op.create_index(
        "ix_alias_moves_pipeline_id_alias_id", "alias_moves", ["pipeline_id", "alias", "id"],
    )
    op.create_table(
        "evaluations", _id(), _pipeline("evaluations"),
        sa.Column(
            "batch_id", ID, _fk("evaluations", "batch_id", "batches", "SET NULL"), nullable=True,
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("metric", sa.String(100), nullable=False),
        sa.Column("value", sa.Double, nullable=True),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("errors", JSON, nullable=False),
        _time("at"),
        sa.PrimaryKeyConstraint("id", name="pk_evaluations"),
    )
    op.create_index(
        "ix_evaluations_pipeline_id_version_id", "evaluations", ["pipeline_id", "version", "id"],
    )
    op.create_table(
        "audit_log", _id(),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("target", sa.String(400), nullable=False),
        sa.Column("details", JSON, nullable=True),
        _time("at"),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_action", "audit_log", ["action"])
    op.create_index("ix_audit_log_target", "audit_log", ["target"])
    op.create_table(
        "leases",
        sa.Column("pipeline", sa.String(200), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("token", sa.BigInteger, nullable=False),
        _time("expires_at"),
        sa.PrimaryKeyConstraint("pipeline", name="pk_leases"),
    )


def downgrade() -> None:
    for table in (
        "leases", "audit_log", "evaluations", "alias_moves", "aliases", "model_versions", "metrics",
        "run_batches", "runs", "decisions", "profiles", "batches", "cursors", "pipelines",
    ):
        op.drop_table(table)
