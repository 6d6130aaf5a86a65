"""Decisions: what the policy decided at each tick (fired or not), with the evidence it went
on and what caused it."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from driftloop.core import clock as clocks
from driftloop.core import errors, types
from driftloop.store import _database, _rows, entities, tables

T = tables
_param = _database.param
_INSERT = sa.insert(T.decisions).returning(T.decisions.c.id)


@functools.cache
def _list_query(kind: bool, fired: bool, limit: bool) -> sa.Select[Any]:
    d = T.decisions
    query = _database.with_pipeline(d).where(d.c.pipeline_id == _param("pid"))
    if kind:
        query = query.where(d.c.kind == _param("kind"))
    if fired:
        query = query.where(d.c.fired == _param("fired"))
    return _database.newest_first(query, d.c.id, limit)


@functools.cache
def _latest_query(filtered: tuple[bool, ...]) -> sa.Select[Any]:
    """The newest decision of each slot: slot i matches ``:kind<i>`` (and ``:fired<i>`` if
    `filtered[i]`) and ``id > :after<i>``; one `id IN (...)` of per-slot index lookups."""
    d = T.decisions
    newest = []
    for i, fired in enumerate(filtered):
        one = sa.select(d.c.id).where(
            d.c.pipeline_id == _param("pid"), d.c.kind == _param(f"kind{i}"),
            d.c.id > _param(f"after{i}"))
        if fired:
            one = one.where(d.c.fired == _param(f"fired{i}"))
        newest.append(one.order_by(d.c.id.desc()).limit(1).scalar_subquery())
    return _database.with_pipeline(d).where(d.c.id.in_(newest))


class Decisions:
    """The decisions of each pipeline, newest last."""

    def __init__(self, db: _database.Database) -> None:
        self._db = db

    def add(
        self, pipeline: str, *, kind: str, fired: bool, evidence: types.JSON,
        caused_by: types.JSON | None = None,
    ) -> entities.Decision:
        """Record what the policy decided (fired or not) and the evidence it went on."""
        evidence = _rows.plain(evidence)
        caused = _rows.plain(caused_by) if caused_by is not None else None
        with self._db.write() as conn:
            at = self._db.clock.now()
            new_id = conn.scalar(_INSERT, {
                "pipeline_id": self._db.pid(conn, pipeline), "kind": kind, "fired": bool(fired),
                "evidence": evidence, "caused_by": caused, "at": at,
            })
        return entities.Decision(
            id=int(new_id), pipeline=pipeline, kind=kind, fired=bool(fired), evidence=evidence,
            caused_by=caused or {}, at=clocks.as_utc(at),
        )

    def get(self, decision_id: int) -> entities.Decision:
        with self._db.read() as conn:
            query = _database.with_pipeline(T.decisions).where(T.decisions.c.id == decision_id)
            row = conn.execute(query).first()
        if row is None:
            raise errors.NotFoundError(f"decision {decision_id} does not exist",
                                       decision=decision_id)
        return _rows.decision(row)

    def latest(
        self, pipeline: str, slots: Sequence[tuple[str, bool | None]],
        after: Sequence[int] | None = None,
    ) -> list[entities.Decision | None]:
        """The newest decision of each `(kind, fired)` slot (fired None: fired or not), read
        in one query; None for a slot nothing matches. With `after`, slot i only considers
        ids > `after[i]` (a caller that knows the newest one so far reads only what is new).

        >>> from datetime import UTC, datetime
        >>> from driftloop.core.clock import FakeClock
        >>> from driftloop.store.metadata import MetadataStore
        >>> clock = FakeClock(datetime(2024, 1, 1, tzinfo=UTC))
        >>> store = MetadataStore.open("sqlite://", clock=clock)
        >>> _ = store.pipelines.ensure("p", {})
        >>> first = store.decisions.add("p", kind="retrain", fired=True, evidence={})
        >>> second = store.decisions.add("p", kind="retrain", fired=False, evidence={})
        >>> slots = [("retrain", None), ("retrain", True), ("request", None)]
        >>> [d and d.id for d in store.decisions.latest("p", slots)]
        [2, 1, None]
        >>> [d and d.id for d in store.decisions.latest("p", slots, after=[1, 1, 0])]
        [2, None, None]
        >>> store.close()
        """
        bounds = list(after) if after is not None else [0] * len(slots)
        query = _latest_query(tuple(fired is not None for _, fired in slots))
        with self._db.read() as conn:
            params: dict[str, Any] = {"pid": self._db.pid(conn, pipeline)}
            for i, ((kind, fired), bound) in enumerate(zip(slots, bounds, strict=True)):
                params[f"kind{i}"], params[f"after{i}"] = kind, bound
                if fired is not None:
                    params[f"fired{i}"] = bool(fired)
            found = [_rows.decision(row) for row in conn.execute(query, params)]
        return [
            max((d for d in found if d.kind == kind and fired in (None, d.fired) and d.id > bound),
                key=lambda d: d.id, default=None)
            for (kind, fired), bound in zip(slots, bounds, strict=True)
        ]

    def list(
        self, pipeline: str, kind: str | None = None, fired: bool | None = None,
        limit: int | None = None,
    ) -> list[entities.Decision]:
        """Decisions of `pipeline`, oldest first; with `limit`, only the newest `limit`."""
        query = _list_query(kind is not None, fired is not None, limit is not None)
        with self._db.read() as conn:
            params = {"pid": self._db.pid(conn, pipeline), "kind": kind, "limit": limit,
                      "fired": None if fired is None else bool(fired)}
            rows = conn.execute(query, params).all()
        return [_rows.decision(row) for row in reversed(rows)]
