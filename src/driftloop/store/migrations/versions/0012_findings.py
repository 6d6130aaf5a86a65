"""Findings: the fairness report of each labelled batch, the explanation of each model version
and how far it moved from the version before.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04

Written out in plain SQLAlchemy types (not imported from `tables.py`) so the revision stays
what it was when later revisions change the tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "findings",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("pipeline_id", _ID, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("batch_id", _ID, nullable=True),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("value", sa.Double, nullable=True),
        sa.Column("report", _JSON, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["pipeline_id"], ["pipelines.id"], ondelete="CASCADE",
                                name="fk_findings_pipeline_id_pipelines"),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"], ondelete="SET NULL",
                                name="fk_findings_batch_id_batches"),
        sa.PrimaryKeyConstraint("id", name="pk_findings"),
    )
    op.create_index("ix_findings_pipeline_id_kind_id", "findings", ["pipeline_id", "kind", "id"])


def downgrade() -> None:
    op.drop_index("ix_findings_pipeline_id_kind_id", table_name="findings")
    op.drop_table("findings")
