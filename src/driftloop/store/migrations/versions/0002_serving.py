"""Serving: the prediction log, feedback labels (first label per prediction) and API tokens.

Revision ID: 0002
Revises: 0001
Create Date: 2024-07-01

Written out in plain SQLAlchemy types (not imported from `serving_tables.py`) so the revision
stays what it was when later revisions change the tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column(
            "pipeline_id", ID,
            sa.ForeignKey("pipelines.id", name="fk_predictions_pipeline_id_pipelines",
                          ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("alias", sa.String(50), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("key", sa.String(200), nullable=True),
        sa.Column("features", JSON, nullable=False),
        sa.Column("prediction", JSON, nullable=True),
        sa.Column("probabilities", JSON, nullable=True),
        _time("at"),
        sa.PrimaryKeyConstraint("id", name="pk_predictions"),
    )
    op.create_index("ix_predictions_pipeline_id_at", "predictions", ["pipeline_id", "at"])
    op.create_index(
        "ix_predictions_pipeline_id_version_at", "predictions", ["pipeline_id", "version", "at"],
    )
    op.create_table(
        "feedback",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column(
            "prediction_id", sa.String(36),
            sa.ForeignKey("predictions.id", name="fk_feedback_prediction_id_predictions",
                          ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("label", JSON, nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        _time("at"),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
        sa.UniqueConstraint("prediction_id", name="uq_feedback_prediction_id"),
    )
    op.create_table(
        "tokens",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("roles", JSON, nullable=False),
        _time("created_at"),
        _time("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_tokens"),
        sa.UniqueConstraint("sha256", name="uq_tokens_sha256"),
    )


def downgrade() -> None:
    for table in ("tokens", "feedback", "predictions"):
        op.drop_table(table)
