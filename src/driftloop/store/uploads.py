"""Uploads: bodies posted to `POST /v1/batches`, each waiting to be recorded as a batch.

`UploadStore` shares the engine, transactions and clock of a `MetadataStore`, like
`store.serving.ServingStore`. The server adds an upload (`add`: unfenced, it is the client's
data, like a prediction or a feedback label); the pipeline's lease holder records it as a batch
and then marks it done (`done`: fenced like every other write of the holder, and it drops the
bytes, which the batch's artifact now holds). An upload is named by its `key`, the client's
batch id or else the body's sha256, unique per pipeline: the same key twice is one upload.

    >>> from datetime import UTC, datetime
    >>> from driftloop.core.clock import FakeClock
    >>> from driftloop.store.metadata import MetadataStore
    >>> meta = MetadataStore.open("sqlite://", clock=FakeClock(datetime(2024, 1, 1, tzinfo=UTC)))
    >>> _ = meta.pipelines.ensure("p", {})
    >>> uploads = UploadStore(meta)
    >>> first, new = uploads.add("p", "day-1", b"x\\n1\\n", "csv", actor="loader")
    >>> again, new_again = uploads.add("p", "day-1", b"x\\n1\\n", "csv", actor="loader")
    >>> new, new_again, again.id == first.id, [u.key for u in uploads.pending("p")]
    (True, False, True, ['day-1'])
    >>> meta.close()
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from driftloop.core import clock as clocks
from driftloop.core import errors
from driftloop.store import metadata, tables

U = tables.uploads
KEY_LENGTH = 200
"""Longest client batch id (the `key` column)."""


@dataclass(frozen=True)
class Upload:
    """One posted body: its key, sha256 and format; `data` is None once it is recorded, and
    `batch_id` then names the batch it became."""

    id: int
    pipeline: str
    key: str
    sha256: str
    format: str
    data: bytes | None
    actor: str
    received_at: datetime
    batch_id: int | None


class UploadStore:
    """The uploads of every pipeline, on the database of `store`."""

    def __init__(self, store: metadata.MetadataStore) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"UploadStore({self.store!r})"

    def add(
        self, pipeline: str, key: str, data: bytes, format: str, *, actor: str
    ) -> tuple[Upload, bool]:
        """Keep `data` under `key`: `(upload, True)` if new, else `(the stored one, False)`;
        `ConflictError` if `key` already names a different body."""
        if not key or len(key) > KEY_LENGTH:
            raise errors.ConfigError(
                f"a batch id must have 1 to {KEY_LENGTH} characters; got {len(key)}")
        sha = hashlib.sha256(data).hexdigest()
        at = self.store.clock.now()
        values: dict[str, Any] = {"key": key, "sha256": sha, "format": format, "data": data,
                                  "actor": actor, "received_at": at, "batch_id": None}
        try:
            with self.store.db.write() as conn:
                found = self._get(conn, pipeline, key)
                if found is None:
                    pid = self.store.db.pid(conn, pipeline)
                    new_id = conn.scalar(sa.insert(U).values(pipeline_id=pid, **values)
                                         .returning(U.c.id))
        except sa.exc.IntegrityError:  # another request added the key between read and insert
            found = self.get(pipeline, key)
            if found is None:
                raise
        if found is not None:
            if found.sha256 != sha:
                raise errors.ConflictError(
                    f"batch id {key!r} was already used for a different body (sha256 "
                    f"{found.sha256[:12]}…, this one {sha[:12]}…); send a new batch id",
                    pipeline=pipeline, batch_id=key)
            return found, False
        return Upload(int(new_id), pipeline, key, sha, format, data, actor, clocks.as_utc(at),
                      None), True

    def get(self, pipeline: str, key: str) -> Upload | None:
        with self.store.db.read() as conn:
            return self._get(conn, pipeline, key)

    def pending(self, pipeline: str, limit: int = 100) -> list[Upload]:
        """Uploads not recorded yet, oldest first (at most `limit`)."""
        with self.store.db.read() as conn:
            pid = self.store.db.pid(conn, pipeline)
            rows = conn.execute(
                sa.select(U).where(U.c.pipeline_id == pid, U.c.batch_id.is_(None))
                .order_by(U.c.id).limit(limit)
            ).all()
        return [_upload(row, pipeline) for row in rows]

    def done(self, upload: Upload, batch_id: int) -> Upload:
        """Mark `upload` recorded as batch `batch_id` and drop its bytes."""
        with self.store.db.write() as conn:
            conn.execute(sa.update(U).where(U.c.id == upload.id)
                         .values(batch_id=batch_id, data=None))
        return Upload(upload.id, upload.pipeline, upload.key, upload.sha256, upload.format, None,
                      upload.actor, upload.received_at, batch_id)

    def _get(self, conn: sa.Connection, pipeline: str, key: str) -> Upload | None:
        pid = self.store.db.pid(conn, pipeline)
        row = conn.execute(sa.select(U).where(U.c.pipeline_id == pid, U.c.key == key)).first()
        return None if row is None else _upload(row, pipeline)


def _upload(row: Any, pipeline: str) -> Upload:
    return Upload(int(row.id), pipeline, row.key, row.sha256, row.format, row.data, row.actor,
                  clocks.as_utc(row.received_at), None if row.batch_id is None else
                  int(row.batch_id))
