"""In-memory request tallies per minute, alias and model version, written by the poller.

`POST /v1/predict` (and the shadow scorer) call `Tally.observe` once per model that answered
(a dict update under a lock, no I/O); the server's poller calls `Tally.flush`, which writes
this process's totals of every minute it holds to `serving_stats`
(`store.serving_stats.ServingStats.write`, which replaces the rows it wrote before) and then
forgets the minutes that are over. The controller reads the sums to judge a rollout.

An error is a model that raised while scoring (the request was then answered by the champion,
or failed if the champion raised); bad input (4xx) is not the model's error.

    >>> from datetime import UTC, datetime
    >>> tally = Tally("host:1")
    >>> at = datetime(2024, 1, 1, 12, 0, 30, tzinfo=UTC)
    >>> tally.observe(at, "canary", 2, 1.5, error=False)
    >>> tally.observe(at, "canary", 2, 3.0, error=True)
    >>> [(r.alias, r.version, r.requests, r.errors) for r in tally.rows()]
    [('canary', 2, 2, 1)]
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import datetime, timedelta

from driftloop.store import serving_stats

log = logging.getLogger("driftloop.server")

Key = tuple[datetime, str, int]


def process_name() -> str:
    """A name for this server process, unique across restarts: ``host:pid:random``."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Tally:
    """Requests, errors and latency histograms of one process, by minute, alias and version."""

    def __init__(self, process: str) -> None:
        self.process = process
        self._counts: dict[Key, tuple[int, int, dict[int, int]]] = {}
        self._dirty = False
        self._lock = threading.Lock()
        self._minute: tuple[datetime, datetime] | None = None  # the newest seen: start, end

    def observe(self, at: datetime, alias: str, version: int, ms: float, *, error: bool) -> None:
        """Count one request answered (or failed) by `alias` serving `version`."""
        span = self._minute
        if span is None or not span[0] <= at < span[1]:  # a tenth of `minute_of`'s cost
            start = serving_stats.minute_of(at)
            span = self._minute = (start, start + timedelta(minutes=1))
        key = (span[0], alias, version)
        index = serving_stats.bucket(ms)
        with self._lock:
            requests, errors, latency = self._counts.get(key, (0, 0, {}))
            latency[index] = latency.get(index, 0) + 1
            self._counts[key] = (requests + 1, errors + int(error), latency)
            self._dirty = True

    def rows(self) -> list[serving_stats.StatRow]:
        """A snapshot of every minute held, as rows to write."""
        with self._lock:
            return [
                serving_stats.StatRow(minute, self.process, alias, version, requests, errors,
                                      dict(latency))
                for (minute, alias, version), (requests, errors, latency) in self._counts.items()
            ]

    def flush(self, stats: serving_stats.ServingStats, pipeline: str, now: datetime) -> int:
        """Write what changed since the last flush; drop minutes before `now`'s once written.
        Returns the number of rows written."""
        with self._lock:
            if not self._dirty:
                return 0
            self._dirty = False
        rows = self.rows()
        try:
            stats.write(pipeline, rows)
        except Exception:
            with self._lock:
                self._dirty = True  # keep everything; the next poll tries again
            raise
        current = serving_stats.minute_of(now)
        with self._lock:
            for key in [k for k in self._counts if k[0] < current]:
                # A request may have landed in an old minute after the snapshot: keep it then.
                if any(r.minute == key[0] and r.alias == key[1] and r.version == key[2]
                       and r.requests == self._counts[key][0] for r in rows):
                    del self._counts[key]
        return len(rows)
