"""Retention: the archive (files retention wrote to the artifact store: predictions of a day,
a batch's rows, with their sha256) and when a batch's file was archived or deleted.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04

Written out in plain SQLAlchemy types (not imported from `tables.py`) so the revision stays
what it was when later revisions change the tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "archives",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column(
            "pipeline_id", ID,
            sa.ForeignKey("pipelines.id", name="fk_archives_pipeline_id_pipelines",
                          ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("uri", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column(
            "batch_id", ID,
            sa.ForeignKey("batches.id", name="fk_archives_batch_id_batches", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("first_at", WHEN, nullable=True),
        sa.Column("last_at", WHEN, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("deleted_at", WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_archives"),
    )
    op.create_index(
        "ix_archives_pipeline_id_kind_day", "archives", ["pipeline_id", "kind", "day"])
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("archived_at", WHEN, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("archived_at")
    op.drop_index("ix_archives_pipeline_id_kind_day", table_name="archives")
    op.drop_table("archives")
