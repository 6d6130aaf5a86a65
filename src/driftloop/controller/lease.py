"""Holding a pipeline's lease while acting on it: take it, keep it alive, fence every write.

Called by the tick and by `driftloop ingest`. `hold(store, pipeline, holder, ttl)` takes the
lease (or yields None while another controller's is live), renews it from a background thread
every third of `ttl` for as long as the block runs — so the lease can be short and still
outlive a long training — and fences the store's writes with it (`MetadataStore.leases.fenced`): if
this process stalls past its lease and another controller takes over, its writes are refused
rather than repeated. A process killed mid-block stops renewing; its lease lapses after `ttl`
and another controller takes over, repairing what the dead one left (see `tick.repair`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

from driftloop.store import entities, metadata

log = logging.getLogger(__name__)


def holder_name(role: str) -> str:
    """A lease holder name unique to this process, for the audit log: role@host:pid:random."""
    return f"{role}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Heartbeat:
    """Renews `holder`'s lease every `ttl / 3` on a daemon thread until `stop()`.

    A lost lease (another controller holds it) is logged and ends the beats, not raised: the
    fence refuses the holder's next write, which is where it matters. An error while renewing (the
    database locked or unreachable for a moment) is retried at the next beat.
    """

    def __init__(
        self, store: metadata.MetadataStore, pipeline: str, holder: str, ttl: timedelta
    ) -> None:
        self.store = store
        self.pipeline = pipeline
        self.holder = holder
        self.ttl = ttl
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"driftloop-lease-{pipeline}", daemon=True
        )

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        interval = self.ttl.total_seconds() / 3
        while not self._stop.wait(interval):
            try:
                renewed = self.store.leases.acquire(self.pipeline, self.holder, self.ttl)
            except Exception:  # "database is locked", a dropped connection: try again next
                log.debug("renewing the lease on %s failed; trying again", self.pipeline,
                          exc_info=True)  # if it lapses meanwhile, the fence refuses the next write
                continue
            if renewed is None:  # another controller holds it now
                log.warning("%s lost the lease on %s to another holder", self.holder,
                            self.pipeline)
                return


@contextlib.contextmanager
def hold(
    store: metadata.MetadataStore, pipeline: str, holder: str, ttl: timedelta
) -> Iterator[entities.Lease | None]:
    """The lease on `pipeline` for the duration of the block (None if another holds it), kept
    alive and fencing the store's writes; it is not released at the end (the caller decides)."""
    lease = store.leases.acquire(pipeline, holder, ttl)
    if lease is None:
        yield None
        return
    # In-memory SQLite has no second process to fence against, and no thread may share its
    # single connection: the heartbeat is left out there.
    heartbeat = Heartbeat(store, pipeline, holder, ttl).start() if store.shared else None
    try:
        with store.leases.fenced(lease):
            yield lease
    finally:
        if heartbeat is not None:
            heartbeat.stop()
