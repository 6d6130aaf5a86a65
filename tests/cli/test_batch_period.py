"""`driftloop batches` shows each batch's span; a span over a new year shows the end's year."""

from __future__ import annotations

from datetime import UTC, datetime

from driftloop.cli import console
from driftloop.cli import data as batches
from driftloop.store import entities


def batch(id: int, start: datetime, end: datetime) -> entities.Batch:
    return entities.Batch(
        id=id, pipeline="p", source_uri=f"/data/part-{id}.csv", fingerprint="f", rows=10,
        start=start, end=end, status="accepted", reasons={}, data_uri=None, data_sha256=None,
        created_at=start,
    )


def test_a_batch_over_years_shows_the_end_year_and_a_short_one_does_not() -> None:
    listed = [
        batch(1, datetime(1997, 1, 1, tzinfo=UTC), datetime(2003, 4, 11, tzinfo=UTC)),
        batch(2, datetime(2003, 4, 12, tzinfo=UTC), datetime(2003, 4, 13, tzinfo=UTC)),
    ]
    with console.stdout.capture() as captured:
        batches.show_batches(listed)
    shown = captured.get()
    assert "1997-01-01 → 2003-04-11" in shown
    assert "2003-04-12 → 04-13" in shown
