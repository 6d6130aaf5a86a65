"""The archive: rows that leave the metadata store, as Parquet files partitioned by day in the
artifact store, each recorded in the `archives` table with its sha256.

Retention (`controller.retention_tick`) writes a file, then records it and deletes the rows it holds
in one transaction, so rows are either in the database or in a recorded file (a crash between
the two leaves a file nothing records, written again under the same name by the next tick:
its bytes are a function of its rows). Layout under the artifact root:

    archive/<pipeline>/predictions/day=2024-03-01/<first id>-<sha[:12]>.parquet
    archive/<pipeline>/batches/day=2024-03-01/batch-<id>-<sha[:12]>.parquet

`read_predictions` gives the archived predictions back as one frame (labels joined), checked
against their hashes, for `driftloop backtest --archive` and the drift report; `expired` lists
the files `driftloop gc` may delete once `retention.archives` has passed.

    >>> from datetime import UTC, datetime
    >>> import pandas as pd
    >>> from driftloop.core.clock import FakeClock
    >>> from driftloop.store.artifacts import ArtifactStore
    >>> from driftloop.store.metadata import MetadataStore
    >>> meta = MetadataStore.open("sqlite://", clock=FakeClock(datetime(2024, 1, 2, tzinfo=UTC)))
    >>> _ = meta.pipelines.ensure("p", {})
    >>> archive = Archive(meta, ArtifactStore("memory://doctest-archive"))
    >>> frame = pd.DataFrame({"id": ["a"], "at": [datetime(2024, 1, 1, tzinfo=UTC)], "x": [1.0]})
    >>> with meta.db.write() as conn:
    ...     record = archive.write(conn, "p", "predictions", frame)
    >>> record.day, record.rows, archive.read_predictions("p")["x"].tolist()
    ('2024-01-01', 1, [1.0])
    >>> meta.close()
"""

from __future__ import annotations

import hashlib
import io
import posixpath
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from driftloop.core import clock as clocks
from driftloop.store import artifacts, metadata, tables

if TYPE_CHECKING:
    import pandas as pd

A = tables.archives
RECORDS = ("decisions", "evaluations", "predictions", "profiles", "snapshots")
"""The kinds of archived files that hold rows of records, merged by day (`Archive.merge`);
the other kind, ``batch``, is one file per batch."""


@dataclass(frozen=True)
class ArchiveFile:
    """One archived file: what (`kind`, the `day` of its rows, its batch), where, its sha256."""

    id: int
    pipeline: str
    kind: str
    day: str
    uri: str
    sha256: str
    rows: int
    bytes: int
    batch_id: int | None
    first_at: datetime | None
    last_at: datetime | None
    created_at: datetime
    deleted_at: datetime | None


