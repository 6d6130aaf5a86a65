"""Runs remember which trainer they ran (a hash of its source file and the spec's trainer
section), so a fixed trainer starts its retries afresh; runs a stopped controller left
behind get their own status, "interrupted", instead of "failed".

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

Runs the repair step marked failed before this revision carry the error "interrupted: ...";
they become "interrupted". Their trainer hash stays NULL, which counts as the current trainer.

Written out in plain SQLAlchemy types (not imported from `tables.py`) so the revision stays
what it was when later revisions change the tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

RUNS = sa.table("runs", sa.column("status"), sa.column("error"))


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("trainer_sha256", sa.String(64), nullable=True))
    op.execute(sa.update(RUNS).where(
        RUNS.c.status == "failed", RUNS.c.error.startswith("interrupted:"),
    ).values(status="interrupted"))


def downgrade() -> None:
    op.execute(sa.update(RUNS).where(RUNS.c.status == "interrupted").values(status="failed"))
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("trainer_sha256")
