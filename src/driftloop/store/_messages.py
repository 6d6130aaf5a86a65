"""The stream messages of each batch, for `MetadataStore` (its batch methods call these inside
their own transaction; nothing else does).

A stream source (Redis Streams, NATS JetStream) names every event by a message id. The ids of a
batch are written in the transaction that writes the batch row, so "this message is recorded"
and "its batch is recorded" are one fact; an event delivered again after a crash is looked up
here by id and skipped.

Pruning (`prune`, through `MetadataStore.batches.prune_messages`, called by `controller.ingest`
at the end of an ingest that recorded a batch). An id is needed only while its message can be
delivered again, that is until its acknowledgement has reached the server (Redis: XACK; NATS:
the ack). Ingest acknowledges each batch right after its commit, so a recorded message comes
again only when that ack was lost (a crash, a broken connection), and then soon: Redis hands a
consumer its own pending entries first in every poll and another consumer's after `claim_idle`;
NATS after `ack_wait`. The rule keeps a wide margin over that: the ids of a batch go once the
batch is older than `HORIZON` (7 days, by the store's clock) **and** at least `KEEP` (1000)
newer batches of the pipeline have been recorded. Both must hold: the age covers a pipeline
that records a lot in a short time (1000 batches can come within minutes), the count one that
was stopped for longer than the horizon (what it left unacknowledged comes again in the first
polls after the restart, long before 1000 more batches are recorded).

What pruning gives up: a consumer group (Redis) or durable consumer (NATS) deleted and created
again reads its stream from the start; events older than the horizon still in the stream would
then be recorded again. Keep the group / consumer, or trim the stream (MAXLEN, max_age) within
the horizon.

Each call finds the oldest batch that still has ids (a walk of the batch_id index, past
other pipelines' older ids only), reads
batches in id order from there up to the first one too young (a single row when nothing is
due), counts at most `KEEP` newer ones in an index, and deletes the ids of at most
`PRUNE_BATCHES` batches: its cost does not grow with how long the pipeline has run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa

from driftloop.core import clock as clocks
from driftloop.store import _engine, tables

M = tables.batch_messages
B = tables.batches
CHUNK = 500
"""Ids per `IN (...)` lookup: far below every backend's limit on bound parameters."""
HORIZON = timedelta(days=7)
"""A batch's message ids are kept at least this long after it was recorded."""
KEEP = 1000
"""... and until at least this many newer batches of the pipeline were recorded."""
PRUNE_BATCHES = 200
"""Batches whose ids one `prune` call deletes at most (the rest go in the next calls): twice
what one ingest records at the default `max_batches`, so pruning keeps up, and deleting costs
about what inserting those ids did."""

_RECORDED = sa.select(M.c.message).where(
    M.c.pipeline_id == sa.bindparam("pid"),
    M.c.source == sa.bindparam("source"),
    M.c.message.in_(sa.bindparam("ids", expanding=True)),
)
_OF_BATCH = sa.select(M.c.source, M.c.message).where(M.c.batch_id == sa.bindparam("batch"))
_OLDEST = (  # `+ 0` keeps the planner off the primary key (it would sort every id of the
    # pipeline): it walks the batch_id index in order and stops at the pipeline's first row
    sa.select(M.c.batch_id)
    .where(M.c.pipeline_id + 0 == sa.bindparam("pid"))
    .order_by(M.c.batch_id)
    .limit(1)
)
_FROM = (  # batches in id order from the oldest with ids on (the primary key's range)
    sa.select(B.c.id, B.c.pipeline_id, B.c.created_at)
    .where(B.c.id >= sa.bindparam("low"))
    .order_by(B.c.id)
    .limit(sa.bindparam("limit"))
)
_NEWER = sa.select(sa.func.count()).select_from(
    sa.select(B.c.id)
    .where(
        B.c.pipeline_id == sa.bindparam("pid"),
        B.c.status.in_(("accepted", "quarantined", "requeued")),  # each a range of the index
        B.c.id > sa.bindparam("after"),
    )
    .limit(sa.bindparam("keep"))
    .subquery()
)
_DELETE = sa.delete(M).where(
    M.c.pipeline_id == sa.bindparam("pid"),
    M.c.batch_id.in_(sa.bindparam("batches", expanding=True)),
)


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


def prune(
    conn: sa.Connection,
    pid: int,
    now: datetime,
    horizon: timedelta = HORIZON,
    keep: int = KEEP,
    limit: int = PRUNE_BATCHES,
) -> int:
    """Delete the ids of the pipeline's oldest batches that are older than `horizon` at `now`
    and have at least `keep` newer batches (at most `limit` batches, oldest first, up to the
    first one not due); returns how many ids went."""
    low = conn.scalar(_OLDEST, {"pid": pid})
    if low is None:
        return 0
    before = clocks.as_utc(now) - horizon
    old = []  # the pipeline's batches from `low` on, up to the first one not old enough
    for row in conn.execute(_FROM, {"low": low, "limit": limit}):
        if row.pipeline_id != pid:
            continue
        if clocks.as_utc(row.created_at) >= before:
            break
        old.append(int(row.id))
    if not old:
        return 0
    # old[i] has (batches newer than old[-1]) + (len(old) - 1 - i) newer batches.
    newer = int(conn.scalar(_NEWER, {"pid": pid, "after": old[-1], "keep": keep}) or 0)
    due = old[: max(0, newer + len(old) - keep)]
    deleted = 0
    for start in range(0, len(due), CHUNK):
        result = conn.execute(_DELETE, {"pid": pid, "batches": due[start : start + CHUNK]})
        deleted += result.rowcount
    return deleted
