"""Evaluations: how a model version scored on the labelled rows of a batch, with the accuracy
estimated on it before its labels were used."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from driftloop.core import clock as clocks
from driftloop.store import _database, _rows, entities, tables

T = tables
_param = _database.param
_INSERT = sa.insert(T.evaluations).returning(T.evaluations.c.id)


@functools.cache
def _list_query(version: bool, after: bool, limit: bool) -> sa.Select[Any]:
    e = T.evaluations
    query = _database.with_pipeline(e).where(e.c.pipeline_id == _param("pid"))
    if version:
        query = query.where(e.c.version == _param("version"))
    if after:
        query = query.where(e.c.id > _param("after"))
    return _database.newest_first(query, e.c.id, limit)


class Evaluations:
    """The evaluations of each pipeline's model versions, newest last."""

    def __init__(self, db: _database.Database) -> None:
        self._db = db

    def add(
        self, pipeline: str, *, batch_id: int | None, version: int, metric: str,
        value: float | None, rows: int, errors: Sequence[float],
        estimated_value: float | None = None, estimated_rows: int = 0,
    ) -> entities.Evaluation:
        """Record how model `version` scored (`metric` = `value`) on a batch's labelled rows,
        and the accuracy estimated on its `estimated_rows` rows before labels were used."""
        per_row = tuple(float(e) for e in errors)
        estimate = None if estimated_value is None else float(estimated_value)
        with self._db.write() as conn:
            at = self._db.clock.now()
            new_id = conn.scalar(_INSERT, {
                "pipeline_id": self._db.pid(conn, pipeline), "batch_id": batch_id,
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

    def list(
        self, pipeline: str, version: int | None = None, after_id: int | None = None,
        last: int | None = None,
    ) -> list[entities.Evaluation]:
        """Evaluations of `pipeline` (of one `version`), oldest first; only those after
        `after_id`; with `last`, only the newest `last`."""
        query = _list_query(version is not None, after_id is not None, last is not None)
        with self._db.read() as conn:
            params = {"pid": self._db.pid(conn, pipeline), "version": version, "after": after_id,
                      "limit": last}
            rows = conn.execute(query, params).all()
        return [_rows.evaluation(row) for row in reversed(rows)]
