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
new rows are not kept: `submit` counts them in `unlogged_`, and `problem` says so, which the
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
        self.queue_: list[serving.Prediction] = []
        self.submitted_ = 0
        self.written_ = 0
        self.failures_ = 0
        self.unlogged_ = 0
        self.last_error_: str | None = None  # of the newest failed write; None once one succeeds
        self.urgent_ = False
        self.stopping_ = False
        self.in_flight_ = 0  # rows the writer thread took from the queue and is writing
        self.cond_ = threading.Condition()
        self.thread_: threading.Thread | None = None

    @property
    def queued(self) -> int:
        return len(self.queue_)

    def start(self) -> None:
        if self.thread_ is None:
            self.thread_ = threading.Thread(
                target=self._run, name="driftloop-prediction-log", daemon=True)
            self.thread_.start()

    @property
    def problem(self) -> str | None:
        """Why predictions are not being logged now, or None while writes succeed (the count
        of those never logged stays in `unlogged_`)."""
        if self.last_error_ is None:
            return None
        return (f"predictions are not being logged ({self.last_error_}):"
                f" {len(self.queue_)} wait in memory, {self.unlogged_} were dropped since the "
                "server started; predict keeps answering, logging resumes when the store takes "
                "writes again")

    def submit(self, rows: Sequence[serving.Prediction]) -> int:
        """Queue rows for writing; returns how many were kept. Past `max_queued` waiting rows
        (the store has refused writes for a while) the rest are counted in `unlogged_`."""
        with self.cond_:
            room = max(0, self.max_queued - len(self.queue_) - self.in_flight_)
            if room < len(rows):
                if not self.unlogged_:
                    log.error("the prediction log is full (%d rows wait): predictions are no "
                              "longer logged until the store takes writes", len(self.queue_))
                self.unlogged_ += len(rows) - room
                rows = rows[:room]
            self.queue_.extend(rows)
            self.submitted_ += len(rows)
            if len(self.queue_) >= self.batch_rows:
                self.cond_.notify_all()
        return len(rows)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every row submitted before this call is written; False on timeout."""
        with self.cond_:
            target = self.submitted_
            self.urgent_ = True
            self.cond_.notify_all()
            return self.cond_.wait_for(lambda: self.written_ >= target, timeout=timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued and stop the thread (a clean shutdown loses nothing)."""
        with self.cond_:
            self.stopping_ = True
            self.cond_.notify_all()
        if self.thread_ is not None:
            self.thread_.join(timeout)
            self.thread_ = None
        if self.queue_:
            log.error("prediction log closed with %d rows unwritten", len(self.queue_))

    # -- the writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        backoff, failed_at_stop = 0.0, 0
        while True:
            with self.cond_:
                self.cond_.wait_for(
                    lambda: self.stopping_ or self.urgent_ or len(self.queue_) >= self.batch_rows,
                    timeout=self.flush_interval)
                taken = self.queue_[:MAX_TRANSACTION_ROWS]
                self.queue_ = self.queue_[MAX_TRANSACTION_ROWS:]
                self.urgent_ = self.urgent_ and bool(self.queue_)  # a flush waits for the rest
                self.in_flight_ = len(taken)  # still in memory: they count against max_queued
                stopping = self.stopping_
            started = time.monotonic()
            if taken and not self._write(taken):
                with self.cond_:  # put the unwritten rows back in front, in order
                    self.queue_ = taken + self.queue_
                    self.in_flight_ = 0
                failed_at_stop += stopping
                if failed_at_stop > 3:
                    return  # the store stays down at shutdown: give up (close logs the loss)
                backoff = min(5.0, max(0.1, backoff * 2))
                time.sleep(backoff)
                continue
            backoff = 0.0
            with self.cond_:
                self.in_flight_ = 0
                self.written_ += len(taken)
                self.cond_.notify_all()
                if stopping and not self.queue_:
                    return
            if taken:
                self._yield_lock(time.monotonic() - started)

    def _write(self, rows: list[serving.Prediction]) -> bool:
        """Write `rows` in one transaction; False (counted and logged) if the store refused."""
        try:
            self.store.add_predictions(rows)
        except Exception as exc:  # the store is down or refused: keep the rows, retry
            self.failures_ += 1
            self.last_error_ = faults.storage_fault(exc) or type(exc).__name__
            log.warning("writing %d predictions failed (will retry): %s", len(rows), exc)
            if self.on_error is not None:
                self.on_error(exc)
            return False
        self.last_error_ = None
        if self.on_written is not None:
            self.on_written(len(rows))
        return True

    def _yield_lock(self, held: float) -> None:
        """Leave the store's write lock to other writers for `held` seconds, as long as the
        transaction that held it took (cut short only by `close`)."""
        with self.cond_:
            self.cond_.wait_for(lambda: self.stopping_, timeout=held)
