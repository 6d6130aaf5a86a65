"""Ingest: poll the source, validate each new batch, keep accepted rows, quarantine the rest.

Called by the tick (first step) and by `driftloop ingest`. Each raw batch is recorded before the
source cursor moves past it, and batches are deduplicated by fingerprint in the store, so a crash
anywhere re-reads at most one batch and never records it twice. A malformed batch is quarantined
with per-column reasons and the loop goes on.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from driftloop.controller import project as projects
from driftloop.data import frames
from driftloop.data.sources import base as sources
from driftloop.store import entities
from driftloop.validation import schema as schemas

Accepted = Callable[[entities.Batch, pd.DataFrame], None]


def ingest(project: projects.Project, on_accepted: Accepted | None = None) -> list[entities.Batch]:
    """Record every new batch of the source; returns the batches recorded now (both kinds).

    `on_accepted(batch, rows)` sees each accepted batch's stored rows, so a caller that keeps
    them in memory need not read them back."""
    store, name = project.store, project.name
    recorded = []
    schemas_ = _Schemas(project)
    for raw in project.source.poll(store.get_cursor(name, project.source.key)):
        if store.find_batch(name, raw.fingerprint) is None:
            recorded.append(record_batch(project, raw, on_accepted, schemas_))
        store.set_cursor(name, project.source.key, raw.cursor)
    return recorded


class _Schemas:
    """The pipeline's stored schema, read at most once per `ingest` call (it is set once, by
    the first accepted batch, and never changes after)."""

    def __init__(self, project: projects.Project) -> None:
        self.project = project
        self.schema_: schemas.Schema | None = None

    def get(self) -> schemas.Schema | None:
        if self.schema_ is None:
            stored = self.project.store.get_pipeline(self.project.name).schema
            self.schema_ = None if stored is None else schemas.Schema.from_json(stored)
        return self.schema_

    def set(self, schema: schemas.Schema) -> schemas.Schema:
        """Store `schema`; returns it as read back."""
        stored = self.project.store.set_schema(self.project.name, schema.to_json()).schema
        self.schema_ = schemas.Schema.from_json(stored or {})
        return self.schema_


def record_batch(
    project: projects.Project, raw: sources.RawBatch, on_accepted: Accepted | None = None,
    schemas_: _Schemas | None = None,
) -> entities.Batch:
    """Validate one raw batch against the schema (inferred from the first good batch), store it."""
    frame, schema = raw.frame, None
    if frame is None:
        reasons = {"*": [raw.error or "no data"]}
    else:
        reasons, schema = _validate(project, frame, schemas_ or _Schemas(project))
    start = end = None
    data_uri = data_sha = None
    if frame is not None and project.spec.timestamp in frame.columns:
        start, end = frames.time_range(frame, project.spec.timestamp)
    if frame is not None and schema is not None and not reasons:
        frame = schemas.coerce(frame, schema)
        stored = project.artifacts.put_frame(frame)
        data_uri, data_sha = stored.uri, stored.sha256
    batch, _ = project.store.add_batch(
        project.name,
        source_uri=raw.source_uri,
        fingerprint=raw.fingerprint,
        rows=0 if frame is None else len(frame),
        start=start,
        end=end,
        status="quarantined" if reasons else "accepted",
        reasons=reasons,
        data_uri=data_uri,
        data_sha256=data_sha,
    )
    if on_accepted is not None and frame is not None and batch.status == "accepted":
        on_accepted(batch, frame)
    return batch


def _validate(
    project: projects.Project, frame: pd.DataFrame, schemas_: _Schemas
) -> tuple[dict[str, list[str]], schemas.Schema | None]:
    """Reasons to quarantine `frame` (empty: accept) and the schema it was checked against."""
    spec = project.spec
    schema = schemas_.get()
    if schema is None:
        roles = (spec.target, spec.timestamp)
        missing = [c for c in roles if c is not None and c not in frame.columns]
        if missing or frame.empty:
            why = f"missing column(s) {', '.join(missing)}" if missing else "empty batch"
            return {"*": [f"{why}: the first accepted batch defines the schema"]}, None
        inferred = schemas.infer_schema(frame, target=spec.target, timestamp=spec.timestamp)
        schema = schemas_.set(inferred)
    return schemas.check_batch(frame, schema, spec.validation), schema
