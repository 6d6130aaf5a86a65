"""Indexes that let a tick's queries find their rows without reading a growing table: the
records after a cursor (evaluations, decisions, alias moves by pipeline and id), the batches
that share a file (by its sha256) and the version that holds a profile.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | None = None
depends_on: str | None = None

INDEXES = {
    "ix_evaluations_pipeline_id_id": ("evaluations", ["pipeline_id", "id"]),
    "ix_decisions_pipeline_id_id": ("decisions", ["pipeline_id", "id"]),
    "ix_alias_moves_pipeline_id_id": ("alias_moves", ["pipeline_id", "id"]),
    "ix_batches_data_sha256": ("batches", ["data_sha256"]),
    "ix_model_versions_profile_id": ("model_versions", ["profile_id"]),
    "ix_runs_decision_id": ("runs", ["decision_id"]),
}


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, (table, _) in INDEXES.items():
        op.drop_index(name, table_name=table)
