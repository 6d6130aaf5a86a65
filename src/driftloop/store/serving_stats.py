"""Per-alias serving stats: requests, model errors and latency, per minute and server process.

A server process counts in memory (`server.tallies.Tally`, no database on the request path) and
its poller writes the current minute's totals with `ServingStats.write`: one row per minute,
process, alias and version, replaced on every write (idempotent, so a retried write is
harmless and processes never add to each other's rows). The controller's rollout evaluation
(`controller.rollout`) reads the sums with `ServingStats.read` to judge a challenger's error
rate and p99 latency against the champion's.

Latency is kept as a histogram over `BOUNDS_MS` (about 10 % wide buckets from 0.05 ms to a
minute), so the p99 of many processes and minutes is the p99 of their merged histograms.

    >>> from datetime import UTC, datetime
    >>> from driftloop.core.clock import FakeClock
    >>> from driftloop.store.metadata import MetadataStore
    >>> from driftloop.store.serving import ServingStore
    >>> meta = MetadataStore.open("sqlite://", clock=FakeClock(datetime(2024, 1, 1, tzinfo=UTC)))
    >>> _ = meta.pipelines.ensure("p", {})
    >>> stats = ServingStats(ServingStore(meta))
    >>> hist = {bucket(1.0): 99, bucket(40.0): 1}
    >>> stats.write("p", [StatRow(meta.clock.now(), "a:1", "canary", 2, 100, 1, hist)])
    >>> found = stats.read("p", alias="canary", version=2)
    >>> found.requests, found.error_rate, round(found.p99_ms, 2)
    (100, 0.01, 1.06)
    >>> meta.close()
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from driftloop.store import serving, serving_tables

BOUNDS_MS: tuple[float, ...] = tuple(0.05 * 1.1 ** k for k in range(150))
"""Upper bounds of the latency buckets in milliseconds (the last bucket is open-ended)."""


def bucket(ms: float) -> int:
    """The histogram bucket of a latency in milliseconds.

    >>> BOUNDS_MS[bucket(2.0) - 1] < 2.0 <= BOUNDS_MS[bucket(2.0)]
    True
    """
    return min(bisect.bisect_left(BOUNDS_MS, ms), len(BOUNDS_MS) - 1)


def minute_of(at: datetime) -> datetime:
    """The start of the minute `at` falls in."""
    return at.replace(second=0, microsecond=0)


@dataclass(frozen=True)
class StatRow:
    """One process's totals for one minute, alias and model version."""

    minute: datetime
    process: str
    alias: str
    version: int
    requests: int
    errors: int
    latency: Mapping[int, int]


@dataclass(frozen=True)
class AliasStats:
    """Summed stats of one alias and version over a period."""

    alias: str
    version: int
    requests: int = 0
    errors: int = 0
    latency: Mapping[int, int] = field(default_factory=dict)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def p99_ms(self) -> float | None:
        return self.quantile_ms(0.99)

    def quantile_ms(self, q: float) -> float | None:
        """The upper bound of the bucket holding quantile `q`; None without observations."""
        total = sum(self.latency.values())
        if total == 0:
            return None
        rank = math.ceil(q * total)
        seen = 0
        for index in sorted(self.latency):
            seen += self.latency[index]
            if seen >= rank:
                return BOUNDS_MS[index]
        return BOUNDS_MS[-1]

    def to_json(self) -> dict[str, Any]:
        return {"alias": self.alias, "version": self.version, "requests": self.requests,
                "errors": self.errors, "error_rate": self.error_rate, "p99_ms": self.p99_ms,
                "p50_ms": self.quantile_ms(0.5)}


class ServingStats:
    """Writes and sums `serving_stats` rows on the database of a `ServingStore`."""

    def __init__(self, store: serving.ServingStore) -> None:
        self.store = store

    def write(self, pipeline: str, rows: Sequence[StatRow]) -> None:
        """Store (or replace) these minute totals, in one transaction."""
        if not rows:
            return
        table = serving_tables.serving_stats
        with self.store._write() as conn:
            pid = self.store._pid(conn, pipeline)
            insert = self.store._insert(table)
            statement = insert.on_conflict_do_update(
                index_elements=["pipeline_id", "minute", "process", "alias", "version"],
                set_={"requests": insert.excluded.requests, "errors": insert.excluded.errors,
                      "latency": insert.excluded.latency})
            conn.execute(statement, [
                {"pipeline_id": pid, "minute": row.minute, "process": row.process,
                 "alias": row.alias, "version": int(row.version), "requests": row.requests,
                 "errors": row.errors,
                 "latency": {str(k): int(v) for k, v in row.latency.items()}}
                for row in rows])

    def read(
        self, pipeline: str, *, alias: str, version: int, since: datetime | None = None,
    ) -> AliasStats:
        """Totals of `alias` serving `version`, over the minutes from `since`'s minute on."""
        table = serving_tables.serving_stats
        with self.store._read() as conn:
            query = sa.select(table.c.requests, table.c.errors, table.c.latency).where(
                table.c.pipeline_id == self.store._pid(conn, pipeline),
                table.c.alias == alias, table.c.version == version)
            if since is not None:
                query = query.where(table.c.minute >= minute_of(since))
            rows = conn.execute(query).all()
        latency: dict[int, int] = {}
        for row in rows:
            for index, count in (row.latency or {}).items():
                latency[int(index)] = latency.get(int(index), 0) + int(count)
        return AliasStats(alias, version, sum(int(r.requests) for r in rows),
                          sum(int(r.errors) for r in rows), latency)

    def minutes(self, pipeline: str, *, since: datetime | None = None) -> list[AliasMinute]:
        """Per minute, alias and version, the sums over every process, oldest first (the
        dashboard's traffic and latency charts)."""
        table = serving_tables.serving_stats
        with self.store._read() as conn:
            query = sa.select(table.c.minute, table.c.alias, table.c.version, table.c.requests,
                              table.c.errors, table.c.latency).where(
                table.c.pipeline_id == self.store._pid(conn, pipeline))
            if since is not None:
                query = query.where(table.c.minute >= minute_of(since))
            rows = conn.execute(query.order_by(table.c.minute)).all()
        merged: dict[tuple[datetime, str, int], AliasStats] = {}
        for row in rows:
            key = (row.minute, row.alias, int(row.version))
            seen = merged.get(key, AliasStats(row.alias, int(row.version)))
            latency = dict(seen.latency)
            for index, count in (row.latency or {}).items():
                latency[int(index)] = latency.get(int(index), 0) + int(count)
            merged[key] = AliasStats(row.alias, int(row.version),
                                     seen.requests + int(row.requests),
                                     seen.errors + int(row.errors), latency)
        return [AliasMinute(minute, stats) for (minute, _, _), stats in merged.items()]


@dataclass(frozen=True)
class AliasMinute:
    """One minute of one alias and version, summed over the server processes."""

    minute: datetime
    stats: AliasStats
