"""Batch quality and requeue: the data-quality signals an accepted batch carries, the
validation settings a batch was judged under, and the quarantined batch a re-validated one
came from.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

- `quality` (JSON): ``{"columns": {column: [messages]}, "rows": n}``, the signals of
  `validation.checks.Findings` (NULL on batches recorded before: none).
- `spec_sha256`: the hash of the spec parts that decide validity (`controller.ingest.
  validation_key`), so `driftloop batches requeue --previous-spec` finds the batches
  quarantined under other settings (NULL before: taken as a previous spec).
- `requeued_from`: the quarantined batch a `requeue` accepted as this one; that batch's
  status becomes ``requeued``.

Written out in plain SQLAlchemy types (not imported from `tables.py`) so the revision stays
what it was when later revisions change the tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("quality", JSON, nullable=True))
        batch.add_column(sa.Column("spec_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("requeued_from", ID, nullable=True))
        batch.create_foreign_key(
            "fk_batches_requeued_from_batches", "batches", ["requeued_from"], ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.drop_constraint("fk_batches_requeued_from_batches", type_="foreignkey")
        batch.drop_column("requeued_from")
        batch.drop_column("spec_sha256")
        batch.drop_column("quality")
