"""Notes people leave on a model version, a decision or a batch: who, when, what.

A note names its target by kind and number (model version 3, decision 17, batch 42) within a
pipeline; the target must exist. The author is whoever the caller authenticated (the token's
name on the API, the OS user on the CLI); the time comes from the store's clock, in UTC (each
reader shows it in their own time zone). Adding a note is audited.

    >>> from datetime import UTC, datetime
    >>> from driftloop.core.clock import FakeClock
    >>> from driftloop.store.metadata import MetadataStore
    >>> meta = MetadataStore.open("sqlite://", clock=FakeClock(datetime(2026, 1, 1, tzinfo=UTC)))
    >>> _ = meta.pipelines.ensure("p", {})
    >>> _ = meta.versions.add("p", run_id=None, artifact_uri="m", sha256="0" * 64, metrics={})
    >>> notes = Notes(meta)
    >>> notes.add("p", "version", 1, author="mei@apac", text="looks good on Japanese reviews").id
    1
    >>> [(n.author, n.text) for n in notes.of("p", "version", 1)]
    [('mei@apac', 'looks good on Japanese reviews')]
    >>> notes.add("p", "batch", 7, author="x", text="?")
    Traceback (most recent call last):
    ...
    driftloop.core.errors.NotFoundError: batch 7 does not exist ...
    >>> meta.close()
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from driftloop.core import clock as clocks
from driftloop.core import errors
from driftloop.store import _database, metadata, tables

T = tables
Target = Literal["version", "decision", "batch"]
TARGETS: tuple[Target, ...] = ("version", "decision", "batch")
MAX_TEXT = 10_000


@dataclass(frozen=True)
class Note:
    id: int
    pipeline: str
    target: str
    target_id: int
    author: str
    text: str
    at: datetime


class Notes:
    """The notes of every pipeline on the database of `store` (its engine and clock)."""

    def __init__(self, store: metadata.MetadataStore) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"Notes({self.store!r})"

    def add(self, pipeline: str, target: str, target_id: int, *, author: str, text: str) -> Note:
        """Leave `text` on the target; `NotFoundError` if it does not exist in `pipeline`."""
        text = text.strip()
        if target not in TARGETS:
            raise errors.ConfigError(f"a note is on one of {', '.join(TARGETS)}; got {target!r}")
        if not text or len(text) > MAX_TEXT:
            raise errors.ConfigError(f"a note has 1 to {MAX_TEXT} characters; got {len(text)}")
        self._check(pipeline, target, target_id)
        at = self.store.clock.now()
        with self.store.db.write() as conn:
            pid = self.store.db.pid(conn, pipeline)
            new_id = conn.scalar(sa.insert(T.notes).values(
                pipeline_id=pid, target=target, target_id=int(target_id), author=author,
                text=text, at=at).returning(T.notes.c.id))
        self.store.audit.add(author, "note.add", f"{pipeline}/{target}/{target_id}",
                         {"note": int(new_id)})
        return Note(int(new_id), pipeline, target, int(target_id), author, text,
                    clocks.as_utc(at))

    def of(self, pipeline: str, target: str | None = None, target_id: int | None = None,
           last: int = 200) -> list[Note]:
        """Notes of `pipeline` (on one target), oldest first; the newest `last`."""
        n = T.notes
        with self.store.db.read() as conn:
            query = _database.with_pipeline(n).where(n.c.pipeline_id == self.store.db.pid(
                conn, pipeline))
            if target is not None:
                query = query.where(n.c.target == target)
            if target_id is not None:
                query = query.where(n.c.target_id == target_id)
            rows = list(conn.execute(query.order_by(n.c.id.desc()).limit(last)))
        return [_note(row) for row in reversed(rows)]

    def _check(self, pipeline: str, target: str, target_id: int) -> None:
        if target == "version":
            self.store.versions.get(pipeline, target_id)
            return
        found: Any = (self.store.batches.get(target_id) if target == "batch"
                      else self.store.decisions.get(target_id))
        if found.pipeline != pipeline:
            raise errors.NotFoundError(
                f"{target} {target_id} does not exist in pipeline {pipeline!r}",
                pipeline=pipeline)


def _note(row: Any) -> Note:
    return Note(id=row.id, pipeline=row.pipeline, target=row.target, target_id=row.target_id,
                author=row.author, text=row.text, at=clocks.as_utc(row.at))
