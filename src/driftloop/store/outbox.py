"""The webhook outbox: what each hook is to be told, and whether it has been.

Events are not written where they happen: they are read afterwards from the records that
already say what happened (model versions, alias moves, quarantined batches, decisions), past a
cursor per hook and record kind (`facts`). `enqueue` then writes one row per (hook, event) and
moves the cursors on in the same transaction, so an event is queued exactly once even when the
process dies between reading and writing (the unique key `(pipeline, hook, event_key)` makes a
repeat a no-op). `due` hands out the rows whose next attempt has come; the sender marks each
`sent` or `failed` (with the time of its next attempt, or ``dead`` when it has none left).

A hook seen for the first time starts at the newest record: it is told what happens from then
on, not the pipeline's history.

    >>> from datetime import UTC, datetime
    >>> from driftloop.core.clock import FakeClock
    >>> from driftloop.store.metadata import MetadataStore
    >>> meta = MetadataStore.open("sqlite://", clock=FakeClock(datetime(2024, 1, 1, tzinfo=UTC)))
    >>> _ = meta.pipelines.ensure("p", {})
    >>> box = Outbox(meta)
    >>> first = box.facts("p", "h1")  # a new hook: its cursors start at the newest records
    >>> box.enqueue("p", "h1", [], first.upto)
    0
    >>> _ = meta.versions.add("p", run_id=None, artifact_uri="m", sha256="0" * 64, metrics={})
    >>> found = box.facts("p", "h1")
    >>> [v.version for v in found.versions]
    [1]
    >>> box.enqueue("p", "h1", [("retrained", "version:1", {"text": "v1"})], found.upto)
    1
    >>> box.enqueue("p", "h1", [("retrained", "version:1", {"text": "v1"})], found.upto)
    0
    >>> [n.event for n in box.due("p")], box.facts("p", "h1").versions
    (['retrained'], ())
    >>> meta.close()
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from driftloop.core import clock as clocks
from driftloop.core import errors, types
from driftloop.store import _database, _rows, _runs, entities, metadata, tables

T = tables
SOURCES = ("version", "move", "batch", "decision")
"""The record kinds events are read from, each with its own cursor per hook."""


@dataclass(frozen=True)
class Notification:
    """One event for one hook, and how its delivery went."""

    id: int
    pipeline: str
    hook: str
    event: str
    event_key: str
    payload: types.JSON
    status: str
    attempts: int
    next_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class Facts:
    """The records a hook has not been told about yet, and the ids its cursors move to."""

    versions: tuple[entities.ModelVersion, ...]
    moves: tuple[entities.AliasMove, ...]
    batches: tuple[entities.Batch, ...]
    decisions: tuple[entities.Decision, ...]
    upto: dict[str, int]


_TABLES = {
    "version": T.model_versions, "move": T.alias_moves, "batch": T.batches,
    "decision": T.decisions,
}


class Outbox:
    """The notifications of every pipeline on the database of `store` (its engine and clock)."""

    def __init__(self, store: metadata.MetadataStore) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"Outbox({self.store!r})"

    def facts(self, pipeline: str, hook: str, limit: int = 500) -> Facts:
        """The records of `pipeline` past `hook`'s cursors (at most `limit` of each kind)."""
        with self.store.db.read() as conn:
            pid = self.store.db.pid(conn, pipeline)
            cursors = self._cursors(conn, pid, hook)
            found: dict[str, list[Any]] = {}
            upto: dict[str, int] = {}
            for source, table in _TABLES.items():
                newest = int(conn.scalar(
                    sa.select(sa.func.max(table.c.id)).where(table.c.pipeline_id == pid)) or 0)
                after = cursors.get(source)
                if after is None:  # a new hook: from now on
                    found[source], upto[source] = [], newest
                    continue
                query = (_database.with_pipeline(table)
                         .where(table.c.pipeline_id == pid, table.c.id > after)
                         .order_by(table.c.id).limit(limit))
                found[source] = list(conn.execute(query))
                upto[source] = found[source][-1].id if found[source] else after
            lineage = _runs.lineage(
                conn, sorted({r.run_id for r in found["version"] if r.run_id is not None}))
        return Facts(
            versions=tuple(_rows.model_version(r, lineage.get(r.run_id, []))
                           for r in found["version"]),
            moves=tuple(_rows.alias_move(r) for r in found["move"]),
            batches=tuple(_rows.batch(r) for r in found["batch"]),
            decisions=tuple(_rows.decision(r) for r in found["decision"]),
            upto=upto,
        )

    def enqueue(
        self, pipeline: str, hook: str, items: Sequence[tuple[str, str, types.JSON]],
        upto: dict[str, int],
    ) -> int:
        """Queue `(event, event_key, payload)` items for `hook` and move its cursors to `upto`,
        in one transaction; returns how many were new (a repeated key is skipped)."""
        now = self.store.clock.now()
        added = 0
        with self.store.db.write() as conn:
            pid = self.store.db.pid(conn, pipeline)
            for event, key, payload in items:
                insert = self.store.db.insert(T.notifications).values(
                    pipeline_id=pid, hook=hook, event=event, event_key=key,
                    payload=_rows.plain(payload), status="pending", attempts=0, next_at=now,
                    created_at=now,
                ).on_conflict_do_nothing(index_elements=["pipeline_id", "hook", "event_key"])
                # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT
                added += conn.execute(insert.returning(T.notifications.c.id)).first() is not None
            for source, value in upto.items():
                upsert = self.store.db.insert(T.cursors).values(
                    pipeline_id=pid, key=f"notify:{hook}:{source}", value=int(value),
                    updated_at=now)
                conn.execute(upsert.on_conflict_do_update(
                    index_elements=["pipeline_id", "key"],
                    set_={"value": upsert.excluded.value, "updated_at": now}))
        return added

    def due(self, pipeline: str, limit: int = 100) -> list[Notification]:
        """Pending notifications whose next attempt has come, oldest first."""
        n = T.notifications
        with self.store.db.read() as conn:
            query = (_database.with_pipeline(n).where(
                n.c.pipeline_id == self.store.db.pid(conn, pipeline), n.c.status == "pending",
                n.c.next_at <= self.store.clock.now()).order_by(n.c.id).limit(limit))
            return [_notification(row) for row in conn.execute(query)]

    def recent(
        self, pipeline: str, status: str | None = None, last: int = 100,
    ) -> list[Notification]:
        """The newest `last` notifications (of one `status`), oldest first."""
        n = T.notifications
        with self.store.db.read() as conn:
            query = _database.with_pipeline(n).where(
                n.c.pipeline_id == self.store.db.pid(conn, pipeline))
            if status is not None:
                query = query.where(n.c.status == status)
            rows = list(conn.execute(query.order_by(n.c.id.desc()).limit(last)))
        return [_notification(row) for row in reversed(rows)]

    def counts(self, pipeline: str) -> dict[str, int]:
        """How many notifications are in each status."""
        n = T.notifications
        with self.store.db.read() as conn:
            rows = conn.execute(sa.select(n.c.status, sa.func.count()).where(
                n.c.pipeline_id == self.store.db.pid(conn, pipeline)).group_by(n.c.status))
            return {status: int(count) for status, count in rows}

    def sent(self, notification_id: int, attempts: int) -> None:
        """Delivered (after `attempts` tries)."""
        self._update(notification_id, status="sent", attempts=attempts,
                     sent_at=self.store.clock.now(), last_error=None)

    def failed(
        self, notification_id: int, attempts: int, error: str, next_at: datetime | None,
    ) -> None:
        """Not delivered: try again at `next_at`, or never (None: ``dead``)."""
        values: dict[str, Any] = {"attempts": attempts, "last_error": error[:2000]}
        if next_at is None:
            values["status"] = "dead"
        else:
            values["next_at"] = next_at
        self._update(notification_id, **values)

    def retry_dead(self, pipeline: str) -> int:
        """Put every ``dead`` notification back in the queue, due now; returns how many."""
        n = T.notifications
        with self.store.db.write() as conn:
            done = conn.execute(sa.update(n).where(
                n.c.pipeline_id == self.store.db.pid(conn, pipeline), n.c.status == "dead",
            ).values(status="pending", attempts=0, next_at=self.store.clock.now()))
            return int(done.rowcount)

    def _update(self, notification_id: int, **values: Any) -> None:
        n = T.notifications
        with self.store.db.write() as conn:
            done = conn.execute(sa.update(n).where(n.c.id == notification_id).values(**values))
            if done.rowcount == 0:
                raise errors.NotFoundError(f"notification {notification_id} does not exist")

    def _cursors(self, conn: sa.Connection, pid: int, hook: str) -> dict[str, int]:
        c = T.cursors
        prefix = f"notify:{hook}:"
        rows = conn.execute(sa.select(c.c.key, c.c.value).where(
            c.c.pipeline_id == pid, c.c.key.startswith(prefix, autoescape=True)))
        return {key[len(prefix):]: int(value) for key, value in rows}


def _notification(row: Any) -> Notification:
    return Notification(
        id=row.id, pipeline=row.pipeline, hook=row.hook, event=row.event,
        event_key=row.event_key, payload=row.payload, status=row.status, attempts=row.attempts,
        next_at=clocks.as_utc(row.next_at), last_error=row.last_error,
        created_at=clocks.as_utc(row.created_at),
        sent_at=None if row.sent_at is None else clocks.as_utc(row.sent_at),
    )
