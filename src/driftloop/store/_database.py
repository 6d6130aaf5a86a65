"""The database every part of the metadata store shares: engine, clock, transactions, the
pipeline id cache, the region written with new rows, and the fencing of writes by a lease.

`write()` is fenced inside `Leases.fenced(lease)` (`store._leases`): the transaction first
locks the lease row and checks that `lease` is still the current one, else `ConflictError`
and nothing of it is committed. Statement helpers shared by the parts are here too.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from driftloop.core import clock as clocks
from driftloop.core import errors
from driftloop.store import _engine, entities, tables

T = tables

FENCE: contextvars.ContextVar[tuple[Database, entities.Lease] | None] = (
    contextvars.ContextVar("driftloop_fence", default=None)
)
"""The lease the writes of this thread (or task) are fenced by, with the database it is for."""

_CHECK_FENCE = (
    sa.select(T.leases.c.token)
    .where(T.leases.c.pipeline == sa.bindparam("pipeline"),
           T.leases.c.holder == sa.bindparam("holder"))
    .with_for_update()
)


def with_pipeline(table: sa.Table) -> sa.Select[Any]:
    """`table`'s columns plus the owning pipeline's name as ``pipeline``."""
    return sa.select(table, T.pipelines.c.name.label("pipeline")).join(
        T.pipelines, T.pipelines.c.id == table.c.pipeline_id,
    )


def param(name: str) -> sa.BindParameter[Any]:
    """A bound parameter: hot-path statements are built once with these and executed with
    values (building a statement costs about as much as running it on SQLite)."""
    return sa.bindparam(name)


def newest_first(query: sa.Select[Any], id_column: Any, limit: bool) -> sa.Select[Any]:
    """`query` ordered newest first, limited to ``:limit`` rows if `limit`."""
    query = query.order_by(id_column.desc())
    return query.limit(param("limit")) if limit else query


class Database:
    """One engine on `url` with its `clock`; the parts of `MetadataStore` read and write
    through it."""

    def __init__(self, url: str, clock: clocks.Clock) -> None:
        self.url = url
        self.clock = clock
        self.engine = _engine.create_engine(url)
        self.region: str | None = None
        """The region (`regions:`) recorded with every batch, run and version written."""
        self._pipeline_ids: dict[str, int] = {}

    @property
    def dialect(self) -> str:
        return str(self.engine.dialect.name)

    def read(self) -> Any:
        """A read transaction."""
        return _engine.transaction(self.engine, write=False)

    def write(self) -> Any:
        """A write transaction, fenced if this thread is inside `Leases.fenced` for this
        database."""
        fence = FENCE.get()
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

    def insert(self, table: sa.Table) -> Any:
        """An INSERT that knows ON CONFLICT on this backend."""
        return _engine.insert(self.dialect, table)

    def pid(self, conn: sa.Connection, pipeline: str) -> int:
        """The id of `pipeline` (cached: pipelines are never deleted); NotFoundError if absent."""
        pid = self._pipeline_ids.get(pipeline)
        if pid is None:
            pid = conn.scalar(sa.select(T.pipelines.c.id).where(T.pipelines.c.name == pipeline))
            if pid is None:
                raise errors.NotFoundError(
                    f"pipeline {pipeline!r} does not exist; create it first "
                    "(driftloop run does, from driftloop.yaml)",
                    pipeline=pipeline,
                )
            self._pipeline_ids[pipeline] = pid
        return pid
