"""Retention's work on the database, one bounded slice per call: predictions past the label
horizon go to the archive, per-minute serving stats become hourly, old hourly stats go, a
batch's file is marked archived, and SQLite gives freed pages back to the file system.

Every call does at most `limit` rows (or pages) of work and finds them through an index or a
stored cursor, so its cost depends on the slice, not on how much is waiting (the same rule as
`store._messages.prune`). `controller.retention_tick` calls these once per tick.

What is never deleted: a prediction younger than `before` (the label horizon, and the start
of a rollout under evaluation: `controller.retention_tick`), and a labelled prediction whose label
the controller has not scored yet (feedback id above `evaluated`).

On PostgreSQL the deletes are these slices, each its own short transaction, and autovacuum
reclaims the space; on SQLite a file created by driftloop is in incremental auto-vacuum mode
(`_engine`), and `compact` returns at most `limit` free pages per call. An older file (no
auto-vacuum) is rebuilt once with ``VACUUM`` when at least `VACUUM_SHARE` of it is free; that
switches it to incremental mode for good.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from driftloop.core import clock as clocks
from driftloop.store import (
    _alias_stack,
    _database,
    _engine,
    _rows,
    archive,
    metadata,
    serving_tables,
    tables,
)

P, F, S = serving_tables.predictions, serving_tables.feedback, serving_tables.serving_stats
B = tables.batches
HOURLY = "hourly"
"""The `process` of a serving-stats row that sums an hour of every process's minutes."""
STATS_CURSOR = "retention.stats"
VACUUM_SHARE = 0.5
CHUNK = 500

_DUE = (  # JSON columns as their stored text: archived as is, never decoded and encoded again
    sa.select(P.c.id, P.c.alias, P.c.version, P.c.key, P.c.at,
              *(sa.cast(P.c[name], sa.Text).label(name)
                for name in ("features", "prediction", "probabilities")),
              F.c.id.label("feedback_id"), sa.cast(F.c.label, sa.Text).label("label"),
              F.c.actor.label("labelled_by"), F.c.at.label("labelled_at"))
    .select_from(P.outerjoin(F, F.c.prediction_id == P.c.id))
    .where(P.c.pipeline_id == sa.bindparam("pid"), P.c.at < sa.bindparam("before"))
    .order_by(P.c.at, P.c.id)
    .limit(sa.bindparam("limit"))
)


def archive_predictions(
    store: metadata.MetadataStore, files: archive.Archive | None, pipeline: str, *,
    before: datetime, evaluated: int, limit: int,
) -> int:
    """Move at most `limit` of the oldest predictions stamped before `before` to the archive
    (`files`; None: delete them), stopping at the first whose label is not scored yet
    (feedback id > `evaluated`). One transaction; returns how many rows left the database."""
    with store.db.write() as conn:
        pid = store.db.pid(conn, pipeline)
        rows = conn.execute(_DUE, {"pid": pid, "before": before, "limit": limit}).all()
        taken = []
        for row in rows:
            if row.feedback_id is not None and row.feedback_id > evaluated:
                break
            taken.append(row)
        if not taken:
            return 0
        if files is not None:
            for day_rows in by_day(taken):
                files.write(conn, pipeline, "predictions", _frame(day_rows))
        ids = [row.id for row in taken]
        for start in range(0, len(ids), CHUNK):
            conn.execute(sa.delete(F).where(F.c.prediction_id.in_(ids[start:start + CHUNK])))
            conn.execute(sa.delete(P).where(P.c.id.in_(ids[start:start + CHUNK])))
    return len(taken)


def by_day(rows: Sequence[Any]) -> list[list[Any]]:
    """Rows grouped by the UTC day of their `at`, in order."""
    days: dict[Any, list[Any]] = {}
    for row in rows:
        days.setdefault(row.at.date(), []).append(row)  # `at` is an aware UTC time
    return list(days.values())


