"""Batch messages: the stream messages (Redis entry ids, JetStream sequences) each batch was
made of, so a message delivered again after a crash is recognised and not recorded twice.

Revision ID: 0004
Revises: 0003
Create Date: 2024-08-01

Written out in plain SQLAlchemy types (not imported from `tables.py`) so the revision stays
what it was when later revisions change the tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "batch_messages",
        sa.Column(
            "pipeline_id", ID,
            sa.ForeignKey("pipelines.id", name="fk_batch_messages_pipeline_id_pipelines",
                          ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("message", sa.String(100), nullable=False),
        sa.Column(
            "batch_id", ID,
            sa.ForeignKey("batches.id", name="fk_batch_messages_batch_id_batches",
                          ondelete="CASCADE"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("pipeline_id", "source", "message", name="pk_batch_messages"),
    )
    op.create_index("ix_batch_messages_batch_id", "batch_messages", ["batch_id"])


def downgrade() -> None:
    op.drop_index("ix_batch_messages_batch_id", table_name="batch_messages")
    op.drop_table("batch_messages")
