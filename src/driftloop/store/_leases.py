"""The controller lease and its fencing.

One controller at a time may act on a pipeline: `acquire` takes or renews the lease for a
time-to-live, and the lease's `token` grows by one whenever its holder changes. A lease alone
cannot make an action happen once: a controller can stall (a long garbage collection, a
suspended VM) past its lease, another takes over, and the first wakes up and writes. So inside
`fenced(lease)` every write transaction of the store first locks the lease row and checks that
`lease` is still the current one (same holder, same token; `_database.Database.write`); if
another controller has taken over, the write is refused with `ConflictError` and nothing of it
is committed. A takeover (an UPDATE of the same row) waits for a fenced write in flight to
commit, so the two never interleave: each write is either made under a live lease or not made
at all.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from driftloop.core import clock as clocks
from driftloop.core import errors
from driftloop.store import _database, _engine, _rows, entities, tables

T = tables

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


class Leases:
    """Leases on pipelines, and the writes fenced by one."""

    def __init__(self, db: _database.Database) -> None:
        self._db = db

    @contextlib.contextmanager
    def fenced(self, lease: entities.Lease) -> Iterator[None]:
        """Within this block, every write of this store by this thread is made only while
        `lease` is still current; `ConflictError` otherwise (see the module docstring)."""
        reset = _database.FENCE.set((self._db, lease))
        try:
            yield
        finally:
            _database.FENCE.reset(reset)

    def acquire(self, pipeline: str, holder: str, ttl: timedelta) -> entities.Lease | None:
        """Take or renew the lease on `pipeline` for `ttl`; None while another holder's is live.

        One atomic statement per step: insert if there is no lease row, else update it if it is
        ours or expired. The fencing `token` grows by one whenever the holder changes. Never
        fenced itself (renewing is how a holder keeps its fence valid).
        """
        if not holder:
            raise errors.ConfigError("a lease holder needs a non-empty name", pipeline=pipeline)
        if ttl <= timedelta(0):
            raise errors.ConfigError(f"lease ttl must be positive; got {ttl}", pipeline=pipeline)
        now = self._db.clock.now()
        expires = now + ttl
        with _engine.transaction(self._db.engine, write=True) as conn:
            taken = conn.execute(_take_lease(self._db.dialect), {
                "pipeline": pipeline, "holder": holder, "token": 1, "expires_at": expires,
            }).first()
            if taken is None:
                taken = conn.execute(_RENEW_LEASE, {
                    "b_pipeline": pipeline, "b_holder": holder, "now": now, "expires": expires,
                }).first()
        if taken is None:
            return None
        return entities.Lease(pipeline, holder, int(taken.token), clocks.as_utc(expires))

    def release(self, pipeline: str, holder: str) -> bool:
        """Give the lease up if `holder` has it; the next taker gets a new token."""
        lease = T.leases
        with _engine.transaction(self._db.engine, write=True) as conn:
            done = conn.execute(sa.update(lease).where(
                lease.c.pipeline == pipeline, lease.c.holder == holder,
            ).values(holder="", expires_at=self._db.clock.now()))
        return bool(done.rowcount)

    def get(self, pipeline: str) -> entities.Lease | None:
        """The lease row of `pipeline` as stored (perhaps expired or released), or None."""
        with self._db.read() as conn:
            row = conn.execute(_GET_LEASE, {"pipeline": pipeline}).first()
        return None if row is None else _rows.lease(row)