class Archive:
    """Archived files of the pipelines of `store`, kept in the artifact store `files`."""

    def __init__(self, store: metadata.MetadataStore, files: artifacts.ArtifactStore) -> None:
        self.store = store
        self.files = files

    def __repr__(self) -> str:
        return f"Archive({self.store!r}, {self.files!r})"

    def write(
        self, conn: sa.Connection, pipeline: str, kind: str, frame: pd.DataFrame,
        batch_id: int | None = None, day: datetime | None = None,
        created_at: datetime | None = None,
    ) -> ArchiveFile:
        """Write the rows of `frame` as a Parquet file in the partition of `day` (default: the
        day of its first ``at``) and record it within `conn`'s transaction (as written at
        `created_at`, default now: `driftloop gc` counts the file's age from then)."""
        buffer = io.BytesIO()
        frame.to_parquet(buffer, engine="pyarrow", index=False)
        data = buffer.getvalue()
        sha = hashlib.sha256(data).hexdigest()
        stamps = frame["at"] if "at" in frame.columns and len(frame) else None
        first = None if stamps is None else clocks.as_utc(stamps.min().to_pydatetime())
        last = None if stamps is None else clocks.as_utc(stamps.max().to_pydatetime())
        when = day or first or self.store.clock.now()
        partition = f"{clocks.as_utc(when):%Y-%m-%d}"
        name = (f"batch-{batch_id}-{sha[:12]}" if kind == "batch"
                else f"{frame['id'].iloc[0]}-{sha[:12]}")
        folder = "batches" if kind == "batch" else kind
        path = posixpath.join(self.files.root, "archive", pipeline, folder, f"day={partition}",
                              f"{name}.parquet")
        self._put(path, data)
        values = {
            "pipeline_id": self.store.db.pid(conn, pipeline), "kind": kind, "day": partition,
            "uri": self.files.fs.unstrip_protocol(path), "sha256": sha, "rows": len(frame),
            "bytes": len(data), "batch_id": batch_id, "first_at": first, "last_at": last,
            "created_at": created_at or self.store.clock.now(), "deleted_at": None,
        }
        new_id = conn.scalar(sa.insert(A).returning(A.c.id), values)
        values.pop("pipeline_id")
        return ArchiveFile(id=int(new_id), pipeline=pipeline, **values)

    def _put(self, path: str, data: bytes) -> None:
        fs = self.files.fs
        fs.makedirs(posixpath.dirname(path), exist_ok=True)
        partial = f"{path}.partial"
        fs.pipe_file(partial, data)
        fs.mv(partial, path)

    def merge(
        self, pipeline: str, *, before_day: str, rows: int, from_day: str = "",
    ) -> ArchiveFile | None:
        """Merge the small files of one partition: the oldest (kind, day) from `from_day` and
        before `before_day` with at least two files of fewer than `rows` rows each (batch
        files, one per batch, stay as they are; a caller that found nothing to merge up to a
        day passes it as `from_day` next time, so a call reads the newest days' records, not
        every day's). Its smallest files, up to `rows` rows in all, become one file with
        the same rows in ``at`` order, recorded with its sha256 and the oldest part's time (gc
        sees the same age); the parts' records go in the same transaction, their files after
        it. Returns the merged file, or None when there is nothing to merge."""
        import pandas as pd

        with self.store.db.read() as conn:
            pid = self.store.db.pid(conn, pipeline)
            small = (A.c.pipeline_id == pid, A.c.kind.in_(RECORDS), A.c.day >= from_day,
                     A.c.day < before_day, A.c.deleted_at.is_(None), A.c.rows < rows)
            found = conn.execute(sa.select(A.c.kind, A.c.day).where(*small)
                                 .group_by(A.c.kind, A.c.day).having(sa.func.count() > 1)
                                 .order_by(A.c.day).limit(1)).first()
            if found is None:
                return None
            candidates = conn.execute(_with_pipeline().where(
                *small, A.c.kind == found.kind, A.c.day == found.day,
            ).order_by(A.c.rows, A.c.id)).all()
        parts: list[ArchiveFile] = []
        total = 0
        for row in candidates:
            if len(parts) >= 2 and total + int(row.rows) > rows:
                break
            parts.append(_file(row))
            total += int(row.rows)
        frame = pd.concat([self.read(part) for part in parts], ignore_index=True)
        frame = frame.sort_values(["at", "id"], kind="stable", ignore_index=True)
        with self.store.db.write() as conn:
            merged = self.write(conn, pipeline, found.kind, frame,
                                day=datetime.fromisoformat(found.day),
                                created_at=min(part.created_at for part in parts))
            conn.execute(sa.delete(A).where(A.c.id.in_([part.id for part in parts])))
        for part in parts:
            if part.uri != merged.uri:
                self.files.delete(part.uri)
        return merged

    def files_of(
        self, pipeline: str, kind: str | None = None, *, deleted: bool = False,
    ) -> list[ArchiveFile]:
        """The pipeline's archived files in day and id order (those gc deleted only if
        `deleted`)."""
        with self.store.db.read() as conn:
            query = _with_pipeline().where(A.c.pipeline_id == self.store.db.pid(conn, pipeline))
            if kind is not None:
                query = query.where(A.c.kind == kind)
            if not deleted:
                query = query.where(A.c.deleted_at.is_(None))
            rows = conn.execute(query.order_by(A.c.day, A.c.id)).all()
        return [_file(row) for row in rows]

    def read(self, record: ArchiveFile) -> pd.DataFrame:
        """The rows of one archived file, after checking its sha256."""
        import pandas as pd

        data = self.files.get_bytes(record.uri, record.sha256)
        return pd.read_parquet(io.BytesIO(data), engine="pyarrow")

    def read_predictions(
        self, pipeline: str, since: datetime | None = None, until: datetime | None = None,
    ) -> pd.DataFrame:
        """Every archived prediction of `pipeline` (with its label, if one came), oldest
        first; only the days overlapping [`since`, `until`) if given."""
        import pandas as pd

        parts = [
            self.read(record) for record in self.files_of(pipeline, "predictions")
            if (since is None or record.last_at is None or record.last_at >= since)
            and (until is None or record.first_at is None or record.first_at < until)
        ]
        if not parts:
            return pd.DataFrame()
        frame = pd.concat(parts, ignore_index=True).sort_values(["at", "id"], kind="stable")
        if since is not None:
            frame = frame[frame["at"] >= since]
        if until is not None:
            frame = frame[frame["at"] < until]
        return frame.reset_index(drop=True)

    def labelled_rows(self, pipeline: str, target: str, timestamp: str) -> pd.DataFrame:
        """The archived predictions that got a label, as rows of the pipeline's data: one
        column per feature, the label as `target`, the time served as `timestamp`, oldest
        first (what `driftloop backtest --archive` replays)."""
        return served_rows(self.read_predictions(pipeline), target, timestamp, labelled=True)

    def expired(self, before: datetime) -> list[ArchiveFile]:
        """Archived files of every pipeline written before `before` and not deleted yet."""
        with self.store.db.read() as conn:
            rows = conn.execute(_with_pipeline().where(
                A.c.deleted_at.is_(None), A.c.created_at < before).order_by(A.c.id)).all()
        return [_file(row) for row in rows]

    def delete(self, records: list[ArchiveFile]) -> list[ArchiveFile]:
        """Delete these files and mark their records deleted; returns the records marked."""
        done = []
        for record in records:
            self.files.delete(record.uri)  # already gone counts as deleted
            done.append(record)
        if done:
            with self.store.db.write() as conn:
                conn.execute(sa.update(A).where(A.c.id.in_([r.id for r in done]))
                             .values(deleted_at=self.store.clock.now()))
        return done


