"""Model versions exported to other formats and models imported from them.

`TransferStore` shares the engine and the clock of a `MetadataStore` (its table is
`tables.model_transfers`). `driftloop models export` records each export here with its parity
report and the exported file (an artifact, sha256-checked like a model), `driftloop models
import` records where an imported version came from, and the server asks `passing_export` for
the ONNX file of a version it serves with ``serving.runtime: onnx``.

    >>> from datetime import UTC, datetime
    >>> from driftloop.core.clock import FakeClock
    >>> from driftloop.store.metadata import MetadataStore
    >>> meta = MetadataStore.open("sqlite://", clock=FakeClock(datetime(2024, 1, 1, tzinfo=UTC)))
    >>> _ = meta.pipelines.ensure("p", {})
    >>> transfers = TransferStore(meta)
    >>> _ = transfers.add("p", 1, direction="export", format="onnx", location="m.onnx",
    ...                   artifact=("file:///a/m.onnx", "0" * 64), passed=True,
    ...                   report={"same_class": 1.0}, actor="ann")
    >>> transfers.passing_export("p", 1, "onnx").report
    {'same_class': 1.0}
    >>> transfers.passing_export("p", 2, "onnx") is None
    True
    >>> meta.close()
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from driftloop.core import types
from driftloop.store import _rows, entities, metadata, tables

_T = tables.model_transfers
_LIST = (
    sa.select(_T, tables.pipelines.c.name.label("pipeline"))
    .join(tables.pipelines, tables.pipelines.c.id == _T.c.pipeline_id)
    .where(tables.pipelines.c.name == sa.bindparam("pipeline"))
    .order_by(_T.c.id)
)


class TransferStore:
    """Exports and imports of model versions, in the metadata store's database."""

    def __init__(self, store: metadata.MetadataStore) -> None:
        self.store = store

    def add(
        self, pipeline: str, version: int, *, direction: str, format: str, location: str,
        artifact: tuple[str, str] | None, passed: bool, report: types.JSON, actor: str,
    ) -> entities.Transfer:
        """Record one export or import of version `version` of `pipeline`.
        `artifact`: (uri, sha256) of the exported file, kept in the artifact store."""
        uri, sha256 = artifact or (None, None)
        row = {"version": version, "direction": direction, "format": format,
               "location": location, "artifact_uri": uri, "sha256": sha256, "passed": passed,
               "report": _rows.plain(report), "actor": actor, "at": self.store.clock.now()}
        with self.store.db.write() as conn:
            row["pipeline_id"] = self.store.db.pid(conn, pipeline)
            new_id = conn.execute(sa.insert(_T).returning(_T.c.id), row).scalar_one()
        return _transfer({**row, "id": new_id, "pipeline": pipeline})

    def list(self, pipeline: str, version: int | None = None) -> list[entities.Transfer]:
        """The transfers of `pipeline` (of one `version` if given), oldest first."""
        query = _LIST if version is None else _LIST.where(_T.c.version == version)
        with self.store.db.read() as conn:
            rows = conn.execute(query, {"pipeline": pipeline}).mappings().all()
        return [_transfer(dict(row)) for row in rows]

    def passing_export(self, pipeline: str, version: int, format: str) -> entities.Transfer | None:
        """The newest export of `version` to `format` that passed its parity check and kept
        its file, or None."""
        found = [t for t in self.list(pipeline, version)
                 if t.direction == "export" and t.format == format and t.passed
                 and t.artifact_uri is not None]
        return found[-1] if found else None


def _transfer(row: dict[str, Any]) -> entities.Transfer:
    from driftloop.core import clock

    return entities.Transfer(
        id=int(row["id"]), pipeline=row["pipeline"], version=row["version"],
        direction=row["direction"], format=row["format"], location=row["location"],
        artifact_uri=row["artifact_uri"], sha256=row["sha256"], passed=bool(row["passed"]),
        report=row["report"], actor=row["actor"], at=clock.as_utc(row["at"]))
