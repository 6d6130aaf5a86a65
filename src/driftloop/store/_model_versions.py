"""Model versions: each registered model of a pipeline (1, 2, 3, ...), its artifact, metrics,
gate report and calibrator, and the batches it was trained on (its run's lineage)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from driftloop.core import clock as clocks
from driftloop.core import errors, types
from driftloop.store import _database, _rows, _runs, entities, tables

T = tables
_param = _database.param
_BUMP_VERSION = (
    sa.update(T.pipelines).where(T.pipelines.c.name == sa.bindparam("pipeline"))
    .values(last_version=T.pipelines.c.last_version + 1)
    .returning(T.pipelines.c.id, T.pipelines.c.last_version)
)
_RUN_LINEAGE = (
    sa.select(T.runs.c.pipeline_id, T.run_batches.c.batch_id)
    .select_from(T.runs.outerjoin(T.run_batches, T.run_batches.c.run_id == T.runs.c.id))
    .where(T.runs.c.id == sa.bindparam("run")).order_by(T.run_batches.c.position)
)
_INSERT = sa.insert(T.model_versions).returning(T.model_versions.c.id)
_OF_PIPELINE = _database.with_pipeline(T.model_versions).where(
    T.model_versions.c.pipeline_id == _param("pid"))
_ALL = _OF_PIPELINE.order_by(T.model_versions.c.version)
_NEWEST = _OF_PIPELINE.order_by(T.model_versions.c.version.desc()).limit(_param("limit"))
_ONE = _OF_PIPELINE.where(T.model_versions.c.version == _param("version"))
_OF_RUN = _database.with_pipeline(T.model_versions).where(
    T.model_versions.c.run_id == _param("run")).order_by(T.model_versions.c.version)


class ModelVersions:
    """The registered model versions of each pipeline."""

    def __init__(self, db: _database.Database) -> None:
        self._db = db

    def add(
        self, pipeline: str, *, run_id: int | None, artifact_uri: str, sha256: str,
        metrics: types.JSON, profile_id: int | None = None, gate_report: types.JSON | None = None,
        calibration: tuple[str, str] | None = None,
    ) -> entities.ModelVersion:
        """Register a model as the pipeline's next version (1, 2, 3, ...); its batch_ids are
        the lineage of `run_id`. `calibration`: (uri, sha256) of its confidence calibrator."""
        calibration_uri, calibration_sha256 = calibration or (None, None)
        metrics = _rows.plain(metrics)
        report = None if gate_report is None else _rows.plain(gate_report)
        region = self._db.region
        with self._db.write() as conn:
            # Bumping the counter locks the pipeline row: versions are handed out one at a time.
            bumped = conn.execute(_BUMP_VERSION, {"pipeline": pipeline}).first()
            if bumped is None:
                raise errors.NotFoundError(f"pipeline {pipeline!r} does not exist",
                                           pipeline=pipeline)
            batch_ids: list[int] = []
            if run_id is not None:
                lineage = conn.execute(_RUN_LINEAGE, {"run": run_id}).all()
                if not lineage or lineage[0].pipeline_id != bumped.id:
                    raise errors.NotFoundError(
                        f"training run {run_id} does not exist in pipeline {pipeline!r}",
                        pipeline=pipeline, run=run_id)
                batch_ids = [row.batch_id for row in lineage if row.batch_id is not None]
            at = self._db.clock.now()
            new_id = conn.execute(_INSERT, {
                "pipeline_id": bumped.id, "version": bumped.last_version, "run_id": run_id,
                "artifact_uri": artifact_uri, "sha256": sha256, "metrics": metrics,
                "profile_id": profile_id, "gate_report": report, "created_at": at,
                "calibration_uri": calibration_uri, "calibration_sha256": calibration_sha256,
                "region": region,
            }).scalar_one()
        return entities.ModelVersion(
            id=int(new_id), pipeline=pipeline, version=bumped.last_version, run_id=run_id,
            artifact_uri=artifact_uri, sha256=sha256, metrics=metrics, profile_id=profile_id,
            gate_report=report, created_at=clocks.as_utc(at), batch_ids=tuple(batch_ids),
            calibration_uri=calibration_uri, calibration_sha256=calibration_sha256,
            region=region,
        )

    def get(self, pipeline: str, version: int) -> entities.ModelVersion:
        with self._db.read() as conn:
            return self._get(conn, pipeline, version)

    def _get(self, conn: sa.Connection, pipeline: str, version: int) -> entities.ModelVersion:
        found = _read(conn, _ONE, {"pid": self._db.pid(conn, pipeline), "version": version})
        if not found:
            raise errors.NotFoundError(
                f"model version {version} of pipeline {pipeline!r} does not exist",
                pipeline=pipeline, version=version)
        return found[0]

    def for_run(self, run_id: int) -> entities.ModelVersion | None:
        """The newest model version trained by run `run_id`, or None if it registered none."""
        with self._db.read() as conn:
            found = _read(conn, _OF_RUN, {"run": run_id})
        return found[-1] if found else None

    def set_gate_report(
        self, pipeline: str, version: int, report: types.JSON,
    ) -> entities.ModelVersion:
        mv = T.model_versions
        with self._db.write() as conn:
            done = conn.execute(sa.update(mv).where(
                mv.c.pipeline_id == self._db.pid(conn, pipeline), mv.c.version == version,
            ).values(gate_report=_rows.plain(report)))
            if done.rowcount == 0:
                raise errors.NotFoundError(
                    f"model version {version} of pipeline {pipeline!r} does not exist",
                    pipeline=pipeline, version=version)
            return self._get(conn, pipeline, version)

    def list(self, pipeline: str, last: int | None = None) -> list[entities.ModelVersion]:
        """The pipeline's versions, oldest first; only the newest `last` if given."""
        with self._db.read() as conn:
            params = {"pid": self._db.pid(conn, pipeline), "limit": last}
            if last is None:
                return _read(conn, _ALL, params)
            return _read(conn, _NEWEST, params, newest_first=True)


def _read(
    conn: sa.Connection, query: sa.Select[Any], params: dict[str, Any], newest_first: bool = False,
) -> list[entities.ModelVersion]:
    rows = list(conn.execute(query, params))
    if newest_first:
        rows.reverse()
    batches = _runs.lineage(conn, sorted({r.run_id for r in rows if r.run_id is not None}))
    return [_rows.model_version(r, batches.get(r.run_id, [])) for r in rows]
