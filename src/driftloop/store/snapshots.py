"""Retiring an online pipeline's old snapshots: a snapshot is a model version (metric
``online``) with its run and its model file, stored at every checkpoint, so without this the
store grows with every checkpoint for ever.

`due_snapshots` finds the candidates from a cursor on the version number (an index range), a
bounded slice per call; `retire_snapshots` archives (or, with `files` None, deletes) them in
one transaction: the version and its run's record, with the model file's bytes, become one
Parquet row each (kind ``snapshots``, partitioned by the day the snapshot was stored), the
rows leave, and the model file is removed afterwards unless another version or an export
shares it (files are content-addressed). A crash between the two leaves a file nothing refers
to: `driftloop gc` lists it.

Which versions the caller keeps (the aliased ones, rollback targets, the newest
`retention.versions`: `controller.records`) it passes as `keep`; kept here for good, whatever
the caller says: a version that is not an online snapshot (a trained or imported model), and
one a person left a note on or exported.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from driftloop.core import errors
from driftloop.store import archive, artifacts, metadata, retention, retire, tables

MV, R, RB = tables.model_versions, tables.runs, tables.run_batches


def due_snapshots(
    store: metadata.MetadataStore,
    pipeline: str,
    *,
    before: datetime,
    keep: Callable[[], set[int]],
    after: int,
    limit: int,
) -> tuple[list[int], int]:
    """Among the first `limit` versions numbered above `after`, up to the first stored at or
    after `before`, the numbers of the online snapshots nothing keeps (`keep()`, called only if
    there are any), oldest first, and the number up to which every version is gone or kept for
    good."""
    notes, transfers = tables.notes, tables.model_transfers
    noted = sa.exists().where(notes.c.pipeline_id == MV.c.pipeline_id,
                              notes.c.target == "version", notes.c.target_id == MV.c.version)
    exported = sa.exists().where(transfers.c.pipeline_id == MV.c.pipeline_id,
                                 transfers.c.version == MV.c.version)
    with store.db.read() as conn:
        pid = store.db.pid(conn, pipeline)
        rows = retire.made_before(conn.execute(
            sa.select(MV.c.version, MV.c.metrics, MV.c.created_at.label("at"),
                      (noted | exported).label("wanted"))
            .where(MV.c.pipeline_id == pid, MV.c.version > after)
            .order_by(MV.c.version).limit(limit)
        ), before)
    kept: set[int] | None = None
    due, cursor, held = [], after, False
    for row in rows:
        if (row.metrics or {}).get("online") and not row.wanted:
            kept = keep() if kept is None else kept
            if int(row.version) in kept:
                held = True  # kept for now: looked at again once it is not
            else:
                due.append(int(row.version))
        if not held:
            cursor = int(row.version)
    return due, cursor


def retire_snapshots(
    store: metadata.MetadataStore,
    models: artifacts.ArtifactStore,
    files: archive.Archive | None,
    pipeline: str,
    versions: Sequence[int],
) -> int:
    """Archive (`files`; None: delete) these snapshot versions with their runs and their model
    files (in `models`); returns how many left the database."""
    if not versions:
        return 0
    batch_ids = sa.select(sa.func.coalesce(_json_list(store, RB.c.batch_id), "[]")).where(
        RB.c.run_id == R.c.id).scalar_subquery()
    columns = [
        MV.c.id, MV.c.version, MV.c.run_id, MV.c.artifact_uri, MV.c.sha256,
        sa.cast(MV.c.metrics, sa.Text).label("metrics"), MV.c.created_at.label("at"),
        R.c.trainer, sa.cast(R.c.params, sa.Text).label("params"), R.c.compute_seconds,
        batch_ids.label("batch_ids"),
    ]
    with store.db.write() as conn:
        pid = store.db.pid(conn, pipeline)
        rows = conn.execute(
            sa.select(*columns).select_from(MV.outerjoin(R, R.c.id == MV.c.run_id))
            .where(MV.c.pipeline_id == pid, MV.c.version.in_(list(versions)))
            .order_by(MV.c.created_at, MV.c.id)
        ).all()
        if not rows:
            return 0
        if files is not None:
            for day_rows in retention.by_day(rows):
                files.write(conn, pipeline, "snapshots", _frame(models, day_rows))
        conn.execute(sa.delete(MV).where(MV.c.id.in_([row.id for row in rows])))
        runs = [row.run_id for row in rows if row.run_id is not None]
        conn.execute(sa.delete(R).where(R.c.id.in_(runs)))  # its batches and metrics cascade
        uris = {row.artifact_uri for row in rows}
        shared = set(conn.scalars(sa.select(MV.c.artifact_uri).where(MV.c.artifact_uri.in_(uris))))
        shared |= set(conn.scalars(sa.select(tables.model_transfers.c.artifact_uri).where(
            tables.model_transfers.c.artifact_uri.in_(uris))))
    for uri in uris - shared:
        models.delete(uri)
    return len(rows)


def _json_list(store: metadata.MetadataStore, column: Any) -> Any:
    """The aggregate that lists `column`'s values as JSON text, in this dialect."""
    if store.db.dialect == "postgresql":
        return sa.cast(sa.func.json_agg(column), sa.Text)
    return sa.func.json_group_array(column)


def _frame(models: artifacts.ArtifactStore, rows: Sequence[Any]) -> Any:
    """Snapshot rows as a frame: JSON as its text, the model file's bytes in `model` (None if
    it was gone already), times as UTC timestamps."""
    import pandas as pd

    frame = pd.DataFrame([row._asdict() for row in rows])
    frame["model"] = [_bytes(models, row) for row in rows]
    frame["batch_ids"] = [json.dumps(sorted(json.loads(text))) for text in frame["batch_ids"]]
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame


def _bytes(models: artifacts.ArtifactStore, row: Any) -> bytes | None:
    try:
        return models.get_bytes(row.artifact_uri, row.sha256)
    except errors.NotFoundError:
        return None
