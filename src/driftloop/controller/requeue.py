"""`requeue`: validate quarantined batches again under the current spec.

A batch quarantined because of a spec mistake (``target: Class`` where the data says
``class``) is not lost: ingest keeps its rows as the source read them (`kept_rows.keep_as_read`).
Once the spec is fixed, `driftloop batches requeue` reads them back and judges them exactly as
ingest judges a new batch. One that passes becomes a new accepted batch (a new, higher id, so
the tick's `History` and the policy's "new batches" see it like any batch that just arrived;
it names the quarantined one in `requeued_from`, whose status becomes ``requeued``); one that
fails again keeps its place with the new reasons. Every call writes one audit row: who, which
batches, what became of each.

Runs under the pipeline's lease, like `ingest`, so it never races a running controller.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from driftloop.controller import ingest, kept_rows
from driftloop.controller import project as projects
from driftloop.core import errors
from driftloop.data.sources import base as sources
from driftloop.store import entities


@dataclass(frozen=True)
class Requeued:
    """What a requeue did: `accepted` maps each quarantined batch that passed to its new batch;
    `refused` are the batches still quarantined (with their new reasons); `skipped` the ones
    whose rows were not kept (unreadable data: nothing to validate), with why."""

    accepted: dict[int, entities.Batch]
    refused: tuple[entities.Batch, ...]
    skipped: dict[int, str]


def select(
    project: projects.Project, ids: Sequence[int] = (), previous_spec: bool = False
) -> list[entities.Batch]:
    """The quarantined batches to requeue: those in `ids` (all if empty), and with
    `previous_spec` only those judged under other validation settings than the spec's now.
    `NotFoundError` for an id that is not a batch of the pipeline, `ConflictError` for one
    that is not quarantined."""
    store, name = project.store, project.name
    quarantined = store.batches.list(name, status="quarantined")
    chosen = quarantined
    if ids:
        by_id = {batch.id: batch for batch in quarantined}
        for batch_id in ids:
            if batch_id not in by_id:
                batch = store.batches.get(batch_id)  # NotFoundError if there is none
                if batch.pipeline != name:
                    raise errors.NotFoundError(
                        f"batch {batch_id} is not a batch of pipeline {name!r}", batch=batch_id
                    )
                raise errors.ConflictError(
                    f"batch {batch_id} is {batch.status}, not quarantined: nothing to requeue",
                    batch=batch_id,
                )
        chosen = [by_id[batch_id] for batch_id in sorted(set(ids))]
    if previous_spec:
        key = ingest.validation_key(project.spec)
        chosen = [batch for batch in chosen if batch.spec_sha256 != key]
    return chosen


def requeue(
    project: projects.Project, batches: Sequence[entities.Batch], actor: str
) -> Requeued:
    """Validate `batches` (quarantined, oldest first) again under the current spec; audited
    (an empty selection does nothing and writes nothing)."""
    if not batches:
        return Requeued({}, (), {})
    store = project.store
    key = ingest.validation_key(project.spec)
    schemas = ingest.Schemas(project)
    accepted: dict[int, entities.Batch] = {}
    refused: list[entities.Batch] = []
    skipped: dict[int, str] = {}
    for batch in sorted(batches, key=lambda b: b.id):
        kept = kept_rows.read_as_read(project, batch)
        if kept is None:
            why = "; ".join(r for reasons in batch.reasons.values() for r in reasons)
            skipped[batch.id] = f"its rows could not be read ({why}); nothing to validate"
            continue
        frame, names = kept
        raw = sources.RawBatch(
            source_uri=batch.source_uri,
            fingerprint=requeued_fingerprint(batch),
            frame=frame,
            error=None,
            cursor={},
            row_names=names,
        )
        judged = ingest.judge(project, raw, schemas)
        if judged.accepted:
            accepted[batch.id] = ingest.store_batch(project, raw, judged, requeued_from=batch.id)
        else:
            refused.append(store.batches.requarantine(batch.id, judged.findings.reasons, key))
    store.audit.add(actor, "batches.requeue", project.name, {
        "batches": [batch.id for batch in batches],
        "accepted": {str(old): new.id for old, new in accepted.items()},
        "quarantined": [batch.id for batch in refused],
        "skipped": list(skipped),
        "spec_sha256": key,
    })
    return Requeued(accepted, tuple(refused), skipped)


def requeued_fingerprint(batch: entities.Batch) -> str:
    """The fingerprint of the batch a requeue makes of `batch`: derived from its own, so a
    requeue repeated after a crash finds the batch it already made, and the source still
    finds `batch` under its original fingerprint (the same file is not read twice)."""
    return hashlib.sha256(f"requeue:{batch.fingerprint}".encode()).hexdigest()
