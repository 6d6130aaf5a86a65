"""Alias move actions: what each alias move was ("promote", "rollback", "rollout", ...), so a
rollback can replay an alias's history as a stack instead of bouncing between two versions.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

Moves written before this revision get the action of their audit row: each move wrote one on
"<pipeline>/<alias>" in the same transaction, with the same actor, from, to and reason. A move
whose audit row is not found keeps NULL, which the store reads as "promote".

Written out in plain SQLAlchemy types (not imported from `tables.py`) so the revision stays
what it was when later revisions change the tables.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

MOVES = sa.table(
    "alias_moves", sa.column("id"), sa.column("pipeline_id"), sa.column("alias"),
    sa.column("version"), sa.column("previous"), sa.column("actor"), sa.column("reason"),
    sa.column("action"),
)
PIPELINES = sa.table("pipelines", sa.column("id"), sa.column("name"))
AUDIT = sa.table(
    "audit_log", sa.column("id"), sa.column("actor"), sa.column("action"), sa.column("target"),
    sa.column("details", sa.JSON()),
)


def upgrade() -> None:
    with op.batch_alter_table("alias_moves") as batch:
        batch.add_column(sa.Column("action", sa.String(100), nullable=True))
    _backfill(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("alias_moves") as batch:
        batch.drop_column("action")


def _backfill(conn: sa.Connection) -> None:
    """Give each existing move the action of its audit row: walk the moves of one alias and
    the audit rows on its target side by side, oldest first, pairing equal ones."""
    pipelines = conn.execute(sa.select(PIPELINES.c.id, PIPELINES.c.name))
    names = {pid: name for pid, name in pipelines}
    aliases = conn.execute(sa.select(MOVES.c.pipeline_id, MOVES.c.alias).distinct()).all()
    for pid, alias in aliases:
        moves = conn.execute(sa.select(MOVES).where(
            MOVES.c.pipeline_id == pid, MOVES.c.alias == alias).order_by(MOVES.c.id)).all()
        audit = iter(conn.execute(sa.select(AUDIT).where(
            AUDIT.c.target == f"{names[pid]}/{alias}").order_by(AUDIT.c.id)).all())
        for move in moves:
            entry = next((entry for entry in audit if _same(move, entry)), None)
            if entry is None:
                break  # the audit trail was pruned or edited: leave the rest NULL
            conn.execute(
                sa.update(MOVES).where(MOVES.c.id == move.id).values(action=entry.action))


def _same(move: Any, entry: Any) -> bool:
    details = entry.details if isinstance(entry.details, dict) else {}
    return bool(entry.actor == move.actor and details.get("from") == move.previous
                and details.get("to") == move.version and details.get("reason") == move.reason)
