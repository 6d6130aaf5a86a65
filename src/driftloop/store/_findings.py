"""Responsible-AI findings: the fairness report of each labelled batch, the explanation of each
model version, and the explanation drift between versions (`entities.Finding`), read back by
kind."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from driftloop.core import clock as clocks
from driftloop.core import finite
from driftloop.core.types import JSON
from driftloop.store import _database, _rows, entities, tables

T = tables
_p = _database.param
_INSERT = sa.insert(T.findings).returning(T.findings.c.id)
_OF_KIND = _database.with_pipeline(T.findings).where(
    T.findings.c.pipeline_id == _p("pid"), T.findings.c.kind == _p("kind"),
    T.findings.c.id > _p("after"))
_NEWEST = _OF_KIND.order_by(T.findings.c.id.desc()).limit(_p("limit"))
_OF_VERSION = _OF_KIND.where(T.findings.c.version == _p("version")).order_by(
    T.findings.c.id.desc()).limit(1)


class Findings:
    """Findings, newest last, read by kind."""

    def __init__(self, db: _database.Database) -> None:
        self._db = db

    def add(self, pipeline: str, kind: str, report: JSON, *,
            batch_id: int | None = None, version: int | None = None,
            value: float | None = None) -> entities.Finding:
        """Record one finding of `kind` with its evidence `report`."""
        number = finite.or_none(value)
        plain = _rows.plain(report)
        with self._db.write() as conn:
            at = self._db.clock.now()
            new_id = conn.scalar(_INSERT, {
                "pipeline_id": self._db.pid(conn, pipeline), "kind": kind, "batch_id": batch_id,
                "version": version, "value": number, "report": plain, "at": at})
        return entities.Finding(id=int(new_id), pipeline=pipeline, kind=kind, batch_id=batch_id,
                                version=version, value=number, report=plain,
                                at=clocks.as_utc(at))

    def for_version(self, pipeline: str, kind: str, version: int) -> entities.Finding | None:
        """The newest finding of `kind` about model `version`, or None."""
        with self._db.read() as conn:
            row = conn.execute(_OF_VERSION, {"pid": self._db.pid(conn, pipeline), "kind": kind,
                                             "after": 0, "version": version}).first()
        return None if row is None else _finding(row)

    def list(self, pipeline: str, kind: str, after_id: int = 0,
             last: int = 1000) -> list[entities.Finding]:
        """The newest `last` findings of `kind` with id > `after_id`, oldest first."""
        with self._db.read() as conn:
            rows = conn.execute(_NEWEST, {"pid": self._db.pid(conn, pipeline), "kind": kind,
                                          "after": after_id, "limit": last}).all()
        return [_finding(row) for row in reversed(rows)]


def _finding(row: Any) -> entities.Finding:
    return entities.Finding(id=row.id, pipeline=row.pipeline, kind=row.kind,
                            batch_id=row.batch_id, version=row.version, value=row.value,
                            report=row.report, at=row.at)
