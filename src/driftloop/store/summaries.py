"""Light reads for the dashboard and `driftloop status`: the newest batches, the live metric
series (without the per-row errors an `Evaluation` carries: a year of hourly evaluations would
be millions of them), and the quarantines since some time.

Called by `ui.views` on every page view and by `controller.overview`; each is one indexed query.

    >>> from datetime import UTC, datetime
    >>> from driftloop.core.clock import FakeClock
    >>> from driftloop.store.metadata import MetadataStore
    >>> store = MetadataStore.open("sqlite://", clock=FakeClock(datetime(2024, 1, 1, tzinfo=UTC)))
    >>> _ = store.pipelines.ensure("p", {})
    >>> _ = store.evaluations.add("p", batch_id=None, version=1, metric="accuracy", value=0.75,
    ...                          rows=4, errors=[0, 0, 1, 0])
    >>> [(point.version, point.value) for point in live_metric(store, "p")]
    [(1, 0.75)]
    >>> newest_batches(store, "p", 5)
    []
    >>> store.close()
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from driftloop.store import _database, _rows, entities, metadata
from driftloop.store import tables as T


@dataclass(frozen=True)
class LivePoint:
    """One evaluation's score, at the end time of its batch (`at` when the batch has none)."""

    at: datetime
    version: int
    metric: str
    value: float | None
    rows: int
    estimated: float | None = None
    """The accuracy estimated from calibrated confidences before the labels were used."""
    batch_id: int | None = None


def newest_batches(
    store: metadata.MetadataStore, pipeline: str, limit: int,
) -> list[entities.Batch]:
    """The newest `limit` batches of `pipeline` (any status), newest first."""
    b = T.batches
    with store.db.read() as conn:
        query = _database.with_pipeline(b).where(b.c.pipeline_id == store.db.pid(conn, pipeline))
        rows = conn.execute(query.order_by(b.c.id.desc()).limit(limit)).all()
    return [_rows.batch(row) for row in rows]


def live_metric(store: metadata.MetadataStore, pipeline: str) -> list[LivePoint]:
    """Every evaluation's score of `pipeline`, oldest first."""
    e, b = T.evaluations, T.batches
    query = sa.select(
        e.c.at, e.c.version, e.c.metric, e.c.value, e.c.rows, e.c.estimated_value, e.c.batch_id,
        b.c.end,
    ).select_from(e.outerjoin(b, e.c.batch_id == b.c.id))
    with store.db.read() as conn:
        rows = conn.execute(query.where(e.c.pipeline_id == store.db.pid(conn, pipeline))
                            .order_by(e.c.id)).all()
    return [LivePoint(row.end or row.at, int(row.version), row.metric,
                      None if row.value is None else float(row.value), int(row.rows),
                      None if row.estimated_value is None else float(row.estimated_value),
                      row.batch_id)
            for row in rows]


def quarantined_since(
    store: metadata.MetadataStore, pipeline: str, since: datetime,
) -> tuple[int, entities.Batch | None]:
    """How many batches of `pipeline` were quarantined at or after `since`, and the newest."""
    b = T.batches
    with store.db.read() as conn:
        recent = (b.c.pipeline_id == store.db.pid(conn, pipeline), b.c.status == "quarantined",
                  b.c.created_at >= since)
        count = conn.scalar(sa.select(sa.func.count()).select_from(b).where(*recent))
        row = conn.execute(
            _database.with_pipeline(b).where(*recent).order_by(b.c.id.desc()).limit(1)).first()
    return int(count or 0), None if row is None else _rows.batch(row)
