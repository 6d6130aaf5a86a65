"""Ingest: poll the source, validate each new batch, keep accepted rows, quarantine the rest.

Called by the tick (first step) and by `driftloop ingest`. Each raw batch is recorded before the
source cursor moves past it, and batches are deduplicated by fingerprint in the store, so a crash
anywhere re-reads at most one batch and never records it twice. A malformed batch is quarantined
with per-column reasons and the loop goes on; the reasons name offending rows as the source
says (`RawBatch.row_names`: the line of a CSV file, an event's message id, a row from 1).

Stream sources (Redis, NATS) deliver a message until it is acknowledged. A batch's message ids
are stored in the transaction that stores the batch, and the source is told to acknowledge only
after that commit. A crash before the commit: the messages come again and are recorded then. A
crash after it, before the ack: they come again (perhaps in other batches), are found recorded,
are dropped from the batch they came in, and are acknowledged; nothing is counted twice.

One call is one poll, and a stream source ends its poll after `max_batches` batches (default
100; see `data.sources.events`), so a tick under a steady stream of events still ends and
hands on to evaluate, decide and train; the next tick takes what was left on the server. After
a call that recorded a batch of stream messages, the ids of old batches that can no longer
come again are pruned (`MetadataStore.prune_messages`; the rule is in `store._messages`): once
per call, after the poll, so whatever was left pending before has been delivered again first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from driftloop.controller import history
from driftloop.controller import project as projects
from driftloop.core import config
from driftloop.data import row_names
from driftloop.data.sources import base as sources
from driftloop.store import entities

if TYPE_CHECKING:  # pandas: imported when a batch is recorded, not to poll for one
    import pandas as pd

    from driftloop.validation import schema as schemas

Accepted = Callable[[entities.Batch, "pd.DataFrame"], None]


def ingest(
    project: projects.Project,
    on_accepted: Accepted | None = None,
    known: history.History | None = None,
) -> list[entities.Batch]:
    """Record every new batch of the source; returns the batches recorded now (both kinds).

    `on_accepted(batch, rows)` sees each accepted batch's stored rows, so a caller that keeps
    them in memory need not read them back; `known` is such a caller's `History`, which late
    labels are joined against (one is read from the store when needed otherwise)."""
    store, name, source = project.store, project.name, project.source
    recorded, with_messages = [], False
    schemas_ = _Schemas(project, known)
    for raw in source.poll(store.get_cursor(name, source.key)):
        fresh = raw.without(store.recorded_messages(name, source.key, raw.messages))
        if fresh is not None and store.find_batch(name, fresh.fingerprint) is None:
            recorded.append(record_batch(project, fresh, on_accepted, schemas_))
            with_messages = with_messages or bool(fresh.messages)
        store.set_cursor(name, source.key, raw.cursor)
        source.acknowledge(raw)
    if with_messages:  # only stream sources record message ids
        store.prune_messages(name)
    return recorded


class _Schemas:
    """The pipeline's stored schema, read at most once per `ingest` call (it is set once, by
    the first accepted batch, and never changes after)."""

    def __init__(self, project: projects.Project, known: history.History | None = None) -> None:
        self.project = project
        self.schema_: schemas.Schema | None = None
        self.known = known

    def history(self) -> history.History:
        """The rows ingested so far (for joining late labels), up to date."""
        if self.known is None:
            self.known = history.History(self.project)
        self.known.refresh()
        return self.known

    def get(self) -> schemas.Schema | None:
        if self.schema_ is None:
            from driftloop.validation import schema as schemas

            stored = self.project.store.get_pipeline(self.project.name).schema
            self.schema_ = None if stored is None else schemas.Schema.from_json(stored)
        return self.schema_

    def set(self, schema: schemas.Schema) -> schemas.Schema:
        """Store `schema`; returns it as read back."""
        from driftloop.validation import schema as schemas

        stored = self.project.store.set_schema(self.project.name, schema.to_json()).schema
        self.schema_ = schemas.Schema.from_json(stored or {})
        return self.schema_


def record_batch(
    project: projects.Project,
    raw: sources.RawBatch,
    on_accepted: Accepted | None = None,
    schemas_: _Schemas | None = None,
) -> entities.Batch:
    """Validate one raw batch against the schema (inferred from the first good batch), store it."""
    from driftloop.data import frames
    from driftloop.validation import schema as schemas

    frame, schema, reasons = raw.frame, None, {}
    schemas_ = schemas_ or _Schemas(project)
    if frame is None:
        reasons = {"*": [raw.error or "no data"]}
    elif is_label_batch(project.spec, frame, schemas_.get()):
        frame, reasons = join_labels(project.spec, frame, schemas_.history().rows())
    if frame is not None and not reasons:
        reasons, schema = _validate(project, frame, schemas_, raw.row_names)
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
        rows=_rows(frame, raw),
        start=start,
        end=end,
        status="quarantined" if reasons else "accepted",
        reasons=reasons,
        data_uri=data_uri,
        data_sha256=data_sha,
        source_key=project.source.key,
        messages=raw.messages,
    )
    if on_accepted is not None and frame is not None and batch.status == "accepted":
        on_accepted(batch, frame)
    return batch


def _rows(frame: pd.DataFrame | None, raw: sources.RawBatch) -> int:
    """The rows a batch had: of the frame kept, else of the frame read, else its events."""
    if frame is not None:
        return len(frame)
    return len(raw.frame) if raw.frame is not None else len(raw.messages)


def _validate(
    project: projects.Project,
    frame: pd.DataFrame,
    schemas_: _Schemas,
    names: row_names.RowNames,
) -> tuple[dict[str, list[str]], schemas.Schema | None]:
    """Reasons to quarantine `frame` (empty: accept) and the schema it was checked against;
    `names` names its rows in the reasons (a label batch joined to its rows keeps their order,
    so the names of the label file's rows still fit)."""
    from driftloop.validation import schema as schemas

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
    return schemas.check_batch(frame, schema, spec.validation, names), schema


def is_label_batch(
    spec: config.PipelineSpec, frame: pd.DataFrame, schema: schemas.Schema | None
) -> bool:
    """A batch of late labels: only the row key and the target, for a pipeline with features."""
    key = history.label_key(spec)
    columns = set(map(str, frame.columns))
    return (
        schema is not None
        and key is not None
        and columns == {key, spec.target}
        and len(schema.features) > 0
    )


def join_labels(
    spec: config.PipelineSpec, labels: pd.DataFrame, rows: pd.DataFrame
) -> tuple[pd.DataFrame | None, dict[str, list[str]]]:
    """The rows the labels belong to, now with their target — or why they cannot be joined.

    The joined rows become a batch of their own (the earlier, unlabelled rows stay as they
    were), so stored batches never change and training simply sees the labelled copies.
    """
    from driftloop.data import frames

    key, target = history.label_key(spec), spec.target
    assert key is not None
    if rows.empty or key not in rows.columns:
        return None, {key: [f"{key}: labels arrived before any row they could belong to"]}
    wanted = labels[key]
    if key == spec.timestamp:
        wanted = frames.parse_times(wanted)
    elif wanted.dtype != rows[key].dtype:
        wanted = wanted.astype(rows[key].dtype, errors="ignore")
    problems: dict[str, list[str]] = {}
    if labels[target].isna().any():
        problems[target] = [f"{target}: {int(labels[target].isna().sum())} labels are empty"]
    if wanted.duplicated().any():
        problems.setdefault(key, []).append(
            f"{key}: {int(wanted.duplicated().sum())} rows labelled twice in this batch"
        )
    known = rows.drop_duplicates(subset=[key]).set_index(key)
    unknown = ~wanted.isin(known.index)
    if unknown.any():
        examples = ", ".join(map(str, wanted[unknown].head(3)))
        problems.setdefault(key, []).append(
            f"{key}: {int(unknown.sum())} labels for rows never ingested (e.g. {examples})"
        )
    if problems:
        return None, problems
    already = wanted.isin(rows.loc[rows[target].notna(), key])
    if already.any():
        examples = ", ".join(map(str, wanted[already].head(3)))
        return None, {
            target: [
                f"{target}: {int(already.sum())} rows already have a label "
                f"(e.g. {examples}); a label is final"
            ]
        }
    joined = known.loc[wanted.to_numpy()].reset_index()
    joined[target] = labels[target].to_numpy()
    return joined.drop(columns=[history.BATCH_COLUMN], errors="ignore"), {}
