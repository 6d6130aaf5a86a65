"""Serving stats: requests, model errors and a latency histogram per minute, server process,
alias and version (what the controller judges a rollout's error rate and p99 latency by).

Revision ID: 0003
Revises: 0002
Create Date: 2024-07-15

Written out in plain SQLAlchemy types (not imported from `serving_tables.py`) so the revision
stays what it was when later revisions change the tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "serving_stats",
        sa.Column(
            "pipeline_id", ID,
            sa.ForeignKey("pipelines.id", name="fk_serving_stats_pipeline_id_pipelines",
                          ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("process", sa.String(100), nullable=False),
        sa.Column("alias", sa.String(50), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("latency", JSON, nullable=False),
        sa.PrimaryKeyConstraint(
            "pipeline_id", "minute", "process", "alias", "version", name="pk_serving_stats"),
    )


def downgrade() -> None:
    op.drop_table("serving_stats")