def _frame(rows: Sequence[Any]) -> Any:
    """The archived form of prediction rows: JSON values as JSON text (a Parquet column has one
    type; features and labels do not; JSON null is None), times as UTC timestamps."""
    import pandas as pd

    columns = list(zip(*rows, strict=True))
    frame = pd.DataFrame(dict(zip(rows[0]._fields, columns, strict=True)))
    for name in ("features", "prediction", "probabilities", "label"):
        frame[name] = frame[name].where(frame[name] != "null", None)
    frame["version"] = frame["version"].astype("int64")
    for name in ("at", "labelled_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True)
    return frame[["id", "alias", "version", "key", "features", "prediction", "probabilities",
                  "at", "label", "labelled_by", "labelled_at"]]


def downsample_stats(
    store: metadata.MetadataStore, pipeline: str, *, before: datetime, limit: int,
) -> int:
    """Merge at most `limit` per-minute serving-stats rows older than `before` into one row
    per hour, alias and version (process `HOURLY`); sums and latency histograms are kept
    exactly, so every total `ServingStats.read` gives stays the same. Returns rows merged."""
    with store.db.write() as conn:
        pid = store.db.pid(conn, pipeline)
        cursor = _cursor(conn, pid)
        query = (sa.select(S).where(S.c.pipeline_id == pid, S.c.minute < before,
                                    S.c.process != HOURLY)
                 .order_by(S.c.minute).limit(limit))
        if cursor is not None:
            query = query.where(S.c.minute >= cursor)
        rows = conn.execute(query).all()
        if not rows:
            return 0
        hours: dict[tuple[datetime, str, int], list[Any]] = {}
        for row in rows:
            hour = clocks.as_utc(row.minute).replace(minute=0, second=0, microsecond=0)
            hours.setdefault((hour, row.alias, int(row.version)), []).append(row)
        for (hour, alias, version), merged in hours.items():
            key = (S.c.pipeline_id == pid, S.c.minute == hour, S.c.process == HOURLY,
                   S.c.alias == alias, S.c.version == version)
            old = conn.execute(sa.select(S).where(*key)).first()
            parts = merged + ([old] if old is not None else [])
            latency: dict[str, int] = {}
            for part in parts:
                for index, count in (part.latency or {}).items():
                    latency[str(index)] = latency.get(str(index), 0) + int(count)
            values = {"requests": sum(int(p.requests) for p in parts),
                      "errors": sum(int(p.errors) for p in parts), "latency": latency}
            if old is None:
                conn.execute(sa.insert(S).values(
                    pipeline_id=pid, minute=hour, process=HOURLY, alias=alias, version=version,
                    **values))
            else:
                conn.execute(sa.update(S).where(*key).values(**values))
            for part in merged:
                conn.execute(sa.delete(S).where(
                    S.c.pipeline_id == pid, S.c.minute == part.minute,
                    S.c.process == part.process, S.c.alias == part.alias,
                    S.c.version == part.version))
        _set_cursor(conn, store, pid, clocks.as_utc(rows[-1].minute).replace(
            minute=0, second=0, microsecond=0))
    return len(rows)


def drop_hourly_stats(
    store: metadata.MetadataStore, pipeline: str, *, before: datetime, limit: int,
) -> int:
    """Delete at most `limit` hourly serving-stats rows older than `before`."""
    with store.db.write() as conn:
        pid = store.db.pid(conn, pipeline)
        old = conn.execute(sa.select(S.c.minute, S.c.alias, S.c.version).where(
            S.c.pipeline_id == pid, S.c.minute < before, S.c.process == HOURLY,
        ).order_by(S.c.minute).limit(limit)).all()
        for row in old:
            conn.execute(sa.delete(S).where(
                S.c.pipeline_id == pid, S.c.minute == row.minute, S.c.process == HOURLY,
                S.c.alias == row.alias, S.c.version == row.version))
    return len(old)


def _cursor(conn: sa.Connection, pid: int) -> datetime | None:
    c = tables.cursors
    value = conn.scalar(sa.select(c.c.value).where(c.c.pipeline_id == pid,
                                                   c.c.key == STATS_CURSOR))
    return None if not value else clocks.as_utc(datetime.fromisoformat(value["hour"]))


def _set_cursor(
    conn: sa.Connection, store: metadata.MetadataStore, pid: int, hour: datetime,
) -> None:
    c = tables.cursors
    statement = _engine.insert(store.db.dialect, c)
    conn.execute(statement.on_conflict_do_update(
        index_elements=["pipeline_id", "key"],
        set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at},
    ), {"pipeline_id": pid, "key": STATS_CURSOR, "value": {"hour": hour.isoformat()},
        "updated_at": store.clock.now()})


