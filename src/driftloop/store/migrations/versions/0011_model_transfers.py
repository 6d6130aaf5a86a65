"""Model transfers: each export of a model version to another format (ONNX, MLflow) with its
parity report and the exported file's artifact, and each import of a model from one.

Revision ID: 0011_deploy_formats
Revises: 0010
Create Date: 2026-12-04

Written out in plain SQLAlchemy types (not imported from `tables.py`) so the revision stays
what it was when later revisions change the table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "model_transfers",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column(
            "pipeline_id", ID,
            sa.ForeignKey("pipelines.id", name="fk_model_transfers_pipeline_id_pipelines",
                          ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("format", sa.String(20), nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("artifact_uri", sa.Text, nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("report", JSON, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_transfers"),
    )
    op.create_index("ix_model_transfers_pipeline_id_version", "model_transfers",
                    ["pipeline_id", "version"])


def downgrade() -> None:
    op.drop_index("ix_model_transfers_pipeline_id_version", table_name="model_transfers")
    op.drop_table("model_transfers")
