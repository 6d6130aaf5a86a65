"""The controller lease and its fencing, part of the metadata store (`MetadataStore` inherits
`LeaseStore` through `_history.HistoryStore`).

One controller at a time may act on a pipeline: `acquire_lease` takes or renews the lease for a
time-to-live, and the lease's `token` grows by one whenever its holder changes. A lease alone
cannot make an action happen once: a controller can stall (a long garbage collection, a
suspended VM) past its lease, another takes over, and the first wakes up and writes. So inside
`fenced(lease)` every write transaction of the store first locks the lease row and checks that
`lease` is still the current one (same holder, same token); if another controller has taken
over, the write is refused with `ConflictError` and nothing of it is committed. A takeover
(an UPDATE of the same row) waits for a fenced write in flight to commit, so the two never
interleave: each write is either made under a live lease or not made at all.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from driftloop.core import clock as clocks
from driftloop.core import errors
from driftloop.store import _engine, _rows, entities, tables

T = tables

_FENCE: contextvars.ContextVar[tuple[LeaseStore, entities.Lease] | None] = (
    contextvars.ContextVar("driftloop_fence", default=None)
)
"""The lease the writes of this thread (or task) are fenced by, with the store it is for."""

_CHECK_FENCE = (
    sa.select(T.leases.c.token)
    .where(T.leases.c.pipeline == sa.bindparam("pipeline"),
           T.leases.c.holder == sa.bindparam("holder"))
    .with_for_update()
)
_GET_LEASE = sa.select(T.leases).where(T.leases.c.pipeline == sa.bindparam("pipeline"))
_RENEW_LEASE = sa.update(T.leases).where(
    T.leases.c.pipeline == sa.bindparam("b_pipeline"),
    sa.or_(T.leases.c.holder == sa.bindparam("b_holder"),
           T.leases.c.expires_at <= sa.bindparam("now")),
).values(
    token=sa.case((T.leases.c.holder == sa.bindparam("b_holder"), T.leases.c.token),
                  else_=T.leases.c.token + 1),
    holder=sa.bindparam("b_holder"), expires_at=sa.bindparam("expires"),
).returning(T.leases.c.token)


@functools.cache
def _take_lease(dialect: str) -> Any:
    return _engine.insert(dialect, T.leases).on_conflict_do_nothing(
        index_elements=["pipeline"]).returning(T.leases.c.token)


class LeaseStore:
    """Leases and fenced writes; the rest of the store writes through `_write`."""

    engine: sa.Engine
    clock: clocks.Clock

    def _write(self) -> Any:
        """A write transaction, fenced if this thread is inside `fenced(...)` for this store."""
        fence = _FENCE.get()
        if fence is None or fence[0] is not self:
            return _engine.transaction(self.engine, write=True)
        return self._fenced_write(fence[1])

    @contextlib.contextmanager
    def _fenced_write(self, lease: entities.Lease) -> Iterator[sa.Connection]:
        with _engine.transaction(self.engine, write=True) as conn:
            token = conn.scalar(_CHECK_FENCE, {"pipeline": lease.pipeline, "holder": lease.holder})
            if token != lease.token:
                raise errors.ConflictError(
                    f"{lease.holder} no longer holds the lease on pipeline {lease.pipeline!r} "
                    "(it expired and another controller took it over); this write was refused "
                    "and the other controller carries on",
                    pipeline=lease.pipeline, holder=lease.holder, token=lease.token)
            yield conn

    @contextlib.contextmanager
    def fenced(self, lease: entities.Lease) -> Iterator[None]:
        """Within this block, every write of this store by this thread is made only while
        `lease` is still current; `ConflictError` otherwise (see the module docstring)."""
        reset = _FENCE.set((self, lease))
        try:
            yield
        finally:
            _FENCE.reset(reset)

    @property
    def shared(self) -> bool:
        """Whether other processes can open this store (False for in-memory SQLite, where no
        second controller can exist and the lease is a formality)."""
        url = self.engine.url
        return not (url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"))

    def acquire_lease(self, pipeline: str, holder: str, ttl: timedelta) -> entities.Lease | None:
        """Take or renew the lease on `pipeline` for `ttl`; None while another holder's is live.

        One atomic statement per step: insert if there is no lease row, else update it if it is
        ours or expired. The fencing `token` grows by one whenever the holder changes. Never
        fenced itself (renewing is how a holder keeps its fence valid).
        """
        if not holder:
            raise errors.ConfigError("a lease holder needs a non-empty name", pipeline=pipeline)
        if ttl <= timedelta(0):
            raise errors.ConfigError(f"lease ttl must be positive; got {ttl}", pipeline=pipeline)
        now = self.clock.now()
        expires = now + ttl
        with _engine.transaction(self.engine, write=True) as conn:
            taken = conn.execute(_take_lease(self.engine.dialect.name), {
                "pipeline": pipeline, "holder": holder, "token": 1, "expires_at": expires,
            }).first()
            if taken is None:
                taken = conn.execute(_RENEW_LEASE, {
                    "b_pipeline": pipeline, "b_holder": holder, "now": now, "expires": expires,
                }).first()
        if taken is None:
            return None
        return entities.Lease(pipeline, holder, int(taken.token), clocks.as_utc(expires))

    def release_lease(self, pipeline: str, holder: str) -> bool:
        """Give the lease up if `holder` has it; the next taker gets a new token."""
        lease = T.leases
        with _engine.transaction(self.engine, write=True) as conn:
            done = conn.execute(sa.update(lease).where(
                lease.c.pipeline == pipeline, lease.c.holder == holder,
            ).values(holder="", expires_at=self.clock.now()))
        return bool(done.rowcount)

    def get_lease(self, pipeline: str) -> entities.Lease | None:
        """The lease row of `pipeline` as stored (perhaps expired or released), or None."""
        with _engine.transaction(self.engine, write=False) as conn:
            row = conn.execute(_GET_LEASE, {"pipeline": pipeline}).first()
        return None if row is None else _rows.lease(row)
