"""Search trials: the model family, parameters, validation score and cost of every trial of a
run's hyperparameter search (`trainer.search`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

Written out in plain SQLAlchemy types (not imported from `tables.py`) so the revision stays
what it was when later revisions change the table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "trials",
        sa.Column(
            "run_id", ID,
            sa.ForeignKey("runs.id", name="fk_trials_run_id_runs", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("family", sa.String(200), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("score", sa.Double, nullable=True),
        sa.Column("cpu_seconds", sa.Double, nullable=False),
        sa.Column("wall_seconds", sa.Double, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "number", name="pk_trials"),
    )


def downgrade() -> None:
    op.drop_table("trials")
