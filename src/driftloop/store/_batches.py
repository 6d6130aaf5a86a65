"""What arrived from a pipeline's source: batches (once per fingerprint), the stream messages
each holds, the source's cursor, and the data profiles computed from batches."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from driftloop.core import clock as clocks
from driftloop.core import errors, types
from driftloop.store import _database, _engine, _messages, _rows, entities, tables

T = tables
STATUSES = ("accepted", "quarantined")
_param = _database.param
_GET_CURSOR = sa.select(T.cursors.c.value).where(
    T.cursors.c.pipeline_id == _param("pid"), T.cursors.c.key == _param("key"))
_FIND = _database.with_pipeline(T.batches).where(
    T.batches.c.pipeline_id == _param("pid"), T.batches.c.fingerprint == _param("fingerprint"))
_INSERT = sa.insert(T.batches).returning(T.batches.c.id)
_IDS = sa.select(T.batches.c.id).where(
    T.batches.c.pipeline_id == _param("pid"),
    T.batches.c.id.in_(sa.bindparam("ids", expanding=True)))
_GET_PROFILE = _database.with_pipeline(T.profiles).where(T.profiles.c.id == _param("id"))
_INSERT_PROFILE = sa.insert(T.profiles).returning(T.profiles.c.id)


@functools.cache
def _set_cursor(dialect: str) -> Any:
    stmt = _engine.insert(dialect, T.cursors)
    return stmt.on_conflict_do_update(
        index_elements=["pipeline_id", "key"],
        set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at})


@functools.cache
def _list_query(status: bool, after: bool, limit: bool) -> sa.Select[Any]:
    b = T.batches
    query = _database.with_pipeline(b).where(b.c.pipeline_id == _param("pid"))
    if status:
        query = query.where(b.c.status == _param("status"))
    if after:
        query = query.where(b.c.id > _param("after"))
    query = query.order_by(b.c.id)
    return query.limit(_param("limit")) if limit else query


def check_ids(conn: sa.Connection, pipeline: str, pid: int, batch_ids: Sequence[int]) -> None:
    """`NotFoundError` unless every one of `batch_ids` is a batch of pipeline `pid`."""
    found = set(conn.scalars(_IDS, {"pid": pid, "ids": list(batch_ids)}))
    missing = sorted(set(batch_ids) - found)
    if missing:
        raise errors.NotFoundError(
            f"batches {missing} do not exist in pipeline {pipeline!r}",
            pipeline=pipeline, batch=missing[0])


class Batches:
    """Batches in arrival order, their stream messages and the source cursors."""

    def __init__(self, db: _database.Database) -> None:
        self._db = db

    def add(
        self, pipeline: str, *, source_uri: str, fingerprint: str, rows: int,
        start: Any, end: Any, status: types.BatchStatus, reasons: dict[str, list[str]],
        data_uri: str | None = None, data_sha256: str | None = None,
        source_key: str = "", messages: Sequence[str] = (),
        quality: dict[str, list[str]] | None = None, quality_rows: int = 0,
        spec_sha256: str | None = None, requeued_from: int | None = None,
    ) -> tuple[entities.Batch, bool]:
        """Record a batch once per (pipeline, fingerprint): `(batch, True)` if new, else
        `(the stored batch, False)` — also when another writer wins a race for it. The stream
        `messages` it holds (ids under `source_key`) are recorded with it, in one transaction.

        `requeued_from` names the quarantined batch this one re-validates (`driftloop batches
        requeue`): in the same transaction its status becomes ``requeued``; `ConflictError`
        if it is not quarantined (any more)."""
        if status not in STATUSES:
            raise errors.ConfigError(
                f"batch status must be one of {STATUSES}; got {status!r}", pipeline=pipeline)
        values = {
            "source_uri": source_uri, "fingerprint": fingerprint, "rows": int(rows),
            "start": start, "end": end, "status": status, "reasons": _rows.plain(reasons),
            "data_uri": data_uri, "data_sha256": data_sha256, "created_at": self._db.clock.now(),
            "quality": _rows.quality_json(quality or {}, quality_rows),
            "spec_sha256": spec_sha256, "requeued_from": requeued_from, "region": self._db.region,
        }
        try:
            with self._db.write() as conn:
                existing = self._find(conn, pipeline, fingerprint)
                if existing is not None:
                    return existing, False
                pid = self._db.pid(conn, pipeline)
                if requeued_from is not None:
                    _mark_requeued(conn, pipeline, pid, requeued_from)
                new_id = conn.scalar(_INSERT, {"pipeline_id": pid, **values})
                if messages:
                    _messages.add(conn, pid, source_key, messages, int(new_id))
        except sa.exc.IntegrityError:  # another writer added it between our read and insert
            raced = self.find(pipeline, fingerprint)
            if raced is None:
                raise
            return raced, False
        for name in ("start", "end", "created_at"):
            values[name] = None if values[name] is None else clocks.as_utc(values[name])
        stored = values.pop("quality") or {}
        return entities.Batch(
            id=int(new_id), pipeline=pipeline, quality=stored.get("columns", {}),
            quality_rows=int(stored.get("rows", 0)), **values,
        ), True

    def requarantine(
        self, batch_id: int, reasons: dict[str, list[str]], spec_sha256: str | None,
    ) -> entities.Batch:
        """A quarantined batch validated again and still refused: store the new `reasons` and
        the settings they came from (`ConflictError` if it is not quarantined)."""
        b = T.batches
        with self._db.write() as conn:
            done = conn.execute(sa.update(b).where(
                b.c.id == batch_id, b.c.status == "quarantined",
            ).values(reasons=_rows.plain(reasons), spec_sha256=spec_sha256))
            if done.rowcount == 0:
                raise errors.ConflictError(
                    f"batch {batch_id} is not quarantined", batch=batch_id)
            row = conn.execute(
                _database.with_pipeline(b).where(b.c.id == batch_id)).first()
        return _rows.batch(row)

    def recorded_messages(
        self, pipeline: str, source_key: str, messages: Sequence[str],
    ) -> set[str]:
        """The ones among stream `messages` (ids under `source_key`) already in a batch."""
        if not messages:
            return set()
        with self._db.read() as conn:
            return _messages.recorded(conn, self._db.pid(conn, pipeline), source_key, messages)

    def messages(self, batch_id: int) -> list[tuple[str, str]]:
        """`(source_key, message id)` of each stream message batch `batch_id` holds."""
        with self._db.read() as conn:
            return _messages.of_batch(conn, batch_id)

    def prune_messages(
        self, pipeline: str, horizon: timedelta = _messages.HORIZON, keep: int = _messages.KEEP,
    ) -> int:
        """Forget the stream message ids that can no longer be delivered again: those of
        batches older than `horizon` with at least `keep` newer ones (why these are safe to
        forget: `store._messages`); returns how many ids went."""
        with self._db.write() as conn:
            pid = self._db.pid(conn, pipeline)
            return _messages.prune(conn, pid, self._db.clock.now(), horizon=horizon, keep=keep)

    def find(self, pipeline: str, fingerprint: str) -> entities.Batch | None:
        """The batch of `pipeline` with this `fingerprint`, or None."""
        with self._db.read() as conn:
            return self._find(conn, pipeline, fingerprint)

    def _find(
        self, conn: sa.Connection, pipeline: str, fingerprint: str,
    ) -> entities.Batch | None:
        params = {"pid": self._db.pid(conn, pipeline), "fingerprint": fingerprint}
        row = conn.execute(_FIND, params).first()
        return None if row is None else _rows.batch(row)

    def get(self, batch_id: int) -> entities.Batch:
        with self._db.read() as conn:
            query = _database.with_pipeline(T.batches).where(T.batches.c.id == batch_id)
            row = conn.execute(query).first()
        if row is None:
            raise errors.NotFoundError(f"batch {batch_id} does not exist", batch=batch_id)
        return _rows.batch(row)

    def count(self, pipeline: str, status: types.BatchStatus | None = None) -> int:
        """How many batches `pipeline` has (of one `status`)."""
        b = T.batches
        with self._db.read() as conn:
            query = sa.select(sa.func.count()).where(
                b.c.pipeline_id == self._db.pid(conn, pipeline))
            if status is not None:
                query = query.where(b.c.status == status)
            return int(conn.scalar(query) or 0)

    def get_cursor(self, pipeline: str, key: str) -> Any:
        """The value stored under `key` for `pipeline` (a source's high-water mark), or None."""
        with self._db.read() as conn:
            return conn.scalar(_GET_CURSOR, {"pid": self._db.pid(conn, pipeline), "key": key})

    def set_cursor(self, pipeline: str, key: str, value: Any) -> None:
        with self._db.write() as conn:
            conn.execute(_set_cursor(self._db.dialect), {
                "pipeline_id": self._db.pid(conn, pipeline), "key": key, "value": value,
                "updated_at": self._db.clock.now()})

    def list(
        self, pipeline: str, status: types.BatchStatus | None = None,
        after_id: int | None = None, limit: int | None = None, last: int | None = None,
    ) -> list[entities.Batch]:
        """Batches of `pipeline` in id (arrival) order, optionally only those after `after_id`;
        the first `limit`, or the newest `last`."""
        query = _list_query(status is not None, after_id is not None, limit is not None)
        if last is not None:
            query = query.order_by(None).order_by(T.batches.c.id.desc()).limit(last)
        with self._db.read() as conn:
            params = {"pid": self._db.pid(conn, pipeline), "status": status, "after": after_id,
                      "limit": limit}
            rows = conn.execute(query, params).all()
        if last is not None:
            rows.reverse()
        return [_rows.batch(row) for row in rows]


def _mark_requeued(conn: sa.Connection, pipeline: str, pid: int, batch_id: int) -> None:
    b = T.batches
    done = conn.execute(sa.update(b).where(
        b.c.id == batch_id, b.c.pipeline_id == pid, b.c.status == "quarantined",
    ).values(status="requeued"))
    if done.rowcount == 0:
        raise errors.ConflictError(
            f"batch {batch_id} of pipeline {pipeline!r} is not quarantined; only a "
            "quarantined batch can be requeued", pipeline=pipeline, batch=batch_id)


class Profiles:
    """Data profiles, of a batch or of a model's training data."""

    def __init__(self, db: _database.Database) -> None:
        self._db = db

    def add(
        self, pipeline: str, profile: types.JSON, batch_id: int | None = None,
    ) -> entities.Profile:
        profile = _rows.plain(profile)
        with self._db.write() as conn:
            pid = self._db.pid(conn, pipeline)
            if batch_id is not None:
                check_ids(conn, pipeline, pid, [batch_id])
            at = self._db.clock.now()
            new_id = conn.scalar(_INSERT_PROFILE, {
                "pipeline_id": pid, "batch_id": batch_id, "profile": profile, "created_at": at,
            })
        return entities.Profile(int(new_id), pipeline, batch_id, profile, clocks.as_utc(at))

    def get(self, profile_id: int) -> entities.Profile:
        with self._db.read() as conn:
            row = conn.execute(_GET_PROFILE, {"id": profile_id}).first()
        if row is None:
            raise errors.NotFoundError(f"profile {profile_id} does not exist", profile=profile_id)
        return _rows.profile(row)
