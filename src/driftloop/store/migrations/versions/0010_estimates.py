"""Performance estimated before labels arrive: each model version may have a calibrator (an
artifact, sha256-checked like the model), and each evaluation the accuracy estimated from the
model's calibrated confidences on all of the batch's rows, before its labels were used.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

Written out in plain SQLAlchemy types (not imported from `tables.py`) so the revision stays
what it was when later revisions change the tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("calibration_uri", sa.Text, nullable=True))
        batch.add_column(sa.Column("calibration_sha256", sa.String(64), nullable=True))
    with op.batch_alter_table("evaluations") as batch:
        batch.add_column(sa.Column("estimated_value", sa.Double, nullable=True))
        batch.add_column(sa.Column("estimated_rows", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("evaluations") as batch:
        batch.drop_column("estimated_rows")
        batch.drop_column("estimated_value")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("calibration_sha256")
        batch.drop_column("calibration_uri")
