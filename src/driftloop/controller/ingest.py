"""Ingest: poll the source, validate each new batch, keep accepted rows, quarantine the rest.

Called by the tick (first step) and by `driftloop ingest`. Each raw batch is recorded before the
source cursor moves past it, and batches are deduplicated by fingerprint in the store, so a crash
anywhere re-reads at most one batch and never records it twice. A malformed batch is quarantined
with per-column reasons and the loop goes on; the reasons name offending rows as the source
says (`RawBatch.row_names`: the line of a CSV file, an event's message id, a row from 1). A
batch that is only beyond what the first data showed is accepted with its data-quality signals
(`validation.checks`). A quarantined batch keeps its rows as read, so that `requeue` can
validate it again once the spec is fixed.

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

Uploads (`POST /v1/batches`, `server.ingest_api`) wait in the store until the lease holder
records them (`ingest_uploads`, after the source's poll; the server does it itself when it can
take the lease): each is read like a file (`data.bodies`), named by its body's sha256 like a
file, and then marked done with the batch it became.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from driftloop.controller import history
from driftloop.controller import project as projects
from driftloop.core import config
from driftloop.data import row_names
from driftloop.data.sources import base as sources
from driftloop.store import entities, uploads

if TYPE_CHECKING:  # pandas and what reads data: imported when a batch is recorded, not to poll
    import pandas as pd

    from driftloop.store import artifacts
    from driftloop.validation import checks
    from driftloop.validation import schema as schemas

log = logging.getLogger(__name__)

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
    schemas_ = Schemas(project, known)
    cursor = store.get_cursor(name, source.key)
    for raw in source.poll(cursor):
        fresh = raw.without(store.recorded_messages(name, source.key, raw.messages))
        if fresh is not None and store.find_batch(name, fresh.fingerprint) is None:
            recorded.append(record_batch(project, fresh, on_accepted, schemas_))
            with_messages = with_messages or bool(fresh.messages)
        store.set_cursor(name, source.key, raw.cursor)
        cursor = raw.cursor
        source.acknowledge(raw)
    settled = source.settled()
    if settled is not None and settled != cursor:
        store.set_cursor(name, source.key, settled)
    if with_messages:  # only stream sources record message ids
        store.prune_messages(name)
    for _, batch, new in ingest_uploads(project, on_accepted, schemas_):
        if new:
            recorded.append(batch)
    return recorded


Recorded = tuple[uploads.Upload, entities.Batch, bool]
"""An upload marked done, the batch it became, and whether that batch is new."""


def ingest_uploads(
    project: projects.Project, on_accepted: Accepted | None = None, schemas_: Schemas | None = None
) -> list[Recorded]:
    """Record the uploads waiting, oldest first (at most 100 per call; the rest next time)."""
    store = uploads.UploadStore(project.store)
    schemas_ = schemas_ or Schemas(project)
    return [
        record_upload(project, store, upload, on_accepted, schemas_)
        for upload in store.pending(project.name)
    ]


def record_upload(
    project: projects.Project,
    store: uploads.UploadStore,
    upload: uploads.Upload,
    on_accepted: Accepted | None = None,
    schemas_: Schemas | None = None,
    frame: pd.DataFrame | None = None,
) -> Recorded:
    """Record one upload as a batch (or find the batch its body already became) and mark it
    done; `frame` is its body already read, if the caller has it."""
    from driftloop.data import bodies

    batch = project.store.find_batch(project.name, upload.sha256)
    new = batch is None
    if batch is None:
        data = upload.data or b""
        fmt: bodies.Format = upload.format  # type: ignore[assignment]
        error = None
        if frame is None:
            frame, error = bodies.read_body(data, fmt)
        raw = sources.RawBatch(
            source_uri=f"upload:{upload.key}",
            fingerprint=upload.sha256,
            frame=frame,
            error=error,
            cursor={},
            row_names=bodies.names(data, fmt, frame),
        )
        batch = record_batch(project, raw, on_accepted, schemas_)
    return store.done(upload, batch.id), batch, new


class Schemas:
    """The pipeline's stored schema, read at most once per `ingest` call (it is set once, by
    the first accepted batch, and never changes after)."""

    def __init__(self, project: projects.Project, known: history.History | None = None) -> None:
        self.project = project
        self._schema: schemas.Schema | None = None
        self.known = known

    def history(self) -> history.History:
        """The rows ingested so far (for joining late labels), up to date."""
        if self.known is None:
            self.known = history.History(self.project)
        self.known.refresh()
        return self.known

    def get(self) -> schemas.Schema | None:
        from driftloop.validation import schema as schemas

        if self._schema is None:
            from driftloop.validation import schema as schemas

            stored = self.project.store.get_pipeline(self.project.name).schema
            self._schema = None if stored is None else schemas.Schema.from_json(stored)
        return self._schema

    def set(self, schema: schemas.Schema) -> schemas.Schema:
        """Store `schema`; returns it as read back."""
        from driftloop.validation import schema as schemas


        stored = self.project.store.set_schema(self.project.name, schema.to_json()).schema
        self._schema = schemas.Schema.from_json(stored or {})
        return self._schema


@dataclass(frozen=True)
class Judged:
    """A raw batch validated: the rows to keep (a label batch's joined rows), the schema they
    were checked against (None if none could be had) and what the checks found."""

    frame: pd.DataFrame | None
    schema: schemas.Schema | None
    findings: checks.Findings

    @property
    def accepted(self) -> bool:
        return self.frame is not None and self.schema is not None and self.findings.valid


def record_batch(
    project: projects.Project,
    raw: sources.RawBatch,
    on_accepted: Accepted | None = None,
    schemas_: Schemas | None = None,
) -> entities.Batch:
    """Validate one raw batch against the schema (inferred from the first good batch), store it."""
    batch = store_batch(project, raw, judge(project, raw, schemas_ or Schemas(project)),
                        on_accepted)
    log.info("%s: batch %d (%s, %d rows) %s%s", project.name, batch.id, batch.source_uri,
             batch.rows, batch.status, f": {sorted(batch.reasons)}" if batch.reasons else "")
    return batch


def judge(project: projects.Project, raw: sources.RawBatch, schemas_: Schemas) -> Judged:
    """Validate `raw` under the current spec (a first good batch sets the schema)."""
    from driftloop.validation import checks

    frame = raw.frame
    if frame is None:
        return Judged(None, None, checks.Findings({"*": [raw.error or "no data"]}))
    if is_label_batch(project.spec, frame, schemas_.get()):
        frame, reasons = join_labels(project.spec, frame, schemas_.history().rows())
        if frame is None:
            return Judged(None, None, checks.Findings(reasons))
    findings, schema = _validate(project, frame, schemas_, raw.row_names)
    return Judged(frame, schema, findings)


def store_batch(
    project: projects.Project,
    raw: sources.RawBatch,
    judged: Judged,
    on_accepted: Accepted | None = None,
    requeued_from: int | None = None,
) -> entities.Batch:
    """Record `raw` as `judged`: an accepted batch with its rows coerced to the schema, a
    quarantined one with its rows as read (for `requeue`). `requeued_from`: see
    `MetadataStore.add_batch`."""
    from driftloop.data import frames
    from driftloop.validation import schema as schemas

    frame, schema, findings = judged.frame, judged.schema, judged.findings
    start = end = None
    if frame is not None and project.spec.timestamp in frame.columns:
        start, end = frames.time_range(frame, project.spec.timestamp)
    if judged.accepted and schema is not None and frame is not None:
        frame = schemas.coerce(frame, schema)
        stored: artifacts.Artifact | None = project.artifacts.put_frame(frame)
    else:
        stored = keep_as_read(project, raw)
    batch, _ = project.store.add_batch(
        project.name,
        source_uri=raw.source_uri,
        fingerprint=raw.fingerprint,
        rows=_rows(frame, raw),
        start=start,
        end=end,
        status="accepted" if judged.accepted else "quarantined",
        reasons=findings.reasons,
        data_uri=None if stored is None else stored.uri,
        data_sha256=None if stored is None else stored.sha256,
        source_key=project.source.key,
        messages=raw.messages,
        quality=findings.quality,
        quality_rows=findings.quality_rows,
        spec_sha256=validation_key(project.spec),
        requeued_from=requeued_from,
    )
    if on_accepted is not None and frame is not None and batch.status == "accepted":
        on_accepted(batch, frame)
    return batch


def validation_key(spec: config.PipelineSpec) -> str:
    """The sha256 of the spec parts that decide whether a batch is valid (the target, the
    timestamp, the row id and `validation`): batches judged under another key were
    quarantined under a previous spec."""
    parts = spec.model_dump(mode="json", include={"target", "timestamp", "id", "validation"})
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def keep_as_read(project: projects.Project, raw: sources.RawBatch) -> artifacts.Artifact | None:
    """Store a quarantined batch's rows as the source read them, with how its rows are named,
    so `requeue` can validate them again; None if there are none (unreadable data). Columns
    of mixed Python types (from JSON events) are kept as text, which validation reads the
    same way."""
    import pyarrow as pa

    if raw.frame is None:
        return None
    frame = raw.frame.copy(deep=False)
    frame.columns = [str(column) for column in frame.columns]
    frame.attrs = {ROW_NAMES: dataclasses.asdict(raw.row_names)}
    try:
        return project.artifacts.put_frame(frame)
    except (ValueError, TypeError, pa.ArrowException):
        mixed = frame.select_dtypes(include="object").columns
        text = frame.astype({c: "str" for c in mixed}).where(frame.notna(), None)
        text.attrs = frame.attrs
        return project.artifacts.put_frame(text)


def read_as_read(
    project: projects.Project, batch: entities.Batch
) -> tuple[pd.DataFrame, row_names.RowNames] | None:
    """The rows of a quarantined batch as they were read, with their names (None: not kept)."""
    if batch.data_uri is None or batch.data_sha256 is None:
        return None
    read = project.artifacts.get_frame(batch.data_uri, batch.data_sha256)
    stored = read.attrs.get(ROW_NAMES) or {}
    frame = read.copy(deep=False)  # an in-memory artifact store hands out what it keeps
    frame.attrs = {}
    names = row_names.RowNames(
        str(stored.get("noun", "row")), int(stored.get("first", 1)),
        tuple(str(i) for i in stored.get("ids", ())),
    )
    return frame, names


ROW_NAMES = "driftloop.row_names"
"""Where a quarantined batch's stored frame keeps its `RowNames` (Parquet metadata)."""


def _rows(frame: pd.DataFrame | None, raw: sources.RawBatch) -> int:
    """The rows a batch had: of the frame kept, else of the frame read, else its events."""
    if frame is not None:
        return len(frame)
    return len(raw.frame) if raw.frame is not None else len(raw.messages)


def _validate(
    project: projects.Project,
    frame: pd.DataFrame,
    schemas_: Schemas,
    names: row_names.RowNames,
) -> tuple[checks.Findings, schemas.Schema | None]:
    """What the checks find in `frame` and the schema it was checked against; `names` names
    its rows in the messages (a label batch joined to its rows keeps their order, so the
    names of the label file's rows still fit)."""
    from driftloop.validation import checks
    from driftloop.validation import schema as schemas

    spec = project.spec
    schema = schemas_.get()
    if schema is None:
        roles = (spec.target, spec.timestamp)
        missing = [c for c in roles if c is not None and c not in frame.columns]
        if missing or frame.empty:
            why = _missing_roles(spec, missing, frame) if missing else "empty batch"
            why += ": the first accepted batch defines the schema"
            return checks.Findings({"*": [why]}), None
        inferred = schemas.infer_schema(frame, target=spec.target, timestamp=spec.timestamp)
        schema = schemas_.set(inferred)
    findings = schemas.check_batch(frame, schema, spec.validation, names)
    if spec.text is not None and findings.valid:
        findings = _text_findings(project, frame, findings)
    return findings, schema


TEXT_REFERENCE = "text:profile"
"""The cursor holding the text profiles of the first accepted batch (`validation.text_checks`)."""


def _text_findings(
    project: projects.Project, frame: pd.DataFrame, findings: checks.Findings,
) -> checks.Findings:
    """`findings` with the text columns' signals added; the first batch's profiles are kept
    as the reference of the next ones."""
    import dataclasses

    from driftloop.validation import text_checks

    spec = project.spec.text
    assert spec is not None  # the caller checked
    columns = {c: frame[c].tolist() for c in spec.columns if c in frame.columns}
    store, name = project.store, project.name
    reference = store.get_cursor(name, TEXT_REFERENCE)
    if reference is None:
        store.set_cursor(name, TEXT_REFERENCE, text_checks.profiles(columns, spec))
    signals = text_checks.text_signals(columns, spec, reference)
    if not signals:
        return findings
    quality = dict(findings.quality)
    for column, messages in signals.items():
        quality[column] = [*quality.get(column, []), *messages]
    return dataclasses.replace(findings, quality=quality)


def _missing_roles(spec: config.PipelineSpec, missing: list[str], frame: pd.DataFrame) -> str:
    """``"missing column(s) Class (target; did you mean 'class'?)"``."""
    from driftloop.validation import spec_data

    columns = [str(c) for c in frame.columns]
    named = []
    for column in missing:
        role = "target" if column == spec.target else "timestamp"
        guess = spec_data.columns_like(column, columns)
        named.append(f"{column} ({role}" + (f"; did you mean {guess!r}?)" if guess else ")"))
    return f"missing column(s) {', '.join(named)}; columns are {', '.join(columns)}"


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