def served_rows(
    archived: pd.DataFrame, target: str, timestamp: str, *, labelled: bool,
) -> pd.DataFrame:
    """Archived predictions (`Archive.read_predictions`) as data rows: the features, the time
    served as `timestamp` and, if `labelled`, only rows with a label, in column `target`."""
    import json

    import pandas as pd

    if archived.empty:
        return pd.DataFrame()
    if labelled:
        archived = archived[archived["label"].notna()]
    rows = pd.DataFrame.from_records(
        [json.loads(text) for text in archived["features"]], index=archived.index)
    rows[timestamp] = archived["at"]
    if labelled:
        rows[target] = [json.loads(text) for text in archived["label"]]
    return rows.reset_index(drop=True)


def _with_pipeline() -> sa.Select[Any]:
    return sa.select(A, tables.pipelines.c.name.label("pipeline")).join(
        tables.pipelines, tables.pipelines.c.id == A.c.pipeline_id)


def _file(row: Any) -> ArchiveFile:
    return ArchiveFile(
        id=int(row.id), pipeline=row.pipeline, kind=row.kind, day=row.day, uri=row.uri,
        sha256=row.sha256, rows=int(row.rows), bytes=int(row.bytes), batch_id=row.batch_id,
        first_at=row.first_at, last_at=row.last_at, created_at=row.created_at,
        deleted_at=row.deleted_at)
