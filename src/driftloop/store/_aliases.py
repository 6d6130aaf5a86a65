"""Aliases (``champion``, ``canary``, ...): which model version each points at, and every move
of one, written with its audit entry in the same transaction. Rollbacks walk back through the
promotions (`_alias_stack`)."""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa

from driftloop.core import clock as clocks
from driftloop.core import errors
from driftloop.store import _alias_stack, _audit_log, _database, _engine, _rows, entities, tables

T = tables
_param = _database.param
_GET = sa.select(T.aliases.c.version).where(
    T.aliases.c.pipeline_id == _param("pid"), T.aliases.c.alias == _param("alias"))
_INSERT_MOVE = sa.insert(T.alias_moves).returning(T.alias_moves.c.id)
_MOVES = sa.select(T.alias_moves.c.action, T.alias_moves.c.version).where(
    T.alias_moves.c.pipeline_id == _param("pid"), T.alias_moves.c.alias == _param("alias"),
).order_by(T.alias_moves.c.id)
_LOCK_PIPELINE = (
    sa.select(T.pipelines.c.id).where(T.pipelines.c.id == _param("pid")).with_for_update())
_VERSION_ID = sa.select(T.model_versions.c.id).where(
    T.model_versions.c.pipeline_id == _param("pid"),
    T.model_versions.c.version == _param("version"))


@functools.cache
def _set(dialect: str) -> Any:
    insert = _engine.insert(dialect, T.aliases)
    return insert.on_conflict_do_update(
        index_elements=["pipeline_id", "alias"],
        set_={"version": insert.excluded.version, "updated_at": insert.excluded.updated_at})


class Aliases:
    """The aliases of each pipeline and their moves."""

    def __init__(self, db: _database.Database) -> None:
        self._db = db

    def set(
        self, pipeline: str, alias: str, version: int | None, *, actor: str, reason: str,
        action: str = "promote",
    ) -> entities.AliasMove:
        """Point `alias` at `version` (None clears it); the move and its audit row are written
        in the same transaction."""
        with self._db.write() as conn:
            return self._move(conn, pipeline, alias, version, actor, reason, action)

    def rollback(self, pipeline: str, alias: str, *, actor: str, reason: str) -> entities.AliasMove:
        """Move `alias` back to the version it held before its current one. Rollbacks stack:
        each goes one promotion further back (v1 → v2 → v3, rollback → v2, rollback → v1),
        skipping cleared entries (`_alias_stack`) and versions retention retired (an online
        pipeline's old snapshots: `store.snapshots`)."""
        with self._db.write() as conn:
            pid = self._lock_pipeline(conn, pipeline)
            rows = conn.execute(_MOVES, {"pid": pid, "alias": alias})
            target = _alias_stack.target(
                _alias_stack.replay((row.action or "promote", row.version) for row in rows),
                exists=lambda v: conn.scalar(_VERSION_ID, {"pid": pid, "version": v}) is not None)
            if target is None:
                raise errors.ConflictError(
                    f"alias {alias!r} of pipeline {pipeline!r} has no earlier version to roll "
                    "back to; set it explicitly instead",
                    pipeline=pipeline, alias=alias)
            return self._move(conn, pipeline, alias, target, actor, reason, "rollback")

    def _lock_pipeline(self, conn: sa.Connection, pipeline: str) -> int:
        """The pipeline's id, with its row locked until commit (PostgreSQL; SQLite's write
        transactions are exclusive already)."""
        pid = self._db.pid(conn, pipeline)
        conn.execute(_LOCK_PIPELINE, {"pid": pid})
        return pid

    def _move(
        self, conn: sa.Connection, pipeline: str, alias: str, version: int | None, actor: str,
        reason: str, action: str,
    ) -> entities.AliasMove:
        pid = self._lock_pipeline(conn, pipeline)
        if version is not None and conn.scalar(
                _VERSION_ID, {"pid": pid, "version": version}) is None:
            raise errors.NotFoundError(
                f"cannot point alias {alias!r} at model version {version} of pipeline "
                f"{pipeline!r}: no such version",
                pipeline=pipeline, alias=alias, version=version)
        previous = conn.scalar(_GET, {"pid": pid, "alias": alias})
        at = self._db.clock.now()
        conn.execute(_set(self._db.dialect), {
            "pipeline_id": pid, "alias": alias, "version": version, "updated_at": at})
        new_id = conn.scalar(_INSERT_MOVE, {
            "pipeline_id": pid, "alias": alias, "version": version, "previous": previous,
            "actor": actor, "reason": reason, "at": at, "action": action,
        })
        _audit_log.record(conn, self._db.clock, actor, action, f"{pipeline}/{alias}",
                          {"from": previous, "to": version, "reason": reason})
        return entities.AliasMove(
            id=int(new_id), pipeline=pipeline, alias=alias, version=version, previous=previous,
            actor=actor, reason=reason, at=clocks.as_utc(at), action=action,
        )

    def get(self, pipeline: str, alias: str) -> int | None:
        """The version `alias` points at, or None if it was never set or is cleared."""
        with self._db.read() as conn:
            pid = self._db.pid(conn, pipeline)
            version: int | None = conn.scalar(_GET, {"pid": pid, "alias": alias})
        return version

    def all(self, pipeline: str) -> dict[str, int]:
        """Every alias of `pipeline` that points at a version."""
        with self._db.read() as conn:
            pid = self._db.pid(conn, pipeline)
            a = T.aliases
            rows = conn.execute(sa.select(a.c.alias, a.c.version).where(
                a.c.pipeline_id == pid, a.c.version.is_not(None)).order_by(a.c.alias))
            return {row.alias: row.version for row in rows}

    def history(
        self, pipeline: str, alias: str | None = None, last: int | None = None,
        after_id: int = 0,
    ) -> list[entities.AliasMove]:
        """Every move of `alias` (or of all aliases), oldest first; the newest `last` if given;
        only those after move `after_id`."""
        m = T.alias_moves
        with self._db.read() as conn:
            pid = self._db.pid(conn, pipeline)
            query = _database.with_pipeline(m).where(m.c.pipeline_id == pid)
            if alias is not None:
                query = query.where(m.c.alias == alias)
            if after_id:
                query = query.where(m.c.id > after_id)
            if last is None:
                rows = conn.execute(query.order_by(m.c.id)).all()
            else:
                rows = conn.execute(query.order_by(m.c.id.desc()).limit(last)).all()[::-1]
        return [_rows.alias_move(row) for row in rows]
