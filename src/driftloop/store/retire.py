"""Retiring the loop's own records: evaluations (with their per-row errors), decisions and
profiles leave the database for the archive (`store.archive`, one Parquet file per day and
kind) once retention (`controller.records`) says nothing needs them any more.

The caller chooses which rows go; these functions find candidates through an index or a
stored cursor, move at most `limit` rows per call, and write the archive file, record it and
delete the rows in one transaction (the same rule as `store.retention.archive_predictions`), so
a row is either in the database or in a recorded file. JSON columns are archived as their
stored text, never decoded; times as UTC timestamps. With `files` None the rows are deleted
without a copy (`retention.then: delete`).

    >>> from datetime import UTC, datetime, timedelta
    >>> from driftloop.core.clock import FakeClock
    >>> from driftloop.store.artifacts import ArtifactStore
    >>> from driftloop.store.metadata import MetadataStore
    >>> from driftloop.store import archive
    >>> clock = FakeClock(datetime(2024, 1, 1, tzinfo=UTC))
    >>> meta = MetadataStore.open("sqlite://", clock=clock)
    >>> _ = meta.pipelines.ensure("p", {})
    >>> for _ in range(3):
    ...     _ = meta.decisions.add("p", kind="retrain", fired=False, evidence={"n": 1})
    >>> _ = clock.advance(timedelta(days=2))
    >>> files = archive.Archive(meta, ArtifactStore("memory://doctest-retire"))
    >>> due, cursor = due_decisions(meta, "p", before=clock.now() - timedelta(days=1),
    ...                             after_id=0, limit=10)
    >>> due, cursor  # the newest of its kind stays
    ([1, 2], 2)
    >>> retire(meta, files, "p", "decisions", due)
    2
    >>> [d.id for d in meta.decisions.list("p")], files.files_of("p")[0].rows
    ([3], 2)
    >>> meta.close()
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from driftloop.core import clock as clocks
from driftloop.store import archive, metadata, retention, tables

E, D, P = tables.evaluations, tables.decisions, tables.profiles
CHUNK = 500

_COLUMNS: dict[str, tuple[sa.Table, list[Any]]] = {
    "evaluations": (
        E,
        [
            E.c.id,
            E.c.batch_id,
            E.c.version,
            E.c.metric,
            E.c.value,
            E.c.rows,
            sa.cast(E.c.errors, sa.Text).label("errors"),
            E.c.at,
            E.c.estimated_value,
            E.c.estimated_rows,
        ],
    ),
    "decisions": (
        D,
        [
            D.c.id,
            D.c.kind,
            D.c.fired,
            sa.cast(D.c.evidence, sa.Text).label("evidence"),
            sa.cast(D.c.caused_by, sa.Text).label("caused_by"),
            D.c.at,
        ],
    ),
    "profiles": (
        P,
        [
            P.c.id,
            P.c.batch_id,
            sa.cast(P.c.profile, sa.Text).label("profile"),
            P.c.created_at.label("at"),
        ],
    ),
}
"""Per kind of record: its table and the columns archived (each file has an ``at``)."""


def retire(
    store: metadata.MetadataStore,
    files: archive.Archive | None,
    pipeline: str,
    kind: str,
    ids: Sequence[int],
) -> int:
    """Archive (or, with `files` None, delete) the `kind` records with these ids, in one
    transaction; returns how many left the database."""
    if not ids:
        return 0
    table, columns = _COLUMNS[kind]
    with store.db.write() as conn:
        pid = store.db.pid(conn, pipeline)
        rows = []
        for start in range(0, len(ids), CHUNK):
            rows += conn.execute(
                sa.select(*columns).where(
                    table.c.pipeline_id == pid, table.c.id.in_(ids[start : start + CHUNK])
                )
            ).all()
        if not rows:
            return 0
        rows.sort(key=lambda row: (row.at, row.id))
        if files is not None:
            for day_rows in retention.by_day(rows):
                files.write(conn, pipeline, kind, _frame(day_rows))
        taken = [row.id for row in rows]
        for start in range(0, len(taken), CHUNK):
            conn.execute(sa.delete(table).where(table.c.id.in_(taken[start : start + CHUNK])))
    return len(rows)


def _frame(rows: Sequence[Any]) -> Any:
    """Rows as a frame: JSON text as is (JSON null as None), times as UTC timestamps."""
    import pandas as pd

    frame = pd.DataFrame([row._asdict() for row in rows])
    for name in ("errors", "evidence", "caused_by", "profile"):
        if name in frame.columns:
            frame[name] = frame[name].where(frame[name] != "null", None)
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame


def due_decisions(
    store: metadata.MetadataStore,
    pipeline: str,
    *,
    before: datetime,
    after_id: int,
    limit: int,
) -> tuple[list[int], int]:
    """Among the first `limit` decisions with id > `after_id`, up to the first made at or after
    `before` (`made_before`), the ids of
    those nothing needs (oldest first), and the id below which every decision is gone or needed
    for good. Needed: the newest decision of its kind, fired or not (what the tick reads back),
    for now; the cause of a run (a version's lineage: "why is this model live?") for good."""
    newer = sa.alias(D)
    has_newer = sa.exists().where(
        newer.c.pipeline_id == D.c.pipeline_id,
        newer.c.kind == D.c.kind,
        newer.c.id > D.c.id,
        newer.c.fired == D.c.fired,
    )
    with store.db.read() as conn:
        pid = store.db.pid(conn, pipeline)
        rows = made_before(conn.execute(
            sa.select(D.c.id, D.c.fired, D.c.at, has_newer.label("superseded"))
            .where(D.c.pipeline_id == pid, D.c.id > after_id)
            .order_by(D.c.id)
            .limit(limit)
        ), before)
        fired = [row.id for row in rows if row.fired]
        caused = (
            set(
                conn.scalars(
                    sa.select(tables.runs.c.decision_id).where(tables.runs.c.decision_id.in_(fired))
                )
            )
            if fired
            else set()
        )
    due, cursor, held = [], after_id, False
    for row in rows:
        if not row.superseded and row.id not in caused:
            held = True  # the newest of its kind: looked at again once a newer one comes
        elif row.id not in caused:
            due.append(int(row.id))
        if not held:
            cursor = int(row.id)
    return due, cursor


def due_profiles(
    store: metadata.MetadataStore,
    pipeline: str,
    *,
    before: datetime,
    keep: Callable[[], set[int]],
    after_id: int,
    limit: int,
) -> tuple[list[int], int]:
    """Among the first `limit` profiles with id > `after_id`, up to the first made at or after
    `before` (`made_before`), the ids of
    those that are not the profile of a version in `keep()` (called only if there are any),
    oldest first, and the id below which every profile is gone."""
    mv = tables.model_versions
    with store.db.read() as conn:
        pid = store.db.pid(conn, pipeline)
        rows = made_before(conn.execute(
            sa.select(P.c.id, mv.c.version, P.c.created_at.label("at"))
            .outerjoin(mv, mv.c.profile_id == P.c.id)
            .where(P.c.pipeline_id == pid, P.c.id > after_id)
            .order_by(P.c.id)
            .limit(limit)
        ), before)
    if not rows:
        return [], after_id
    kept = keep()
    owners: dict[int, set[int]] = {}
    for row in rows:
        owners.setdefault(int(row.id), set()).update([] if row.version is None else [row.version])
    due, cursor, held = [], after_id, False
    for profile, versions in owners.items():
        if versions & kept:
            held = True
        else:
            due.append(profile)
        if not held:
            cursor = profile
    return due, cursor


def made_before(rows: Iterable[Any], before: datetime) -> list[Any]:
    """The leading `rows` (in id order) made before `before`: records are made in clock order,
    so the first younger one ends what is due. A cursor's slice is read by id alone (an index
    range) and cut here, reading no further (a condition on the time in the query would read
    every younger row)."""
    taken = []
    for row in rows:
        if clocks.as_utc(row.at) >= before:
            break
        taken.append(row)
    return taken