def mark_archived(
    store: metadata.MetadataStore, files: archive.Archive, pipeline: str, batch_id: int,
    data: Any,
) -> str | None:
    """Move one batch's file out of the live area: its rows (`data`, a frame read from the
    file) are archived and the batch's `data_uri` names the archived file; with `data` None,
    `data_uri` becomes NULL (the rows are gone). The content-addressed file is deleted
    afterwards unless another batch still points to it. Returns the archived file's URI."""
    with store.db.write() as conn:
        row = conn.execute(sa.select(B).where(B.c.id == batch_id)).one()
        if row.archived_at is not None:
            return str(row.data_uri) if row.data_uri else None
        uri = sha = None
        if data is not None:
            written = files.write(conn, pipeline, "batch", data, batch_id=batch_id,
                                  day=row.created_at)
            uri, sha = written.uri, written.sha256
        conn.execute(sa.update(B).where(B.c.id == batch_id).values(
            archived_at=store.clock.now(), data_uri=uri, data_sha256=sha))
        shared = conn.scalar(sa.select(sa.func.count()).where(
            B.c.data_sha256 == row.data_sha256, B.c.id != batch_id))
    if row.data_uri and not shared:
        files.files.delete(row.data_uri)
    return uri


def compact(store: metadata.MetadataStore, *, pages: int) -> str | None:
    """Give free pages of a SQLite file back (at most `pages` in incremental mode; a full
    ``VACUUM`` of a file without auto-vacuum once half of it is free). PostgreSQL: nothing
    (autovacuum). Returns what was done, or None."""
    if store.db.dialect != "sqlite" or store.engine.url.database in (None, "", ":memory:"):
        return None
    with store.engine.connect() as conn:
        driver: Any = conn.connection.driver_connection
        mode = driver.execute("PRAGMA auto_vacuum").fetchone()[0]
        free = driver.execute("PRAGMA freelist_count").fetchone()[0]
        total = driver.execute("PRAGMA page_count").fetchone()[0]
        if not free:
            return None
        if mode == 2:
            # executescript runs the pragma to its end (execute would free a single page)
            driver.executescript(f"PRAGMA incremental_vacuum({int(pages)})")
            return f"incremental vacuum: {min(free, pages)} of {free} free pages"
        if free >= VACUUM_SHARE * total:
            driver.execute("PRAGMA auto_vacuum=INCREMENTAL")
            driver.execute("VACUUM")
            return f"VACUUM: {free} of {total} pages were free"
    return None


def rollout_start(store: metadata.MetadataStore, pipeline: str) -> datetime | None:
    """When the oldest alias other than the champion that holds a version (a canary, shadow or
    challenger under evaluation) last moved: its rollout compares predictions from then on."""
    a = tables.aliases
    with store.db.read() as conn:
        found = conn.scalar(sa.select(sa.func.min(a.c.updated_at)).where(
            a.c.pipeline_id == store.db.pid(conn, pipeline), a.c.alias != "champion",
            a.c.version.is_not(None)))
    return None if found is None else clocks.as_utc(found)


