"""First half of the metadata store: connection plumbing and the append-only records —
alias moves, decisions, evaluations, the audit log. The controller lease and the fencing of
writes are `_leases.LeaseStore`, which this class inherits.

`store.metadata.MetadataStore` inherits from `HistoryStore` and adds pipelines, batches,
profiles, runs, metrics and model versions; callers only ever use `MetadataStore`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Self

import sqlalchemy as sa

from driftloop.core import clock as clocks
from driftloop.core import errors, types
from driftloop.store import _alias_stack, _engine, _leases, _rows, entities, migrations, tables

T = tables


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


@functools.cache
def _decisions_query(kind: bool, fired: bool, limit: bool) -> sa.Select[Any]:
    d = T.decisions
    query = with_pipeline(d).where(d.c.pipeline_id == param("pid"))
    if kind:
        query = query.where(d.c.kind == param("kind"))
    if fired:
        query = query.where(d.c.fired == param("fired"))
    return newest_first(query, d.c.id, limit)


@functools.cache
def _latest_decisions_query(filtered: tuple[bool, ...]) -> sa.Select[Any]:
    """The newest decision of each slot: slot i matches ``:kind<i>`` (and ``:fired<i>`` if
    `filtered[i]`) and ``id > :after<i>``; one `id IN (...)` of per-slot index lookups."""
    d = T.decisions
    newest = []
    for i, fired in enumerate(filtered):
        one = sa.select(d.c.id).where(
            d.c.pipeline_id == param("pid"), d.c.kind == param(f"kind{i}"),
            d.c.id > param(f"after{i}"))
        if fired:
            one = one.where(d.c.fired == param(f"fired{i}"))
        newest.append(one.order_by(d.c.id.desc()).limit(1).scalar_subquery())
    return with_pipeline(d).where(d.c.id.in_(newest))


@functools.cache
def _evaluations_query(version: bool, after: bool, limit: bool) -> sa.Select[Any]:
    e = T.evaluations
    query = with_pipeline(e).where(e.c.pipeline_id == param("pid"))
    if version:
        query = query.where(e.c.version == param("version"))
    if after:
        query = query.where(e.c.id > param("after"))
    return newest_first(query, e.c.id, limit)


_GET_ALIAS = sa.select(T.aliases.c.version).where(
    T.aliases.c.pipeline_id == param("pid"), T.aliases.c.alias == param("alias"))
_INSERT_DECISION = sa.insert(T.decisions).returning(T.decisions.c.id)
_INSERT_AUDIT = sa.insert(T.audit_log).returning(T.audit_log.c.id)
_INSERT_MOVE = sa.insert(T.alias_moves).returning(T.alias_moves.c.id)
_ALIAS_MOVES = sa.select(T.alias_moves.c.action, T.alias_moves.c.version).where(
    T.alias_moves.c.pipeline_id == param("pid"), T.alias_moves.c.alias == param("alias"),
).order_by(T.alias_moves.c.id)
_LOCK_PIPELINE = (
    sa.select(T.pipelines.c.id).where(T.pipelines.c.id == param("pid")).with_for_update())
_VERSION_ID = sa.select(T.model_versions.c.id).where(
    T.model_versions.c.pipeline_id == param("pid"), T.model_versions.c.version == param("version"))
_INSERT_EVALUATION = sa.insert(T.evaluations).returning(T.evaluations.c.id)


@functools.cache
def _set_alias(dialect: str) -> Any:
    insert = _engine.insert(dialect, T.aliases)
    return insert.on_conflict_do_update(
        index_elements=["pipeline_id", "alias"],
        set_={"version": insert.excluded.version, "updated_at": insert.excluded.updated_at})


class HistoryStore(_leases.LeaseStore):
    """Engine, transactions, and the alias / decision / evaluation / audit records."""

    def __init__(self, url: str, clock: clocks.Clock | None = None) -> None:
        self.url = url
        self.clock = clock if clock is not None else clocks.SystemClock()
        self.engine_ = _engine.create_engine(url)
        self.pipeline_ids_: dict[str, int] = {}
        self.region: str | None = None
        """The region (`regions:`) recorded with every batch, run and version written."""

    @classmethod
    def open(cls, url: str, clock: clocks.Clock | None = None) -> Self:
        """A store on `url` with its schema migrated to the newest revision (Alembic)."""
        store = cls(url, clock)
        migrations.upgrade(store.engine_)
        return store

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine_.dispose()

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at."""
        return migrations.current_revision(self.engine_)

    def __repr__(self) -> str:
        shown = sa.engine.make_url(self.url).render_as_string(hide_password=True)
        return f"{type(self).__name__}({shown!r})"

    # -- plumbing ------------------------------------------------------------------------------

    def _read(self) -> Any:
        return _engine.transaction(self.engine_, write=False)

    def _insert(self, table: sa.Table) -> Any:
        """An INSERT that knows ON CONFLICT on this backend."""
        return _engine.insert(self.engine_.dialect.name, table)

    @property
    def _dialect(self) -> str:
        return str(self.engine_.dialect.name)

    def _pid(self, conn: sa.Connection, pipeline: str) -> int:
        """The id of `pipeline` (cached: pipelines are never deleted); NotFoundError if absent."""
        pid = self.pipeline_ids_.get(pipeline)
        if pid is None:
            pid = conn.scalar(sa.select(T.pipelines.c.id).where(T.pipelines.c.name == pipeline))
            if pid is None:
                raise errors.NotFoundError(
                    f"pipeline {pipeline!r} does not exist; create it first "
                    "(driftloop run does, from driftloop.yaml)",
                    pipeline=pipeline,
                )
            self.pipeline_ids_[pipeline] = pid
        return pid

    def _audit(
        self, conn: sa.Connection, actor: str, action: str, target: str,
        details: types.JSON | None,
    ) -> entities.AuditEntry:
        at = self.clock.now()
        details = _rows.plain(details) if details is not None else None
        values = {"actor": actor, "action": action, "target": target, "details": details, "at": at}
        new_id = conn.scalar(_INSERT_AUDIT, values)
        return entities.AuditEntry(
            id=int(new_id), actor=actor, action=action, target=target, details=details or {},
            at=clocks.as_utc(at),
        )

    # -- aliases --------------------------------------------------------------------------------

    def set_alias(
        self, pipeline: str, alias: str, version: int | None, *, actor: str, reason: str,
        action: str = "promote",
    ) -> entities.AliasMove:
        """Point `alias` at `version` (None clears it); the move and its audit row are written
        in the same transaction."""
        with self._write() as conn:
            return self._move(conn, pipeline, alias, version, actor, reason, action)

    def rollback(self, pipeline: str, alias: str, *, actor: str, reason: str) -> entities.AliasMove:
        """Move `alias` back to the version it held before its current one. Rollbacks stack:
        each goes one promotion further back (v1 → v2 → v3, rollback → v2, rollback → v1),
        skipping cleared entries (`_alias_stack`) and versions retention retired (an online
        pipeline's old snapshots: `store.snapshots`)."""
        with self._write() as conn:
            pid = self._lock_pipeline(conn, pipeline)
            rows = conn.execute(_ALIAS_MOVES, {"pid": pid, "alias": alias})
            stack = _alias_stack.replay((row.action or "promote", row.version) for row in rows)
            target = next((version for version in reversed(stack[:-1]) if version is not None
                           and conn.scalar(_VERSION_ID, {"pid": pid, "version": version})
                           is not None), None)
            if target is None:
                raise errors.ConflictError(
                    f"alias {alias!r} of pipeline {pipeline!r} has no earlier version to roll "
                    "back to; set it explicitly instead",
                    pipeline=pipeline, alias=alias)
            return self._move(conn, pipeline, alias, target, actor, reason, "rollback")

    def _lock_pipeline(self, conn: sa.Connection, pipeline: str) -> int:
        """The pipeline's id, with its row locked until commit (PostgreSQL; SQLite's write
        transactions are exclusive already)."""
        pid = self._pid(conn, pipeline)
        conn.execute(_LOCK_PIPELINE, {"pid": pid})
        return pid

    def _move(
        self, conn: sa.Connection, pipeline: str, alias: str, version: int | None, actor: str,
        reason: str, action: str,
    ) -> entities.AliasMove:
        pid = self._lock_pipeline(conn, pipeline)
        if version is not None and conn.scalar(
                _VERSION_ID, {"pid": pid, "version": version}) is None:
            raise errors.NotFoundError(
                f"cannot point alias {alias!r} at model version {version} of pipeline "
                f"{pipeline!r}: no such version",
                pipeline=pipeline, alias=alias, version=version)
        previous = conn.scalar(_GET_ALIAS, {"pid": pid, "alias": alias})
        at = self.clock.now()
        conn.execute(_set_alias(self._dialect), {
            "pipeline_id": pid, "alias": alias, "version": version, "updated_at": at})
        new_id = conn.scalar(_INSERT_MOVE, {
            "pipeline_id": pid, "alias": alias, "version": version, "previous": previous,
            "actor": actor, "reason": reason, "at": at, "action": action,
        })
        self._audit(conn, actor, action, f"{pipeline}/{alias}",
                    {"from": previous, "to": version, "reason": reason})
        return entities.AliasMove(
            id=int(new_id), pipeline=pipeline, alias=alias, version=version, previous=previous,
            actor=actor, reason=reason, at=clocks.as_utc(at), action=action,
        )

    def get_alias(self, pipeline: str, alias: str) -> int | None:
        """The version `alias` points at, or None if it was never set or is cleared."""
        with self._read() as conn:
            pid = self._pid(conn, pipeline)
            version: int | None = conn.scalar(_GET_ALIAS, {"pid": pid, "alias": alias})
        return version

    def aliases(self, pipeline: str) -> dict[str, int]:
        """Every alias of `pipeline` that points at a version."""
        with self._read() as conn:
            pid = self._pid(conn, pipeline)
            a = T.aliases
            rows = conn.execute(sa.select(a.c.alias, a.c.version).where(
                a.c.pipeline_id == pid, a.c.version.is_not(None)).order_by(a.c.alias))
            return {row.alias: row.version for row in rows}

    def alias_history(
        self, pipeline: str, alias: str | None = None, last: int | None = None,
        after_id: int = 0,
    ) -> list[entities.AliasMove]:
        """Every move of `alias` (or of all aliases), oldest first; the newest `last` if given;
        only those after move `after_id`."""
        m = T.alias_moves
        with self._read() as conn:
            query = with_pipeline(m).where(m.c.pipeline_id == self._pid(conn, pipeline))
            if alias is not None:
                query = query.where(m.c.alias == alias)
            if after_id:
                query = query.where(m.c.id > after_id)
            if last is None:
                rows = conn.execute(query.order_by(m.c.id)).all()
            else:
                rows = conn.execute(query.order_by(m.c.id.desc()).limit(last)).all()[::-1]
        return [_rows.alias_move(row) for row in rows]

    # -- decisions ------------------------------------------------------------------------------

    def add_decision(
        self, pipeline: str, *, kind: str, fired: bool, evidence: types.JSON,
        caused_by: types.JSON | None = None,
    ) -> entities.Decision:
        """Record what the policy decided (fired or not) and the evidence it went on."""
        evidence = _rows.plain(evidence)
        caused = _rows.plain(caused_by) if caused_by is not None else None
        with self._write() as conn:
            at = self.clock.now()
            new_id = conn.scalar(_INSERT_DECISION, {
                "pipeline_id": self._pid(conn, pipeline), "kind": kind, "fired": bool(fired),
                "evidence": evidence, "caused_by": caused, "at": at,
            })
        return entities.Decision(
            id=int(new_id), pipeline=pipeline, kind=kind, fired=bool(fired), evidence=evidence,
            caused_by=caused or {}, at=clocks.as_utc(at),
        )

    def get_decision(self, decision_id: int) -> entities.Decision:
        with self._read() as conn:
            query = with_pipeline(T.decisions).where(T.decisions.c.id == decision_id)
            row = conn.execute(query).first()
        if row is None:
            raise errors.NotFoundError(f"decision {decision_id} does not exist",
                                       decision=decision_id)
        return _rows.decision(row)

    def list_decisions(
        self, pipeline: str, kind: str | None = None, fired: bool | None = None,
        limit: int | None = None,
    ) -> list[entities.Decision]:
        """Decisions of `pipeline`, oldest first; with `limit`, only the newest `limit`."""
        query = _decisions_query(kind is not None, fired is not None, limit is not None)
        with self._read() as conn:
            params = {"pid": self._pid(conn, pipeline), "kind": kind, "limit": limit,
                      "fired": None if fired is None else bool(fired)}
            rows = conn.execute(query, params).all()
        return [_rows.decision(row) for row in reversed(rows)]

    def latest_decisions(
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
        >>> _ = store.ensure_pipeline("p", {})
        >>> first = store.add_decision("p", kind="retrain", fired=True, evidence={})
        >>> second = store.add_decision("p", kind="retrain", fired=False, evidence={})
        >>> slots = [("retrain", None), ("retrain", True), ("request", None)]
        >>> [d and d.id for d in store.latest_decisions("p", slots)]
        [2, 1, None]
        >>> [d and d.id for d in store.latest_decisions("p", slots, after=[1, 1, 0])]
        [2, None, None]
        >>> store.close()
        """
        bounds = list(after) if after is not None else [0] * len(slots)
        query = _latest_decisions_query(tuple(fired is not None for _, fired in slots))
        with self._read() as conn:
            params: dict[str, Any] = {"pid": self._pid(conn, pipeline)}
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

    # -- evaluations ----------------------------------------------------------------------------

    def add_evaluation(
        self, pipeline: str, *, batch_id: int | None, version: int, metric: str,
        value: float | None, rows: int, errors: Sequence[float],
        estimated_value: float | None = None, estimated_rows: int = 0,
    ) -> entities.Evaluation:
        """Record how model `version` scored (`metric` = `value`) on a batch's labelled rows,
        and the accuracy estimated on its `estimated_rows` rows before labels were used."""
        per_row = tuple(float(e) for e in errors)
        estimate = None if estimated_value is None else float(estimated_value)
        with self._write() as conn:
            at = self.clock.now()
            new_id = conn.scalar(_INSERT_EVALUATION, {
                "pipeline_id": self._pid(conn, pipeline), "batch_id": batch_id,
                "version": version, "metric": metric, "value": value, "rows": int(rows),
                "errors": list(per_row), "at": at, "estimated_value": estimate,
                "estimated_rows": int(estimated_rows) if estimate is not None else None,
            })
        return entities.Evaluation(
            id=int(new_id), pipeline=pipeline, batch_id=batch_id, version=version, metric=metric,
            value=None if value is None else float(value), rows=int(rows), errors=per_row,
            at=clocks.as_utc(at), estimated_value=estimate,
            estimated_rows=int(estimated_rows) if estimate is not None else 0,
        )

    def list_evaluations(
        self, pipeline: str, version: int | None = None, after_id: int | None = None,
        last: int | None = None,
    ) -> list[entities.Evaluation]:
        """Evaluations of `pipeline` (of one `version`), oldest first; only those after
        `after_id`; with `last`, only the newest `last`."""
        query = _evaluations_query(version is not None, after_id is not None, last is not None)
        with self._read() as conn:
            params = {"pid": self._pid(conn, pipeline), "version": version, "after": after_id,
                      "limit": last}
            rows = conn.execute(query, params).all()
        return [_rows.evaluation(row) for row in reversed(rows)]

    # -- audit ----------------------------------------------------------------------------------

    def audit(
        self, actor: str, action: str, target: str, details: types.JSON | None = None,
    ) -> entities.AuditEntry:
        """Append one entry to the audit log."""
        with self._write() as conn:
            return self._audit(conn, actor, action, target, details)

    def list_audit(
        self, action: str | None = None, target_prefix: str | None = None,
    ) -> list[entities.AuditEntry]:
        """Audit entries, oldest first, filtered by action and by the start of the target."""
        log = T.audit_log
        query = sa.select(log)
        if action is not None:
            query = query.where(log.c.action == action)
        if target_prefix is not None:
            query = query.where(log.c.target.startswith(target_prefix, autoescape=True))
        with self._read() as conn:
            rows = conn.execute(query.order_by(log.c.id)).all()
        return [_rows.audit(row) for row in rows]
