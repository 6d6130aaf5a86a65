"""Uploads: bodies posted to `POST /v1/batches`, kept until the pipeline's lease holder records
each as a batch, and afterwards (without their bytes) as the record of which client batch id
became which batch.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

Written out in plain SQLAlchemy types (not imported from `tables.py`) so the revision stays
what it was when later revisions change the table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column(
            "pipeline_id", ID,
            sa.ForeignKey("pipelines.id", name="fk_uploads_pipeline_id_pipelines",
                          ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("format", sa.String(20), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "batch_id", ID,
            sa.ForeignKey("batches.id", name="fk_uploads_batch_id_batches", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id", name="pk_uploads"),
        sa.UniqueConstraint("pipeline_id", "key", name="uq_uploads_pipeline_id_key"),
    )
    op.create_index(
        "ix_uploads_pipeline_id_batch_id_id", "uploads", ["pipeline_id", "batch_id", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_uploads_pipeline_id_batch_id_id", table_name="uploads")
    op.drop_table("uploads")