def needed_batches(
    store: metadata.MetadataStore, pipeline: str, newest: int,
    rollbacks: Rollbacks | None = None,
) -> set[int]:
    """Ids of the batches some version still needs: the training lineage of every version an
    alias holds, of each alias's rollback target and of the newest `newest` versions."""
    versions = needed_versions(store, pipeline, newest, rollbacks)
    mv, rb = tables.model_versions, tables.run_batches
    with store.db.read() as conn:
        pid = store.db.pid(conn, pipeline)
        return set(conn.scalars(
            sa.select(rb.c.batch_id).join(mv, mv.c.run_id == rb.c.run_id).where(
                mv.c.pipeline_id == pid, mv.c.version.in_(sorted(versions)))))


def needed_versions(
    store: metadata.MetadataStore, pipeline: str, newest: int,
    rollbacks: Rollbacks | None = None,
) -> set[int]:
    """The versions whose lineage retention keeps: every version an alias holds, each alias's
    rollback target (from `rollbacks`, which a caller keeps between calls; default: read from
    the whole history) and the newest `newest` versions."""
    versions = set(store.aliases.all(pipeline).values())
    versions |= (rollbacks or Rollbacks(store, pipeline)).targets()
    mv = tables.model_versions
    with store.db.read() as conn:
        pid = store.db.pid(conn, pipeline)
        versions.update(conn.scalars(sa.select(mv.c.version).where(mv.c.pipeline_id == pid)
                                     .order_by(mv.c.version.desc()).limit(newest)))
    return versions


class Rollbacks:
    """Where a rollback of each alias of `pipeline` would go (`_alias_stack`), kept up to date
    from the moves stored since the last call: a call reads the new moves, not the history."""

    def __init__(self, store: metadata.MetadataStore, pipeline: str) -> None:
        self.store = store
        self.pipeline = pipeline
        self._stacks: dict[str, list[int | None]] = {}
        self._after_id = 0  # the newest move replayed

    def targets(self) -> set[int]:
        """Each alias's rollback target (aliases with none left out), passing over versions
        retention already retired, as `Aliases.rollback` does."""
        for move in self.store.aliases.history(self.pipeline, after_id=self._after_id):
            _alias_stack.push(self._stacks.setdefault(move.alias, []), move.action, move.version)
            self._after_id = move.id
        held = {v for stack in self._stacks.values() for v in stack if v is not None}
        mv = tables.model_versions
        with self.store.db.read() as conn:
            pid = self.store.db.pid(conn, self.pipeline)
            stored = set(conn.scalars(sa.select(mv.c.version).where(
                mv.c.pipeline_id == pid, mv.c.version.in_(held)))) if held else set()
        found = (_alias_stack.target(stack, stored.__contains__) for stack in self._stacks.values())
        return {version for version in found if version is not None}


def quarantined(
    store: metadata.MetadataStore, pipeline: str, *, after_id: int, limit: int, count: int,
) -> list[Any]:
    """The first `limit` quarantined and requeued batches with id > `after_id` whose file is
    still in place, each with how many batches of the pipeline came after it (counted up to
    `count`; 0: not counted): `(batch, newer)` pairs."""
    with store.db.read() as conn:
        pid = store.db.pid(conn, pipeline)
        rows = conn.execute(_database.with_pipeline(B).where(
            B.c.pipeline_id == pid, B.c.status.in_(("quarantined", "requeued")),
            B.c.id > after_id, B.c.archived_at.is_(None), B.c.data_uri.is_not(None),
        ).order_by(B.c.id).limit(limit)).all()
        found = []
        for row in rows:
            newer = count and conn.scalar(sa.select(sa.func.count()).select_from(
                sa.select(B.c.id).where(B.c.pipeline_id == pid, B.c.id > row.id)
                .limit(count).subquery()))
            found.append((_rows.batch(row), int(newer or 0)))
    return found
