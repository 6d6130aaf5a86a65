"""The webhook outbox: one row per (hook, event) with its delivery state (`store.outbox`);
the region (`regions:`) each batch, run and model version was made in; notes on versions,
decisions and batches (`store.notes`).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04

Written out in plain SQLAlchemy types (not imported from `tables.py`) so the revision stays
what it was when later revisions change the tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


_REGIONAL = ("batches", "runs", "model_versions")


def upgrade() -> None:
    for table in _REGIONAL:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("region", sa.String(100), nullable=True))
    op.create_table(
        "notifications",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "pipeline_id", _ID,
            sa.ForeignKey("pipelines.id", name="fk_notifications_pipeline_id_pipelines",
                          ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("hook", sa.String(64), nullable=False),
        sa.Column("event", sa.String(50), nullable=False),
        sa.Column("event_key", sa.String(200), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.UniqueConstraint(
            "pipeline_id", "hook", "event_key", name="uq_notifications_pipeline_id_hook_event_key"
        ),
    )
    op.create_index(
        "ix_notifications_pipeline_id_status_next_at", "notifications",
        ["pipeline_id", "status", "next_at"],
    )
    op.create_table(
        "notes",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "pipeline_id", _ID,
            sa.ForeignKey("pipelines.id", name="fk_notes_pipeline_id_pipelines",
                          ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("target", sa.String(20), nullable=False),
        sa.Column("target_id", sa.BigInteger, nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notes"),
    )
    op.create_index(
        "ix_notes_pipeline_id_target_target_id", "notes", ["pipeline_id", "target", "target_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_notes_pipeline_id_target_target_id", table_name="notes")
    op.drop_table("notes")
    op.drop_index("ix_notifications_pipeline_id_status_next_at", table_name="notifications")
    op.drop_table("notifications")
    for table in _REGIONAL:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("region")
