"""Pipelines: each one's name, its spec (secrets masked) and its data schema."""

from __future__ import annotations

import sqlalchemy as sa

from driftloop.core import errors, secrecy, types
from driftloop.store import _audit_log, _database, _rows, entities, tables

T = tables
_GET = sa.select(T.pipelines).where(T.pipelines.c.name == _database.param("name"))


class Pipelines:
    """The pipelines of the store, by name."""

    def __init__(self, db: _database.Database) -> None:
        self._db = db

    def ensure(self, name: str, spec: types.JSON, actor: str = "system") -> entities.Pipeline:
        """Create pipeline `name`, or update its spec if it changed (audited as `config.change`).
        The spec is stored with its secrets masked (`core.secrecy.redact`)."""
        spec = _rows.plain(secrecy.redact(spec))
        clock = self._db.clock
        try:
            with self._db.write() as conn:
                row = conn.execute(sa.select(T.pipelines).where(T.pipelines.c.name == name)).first()
                if row is None:
                    conn.execute(sa.insert(T.pipelines).values(
                        name=name, spec=spec, created_at=clock.now()))
                    _audit_log.record(conn, clock, actor, "pipeline.create", name, {"spec": spec})
                elif row.spec != spec:
                    changed = _rows.diff_keys(row.spec, spec)
                    conn.execute(sa.update(T.pipelines).where(T.pipelines.c.id == row.id)
                                 .values(spec=spec))
                    _audit_log.record(conn, clock, actor, "config.change", name,
                                      {"changed": changed})
                else:
                    return _rows.pipeline(row)
                return _get(conn, name)
        except sa.exc.IntegrityError:
            with self._db.read() as conn:  # created concurrently? then it exists: compare again
                raced = conn.scalar(sa.select(T.pipelines.c.id).where(T.pipelines.c.name == name))
            if raced is None:
                raise
            return self.ensure(name, spec, actor)

    def get(self, name: str) -> entities.Pipeline:
        with self._db.read() as conn:
            return _get(conn, name)

    def set_schema(self, name: str, schema: types.JSON) -> entities.Pipeline:
        with self._db.write() as conn:
            pid = self._db.pid(conn, name)
            conn.execute(sa.update(T.pipelines).where(T.pipelines.c.id == pid)
                         .values(schema=_rows.plain(schema)))
            return _get(conn, name)

    def list(self) -> list[entities.Pipeline]:
        """Every pipeline, by name."""
        with self._db.read() as conn:
            rows = conn.execute(sa.select(T.pipelines).order_by(T.pipelines.c.name)).all()
        return [_rows.pipeline(row) for row in rows]


def _get(conn: sa.Connection, name: str) -> entities.Pipeline:
    row = conn.execute(_GET, {"name": name}).first()
    if row is None:
        raise errors.NotFoundError(f"pipeline {name!r} does not exist", pipeline=name)
    return _rows.pipeline(row)
