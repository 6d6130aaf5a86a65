"""The prediction log writer: predictions go to the store in batches, off the request path.

`POST /v1/predict` calls `PredictionLog.submit` (appends to an in-memory queue under a lock
held for microseconds; never touches the database); one background thread writes what is
queued every `flush_interval` seconds, or as soon as `batch_rows` rows wait, each batch in one
transaction (`ServingStore.add_predictions`, which skips ids already stored, so a retried
batch is harmless). `flush` waits until everything submitted so far is written (feedback calls
it first, so a label can follow its prediction at once); `close` writes what is left, which
makes the log durable across a clean shutdown.

The writer never holds the store's write lock more than half the time: after a transaction it
waits at least as long as that transaction took before the next. SQLite's lock has no queue: a
writer of another process (a promotion moving an alias, a controller) retries every 100 ms or
so and gets in only when it finds the lock free. Under load each transaction is slower (the
request threads keep the interpreter busy), so more rows wait and the next one is longer; a
writer that went again at once then held the lock nearly all the time, and the other
processes' writes waited for seconds, up to the busy timeout.

When the store refuses writes (its disk is full, the database is down), rows wait in memory
and writes are retried with backoff; predict keeps answering. Past `max_queued` waiting rows,
new rows are not kept: `submit` counts them in `unlogged`, and `problem` says so, which the
server reports on /readyz and in its metrics (never silently). Writing resumes by itself once
the store takes writes again. What a crash can lose: predictions answered in the last
`flush_interval` (50 ms by default) before a kill -9 or a power cut, plus whatever waits in
memory while the store refuses writes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from driftloop.store import faults, serving

log = logging.getLogger("driftloop.server")

MAX_TRANSACTION_ROWS = 1000
"""Rows per transaction, so that one transaction holds the store's write lock a bounded time."""


class PredictionLog:
    """A queue of predictions and the thread that writes them in batches."""

    def __init__(
        self,
        store: serving.ServingStore,
        *,
        flush_interval: float = 0.05,
        batch_rows: int = 500,
        max_queued: int = 200_000,
        on_written: Callable[[int], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.store = store
        self.flush_interval = flush_interval
        self.batch_rows = batch_rows
        self.max_queued = max_queued
        self.on_written = on_written
        self.on_error = on_error
        self._queue: list[serving.Prediction] = []
        self._submitted = 0
        self._written = 0
        self.failures = 0
        self.unlogged = 0
        self.last_error: str | None = None  # of the newest failed write; None once one succeeds
        self._urgent = False
        self._stopping = False
        self._in_flight = 0  # rows the writer thread took from the queue and is writing
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    @property
    def queued(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="driftloop-prediction-log", daemon=True)
            self._thread.start()

    @property
    def problem(self) -> str | None:
        """Why predictions are not being logged now, or None while writes succeed (the count
        of those never logged stays in `unlogged`)."""
        if self.last_error is None:
            return None
        return (f"predictions are not being logged ({self.last_error}):"
                f" {len(self._queue)} wait in memory, {self.unlogged} were dropped since the "
                "server started; predict keeps answering, logging resumes when the store takes "
                "writes again")

    def submit(self, rows: Sequence[serving.Prediction]) -> int:
        """Queue rows for writing; returns how many were kept. Past `max_queued` waiting rows
        (the store has refused writes for a while) the rest are counted in `unlogged`."""
        with self._cond:
            room = max(0, self.max_queued - len(self._queue) - self._in_flight)
            if room < len(rows):
                if not self.unlogged:
                    log.error("the prediction log is full (%d rows wait): predictions are no "
                              "longer logged until the store takes writes", len(self._queue))
                self.unlogged += len(rows) - room
                rows = rows[:room]
            self._queue.extend(rows)
            self._submitted += len(rows)
            if len(self._queue) >= self.batch_rows:
                self._cond.notify_all()
        return len(rows)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every row submitted before this call is written; False on timeout."""
        with self._cond:
            target = self._submitted
            self._urgent = True
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._written >= target, timeout=timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued and stop the thread (a clean shutdown loses nothing)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._queue:
            log.error("prediction log closed with %d rows unwritten", len(self._queue))

    # -- the writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        backoff, failed_at_stop = 0.0, 0
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: self._stopping or self._urgent or len(self._queue) >= self.batch_rows,
                    timeout=self.flush_interval)
                taken = self._queue[:MAX_TRANSACTION_ROWS]
                self._queue = self._queue[MAX_TRANSACTION_ROWS:]
                self._urgent = self._urgent and bool(self._queue)  # a flush waits for the rest
                self._in_flight = len(taken)  # still in memory: they count against max_queued
                stopping = self._stopping
            started = time.monotonic()
            if taken and not self._write(taken):
                with self._cond:  # put the unwritten rows back in front, in order
                    self._queue = taken + self._queue
                    self._in_flight = 0
                failed_at_stop += stopping
                if failed_at_stop > 3:
                    return  # the store stays down at shutdown: give up (close logs the loss)
                backoff = min(5.0, max(0.1, backoff * 2))
                time.sleep(backoff)
                continue
            backoff = 0.0
            with self._cond:
                self._in_flight = 0
                self._written += len(taken)
                self._cond.notify_all()
                if stopping and not self._queue:
                    return
            if taken:
                self._yield_lock(time.monotonic() - started)

    def _write(self, rows: list[serving.Prediction]) -> bool:
        """Write `rows` in one transaction; False (counted and logged) if the store refused."""
        try:
            self.store.add_predictions(rows)
        except Exception as exc:  # the store is down or refused: keep the rows, retry
            self.failures += 1
            self.last_error = faults.storage_fault(exc) or type(exc).__name__
            log.warning("writing %d predictions failed (will retry): %s", len(rows), exc)
            if self.on_error is not None:
                self.on_error(exc)
            return False
        self.last_error = None
        if self.on_written is not None:
            self.on_written(len(rows))
        return True

    def _yield_lock(self, held: float) -> None:
        """Leave the store's write lock to other writers for `held` seconds, as long as the
        transaction that held it took (cut short only by `close`)."""
        with self._cond:
            self._cond.wait_for(lambda: self._stopping, timeout=held)
