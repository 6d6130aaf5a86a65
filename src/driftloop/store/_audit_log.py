"""The audit log: who did what to which target, appended and never changed.

`record` writes an entry inside a caller's transaction (a pipeline's spec change, an alias
move), so the change and its audit entry commit together.
"""

from __future__ import annotations

import sqlalchemy as sa

from driftloop.core import clock as clocks
from driftloop.core import types
from driftloop.store import _database, _rows, entities, tables

T = tables
_INSERT = sa.insert(T.audit_log).returning(T.audit_log.c.id)


def record(
    conn: sa.Connection, clock: clocks.Clock, actor: str, action: str, target: str,
    details: types.JSON | None,
) -> entities.AuditEntry:
    """Append one entry in the transaction of `conn`."""
    at = clock.now()
    details = _rows.plain(details) if details is not None else None
    values = {"actor": actor, "action": action, "target": target, "details": details, "at": at}
    new_id = conn.scalar(_INSERT, values)
    return entities.AuditEntry(
        id=int(new_id), actor=actor, action=action, target=target, details=details or {},
        at=clocks.as_utc(at),
    )


class AuditLog:
    """Entries of the audit log, oldest first."""

    def __init__(self, db: _database.Database) -> None:
        self._db = db

    def add(
        self, actor: str, action: str, target: str, details: types.JSON | None = None,
    ) -> entities.AuditEntry:
        """Append one entry to the audit log."""
        with self._db.write() as conn:
            return record(conn, self._db.clock, actor, action, target, details)

    def list(
        self, action: str | None = None, target_prefix: str | None = None,
    ) -> list[entities.AuditEntry]:
        """Audit entries, oldest first, filtered by action and by the start of the target."""
        log = T.audit_log
        query = sa.select(log)
        if action is not None:
            query = query.where(log.c.action == action)
        if target_prefix is not None:
            query = query.where(log.c.target.startswith(target_prefix, autoescape=True))
        with self._db.read() as conn:
            rows = conn.execute(query.order_by(log.c.id)).all()
        return [_rows.audit(row) for row in rows]
