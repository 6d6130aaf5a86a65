"""The stream messages of each batch, for `MetadataStore` (its batch methods call these inside
their own transaction; nothing else does).

A stream source (Redis Streams, NATS JetStream) names every event by a message id. The ids of a
batch are written in the transaction that writes the batch row, so "this message is recorded"
and "its batch is recorded" are one fact; an event delivered again after a crash is looked up
here by id and skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from driftloop.store import _engine, tables

M = tables.batch_messages
CHUNK = 500
"""Ids per `IN (...)` lookup: far below every backend's limit on bound parameters."""

_RECORDED = sa.select(M.c.message).where(
    M.c.pipeline_id == sa.bindparam("pid"),
    M.c.source == sa.bindparam("source"),
    M.c.message.in_(sa.bindparam("ids", expanding=True)),
)
_OF_BATCH = sa.select(M.c.source, M.c.message).where(M.c.batch_id == sa.bindparam("batch"))


def add(conn: sa.Connection, pid: int, source: str, messages: Iterable[str], batch_id: int) -> None:
    """Record that `messages` of `source` make batch `batch_id` (a message already recorded
    raises `IntegrityError`: it belongs to one batch only)."""
    _engine.bulk_insert(
        conn,
        M,
        ("message",),
        ((str(message),) for message in messages),
        constants={"pipeline_id": pid, "source": source, "batch_id": batch_id},
    )


def recorded(conn: sa.Connection, pid: int, source: str, messages: Sequence[str]) -> set[str]:
    """The ones among `messages` that some batch of the pipeline already holds."""
    found: set[str] = set()
    ids = list(dict.fromkeys(map(str, messages)))
    for start in range(0, len(ids), CHUNK):
        params = {"pid": pid, "source": source, "ids": ids[start : start + CHUNK]}
        found.update(conn.scalars(_RECORDED, params))
    return found


def of_batch(conn: sa.Connection, batch_id: int) -> list[tuple[str, str]]:
    """`(source, message)` of every message of batch `batch_id`."""
    return [(row.source, row.message) for row in conn.execute(_OF_BATCH, {"batch": batch_id})]
