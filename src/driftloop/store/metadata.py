"""The metadata store: pipelines, batches, profiles, runs, metrics, search trials, model versions,
aliases, decisions, the audit log and leases, behind one class on SQLAlchemy Core.

The controller, the policy, the gate, the CLI and the server call `MetadataStore`; every method
is one transaction and returns the frozen dataclasses of `store.entities` (rows never leave).
Every timestamp written comes from the injected clock, so a backtest runs in simulated time.

    >>> from datetime import UTC, datetime
    >>> from driftloop.core.clock import FakeClock
    >>> store = MetadataStore.open("sqlite://", clock=FakeClock(datetime(2024, 1, 1, tzinfo=UTC)))
    >>> store.ensure_pipeline("churn", {"trainer": "sklearn"}).name
    'churn'
    >>> store.close()
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from driftloop.core import clock as clocks
from driftloop.core import errors, secrecy, types
from driftloop.store import (
    _engine,
    _findings,
    _history,
    _messages,
    _rows,
    _trials,
    entities,
    tables,
)

T = tables
BATCH_STATUSES = ("accepted", "quarantined")
FINISHED_STATUSES = ("succeeded", "failed", "interrupted", "postponed")

# Statements of the hot path, built once (building one costs as much as running it on SQLite).
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
_INSERT_VERSION = sa.insert(T.model_versions).returning(T.model_versions.c.id)
_param = _history.param
_GET_PIPELINE = sa.select(T.pipelines).where(T.pipelines.c.name == _param("name"))
_GET_CURSOR = sa.select(T.cursors.c.value).where(
    T.cursors.c.pipeline_id == _param("pid"), T.cursors.c.key == _param("key"))
_FIND_BATCH = _history.with_pipeline(T.batches).where(
    T.batches.c.pipeline_id == _param("pid"), T.batches.c.fingerprint == _param("fingerprint"))
_INSERT_BATCH = sa.insert(T.batches).returning(T.batches.c.id)
_GET_PROFILE = _history.with_pipeline(T.profiles).where(T.profiles.c.id == _param("id"))
_LINEAGE = (
    sa.select(T.run_batches.c.run_id, T.run_batches.c.batch_id)
    .where(T.run_batches.c.run_id.in_(sa.bindparam("runs", expanding=True)))
    .order_by(T.run_batches.c.run_id, T.run_batches.c.position)
)
_INSERT_PROFILE = sa.insert(T.profiles).returning(T.profiles.c.id)
_BATCH_IDS = sa.select(T.batches.c.id).where(
    T.batches.c.pipeline_id == _param("pid"),
    T.batches.c.id.in_(sa.bindparam("ids", expanding=True)))
_INSERT_RUN = sa.insert(T.runs).returning(T.runs.c.id)
_INSERT_RUN_BATCH = sa.insert(T.run_batches)
_FINISH_RUN = sa.update(T.runs).where(T.runs.c.id == _param("run")).values(
    status=_param("b_status"), error=_param("b_error"),
    compute_seconds=_param("b_compute_seconds"), finished_at=_param("b_finished_at"))
_GET_RUN = _history.with_pipeline(T.runs).where(T.runs.c.id == _param("run"))
_VERSIONS = _history.with_pipeline(T.model_versions).where(
    T.model_versions.c.pipeline_id == _param("pid"))
_ALL_VERSIONS = _VERSIONS.order_by(T.model_versions.c.version)
_NEWEST_VERSIONS = _VERSIONS.order_by(T.model_versions.c.version.desc()).limit(_param("limit"))
_ONE_VERSION = _VERSIONS.where(T.model_versions.c.version == _param("version"))
_RUN_VERSIONS = _history.with_pipeline(T.model_versions).where(
    T.model_versions.c.run_id == _param("run")).order_by(T.model_versions.c.version)


@functools.cache
def _set_cursor(dialect: str) -> Any:
    stmt = _engine.insert(dialect, T.cursors)
    return stmt.on_conflict_do_update(
        index_elements=["pipeline_id", "key"],
        set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at})


@functools.cache
def _batches_query(status: bool, after: bool, limit: bool) -> sa.Select[Any]:
    b = T.batches
    query = _history.with_pipeline(b).where(b.c.pipeline_id == _param("pid"))
    if status:
        query = query.where(b.c.status == _param("status"))
    if after:
        query = query.where(b.c.id > _param("after"))
    query = query.order_by(b.c.id)
    return query.limit(_param("limit")) if limit else query


@functools.cache
def _runs_query(status: bool, decision: bool) -> sa.Select[Any]:
    r = T.runs
    query = _history.with_pipeline(r).where(r.c.pipeline_id == _param("pid"))
    if status:
        query = query.where(r.c.status == _param("status"))
    if decision:
        query = query.where(r.c.decision_id == _param("decision"))
    return query.order_by(r.c.id)


class MetadataStore(_trials.TrialStore, _findings.FindingStore):
    """Stored state of every pipeline, on SQLite (default) or PostgreSQL, chosen by `url`."""

    def _batch_ids(self, conn: sa.Connection, run_ids: Sequence[int]) -> dict[int, list[int]]:
        if not run_ids:
            return {}
        rows = conn.execute(_LINEAGE, {"runs": list(run_ids)})
        return _rows.group((row.run_id, row.batch_id) for row in rows)

    # -- pipelines ------------------------------------------------------------------------------

    def ensure_pipeline(
        self, name: str, spec: types.JSON, actor: str = "system",
    ) -> entities.Pipeline:
        """Create pipeline `name`, or update its spec if it changed (audited as `config.change`).
        The spec is stored with its secrets masked (`core.secrecy.redact`)."""
        spec = _rows.plain(secrecy.redact(spec))
        try:
            with self._write() as conn:
                row = conn.execute(sa.select(T.pipelines).where(T.pipelines.c.name == name)).first()
                if row is None:
                    conn.execute(sa.insert(T.pipelines).values(
                        name=name, spec=spec, created_at=self.clock.now()))
                    self._audit(conn, actor, "pipeline.create", name, {"spec": spec})
                elif row.spec != spec:
                    changed = _rows.diff_keys(row.spec, spec)
                    conn.execute(sa.update(T.pipelines).where(T.pipelines.c.id == row.id)
                                 .values(spec=spec))
                    self._audit(conn, actor, "config.change", name, {"changed": changed})
                else:
                    return _rows.pipeline(row)
                return self._get_pipeline(conn, name)
        except sa.exc.IntegrityError:
            with self._read() as conn:  # created concurrently? then it exists: compare again
                raced = conn.scalar(sa.select(T.pipelines.c.id).where(T.pipelines.c.name == name))
            if raced is None:
                raise
            return self.ensure_pipeline(name, spec, actor)

    def get_pipeline(self, name: str) -> entities.Pipeline:
        with self._read() as conn:
            return self._get_pipeline(conn, name)

    def _get_pipeline(self, conn: sa.Connection, name: str) -> entities.Pipeline:
        row = conn.execute(_GET_PIPELINE, {"name": name}).first()
        if row is None:
            raise errors.NotFoundError(f"pipeline {name!r} does not exist", pipeline=name)
        return _rows.pipeline(row)

    def list_pipelines(self) -> list[entities.Pipeline]:
        with self._read() as conn:
            rows = conn.execute(sa.select(T.pipelines).order_by(T.pipelines.c.name)).all()
        return [_rows.pipeline(row) for row in rows]

    def set_schema(self, name: str, schema: types.JSON) -> entities.Pipeline:
        with self._write() as conn:
            pid = self._pid(conn, name)
            conn.execute(sa.update(T.pipelines).where(T.pipelines.c.id == pid)
                         .values(schema=_rows.plain(schema)))
            return self._get_pipeline(conn, name)

    # -- cursors --------------------------------------------------------------------------------

    def get_cursor(self, pipeline: str, key: str) -> Any:
        """The value stored under `key` for `pipeline` (a source's high-water mark), or None."""
        with self._read() as conn:
            return conn.scalar(_GET_CURSOR, {"pid": self._pid(conn, pipeline), "key": key})

    def set_cursor(self, pipeline: str, key: str, value: Any) -> None:
        with self._write() as conn:
            conn.execute(_set_cursor(self._dialect), {
                "pipeline_id": self._pid(conn, pipeline), "key": key, "value": value,
                "updated_at": self.clock.now()})

    # -- batches --------------------------------------------------------------------------------

    def add_batch(
        self, pipeline: str, *, source_uri: str, fingerprint: str, rows: int,
        start: Any, end: Any, status: types.BatchStatus, reasons: dict[str, list[str]],
        data_uri: str | None = None, data_sha256: str | None = None,
        source_key: str = "", messages: Sequence[str] = (),
        quality: dict[str, list[str]] | None = None, quality_rows: int = 0,
        spec_sha256: str | None = None, requeued_from: int | None = None,
    ) -> tuple[entities.Batch, bool]:
        """Record a batch once per (pipeline, fingerprint): `(batch, True)` if new, else
        `(the stored batch, False)` — also when another writer wins a race for it. The stream
        `messages` it holds (ids under `source_key`) are recorded with it, in one transaction.

        `requeued_from` names the quarantined batch this one re-validates (`driftloop batches
        requeue`): in the same transaction its status becomes ``requeued``; `ConflictError`
        if it is not quarantined (any more)."""
        if status not in BATCH_STATUSES:
            raise errors.ConfigError(
                f"batch status must be one of {BATCH_STATUSES}; got {status!r}", pipeline=pipeline)
        values = {
            "source_uri": source_uri, "fingerprint": fingerprint, "rows": int(rows),
            "start": start, "end": end, "status": status, "reasons": _rows.plain(reasons),
            "data_uri": data_uri, "data_sha256": data_sha256, "created_at": self.clock.now(),
            "quality": _rows.quality_json(quality or {}, quality_rows),
            "spec_sha256": spec_sha256, "requeued_from": requeued_from, "region": self.region,
        }
        try:
            with self._write() as conn:
                existing = self._find_batch(conn, pipeline, fingerprint)
                if existing is not None:
                    return existing, False
                pid = self._pid(conn, pipeline)
                if requeued_from is not None:
                    self._mark_requeued(conn, pipeline, pid, requeued_from)
                new_id = conn.scalar(_INSERT_BATCH, {"pipeline_id": pid, **values})
                if messages:
                    _messages.add(conn, pid, source_key, messages, int(new_id))
        except sa.exc.IntegrityError:  # another writer added it between our read and insert
            raced = self.find_batch(pipeline, fingerprint)
            if raced is None:
                raise
            return raced, False
        for name in ("start", "end", "created_at"):
            values[name] = None if values[name] is None else clocks.as_utc(values[name])
        stored = values.pop("quality") or {}
        return entities.Batch(
            id=int(new_id), pipeline=pipeline, quality=stored.get("columns", {}),
            quality_rows=int(stored.get("rows", 0)), **values,
        ), True

    def _mark_requeued(self, conn: sa.Connection, pipeline: str, pid: int, batch_id: int) -> None:
        b = T.batches
        done = conn.execute(sa.update(b).where(
            b.c.id == batch_id, b.c.pipeline_id == pid, b.c.status == "quarantined",
        ).values(status="requeued"))
        if done.rowcount == 0:
            raise errors.ConflictError(
                f"batch {batch_id} of pipeline {pipeline!r} is not quarantined; only a "
                "quarantined batch can be requeued", pipeline=pipeline, batch=batch_id)

    def requarantine(
        self, batch_id: int, reasons: dict[str, list[str]], spec_sha256: str | None,
    ) -> entities.Batch:
        """A quarantined batch validated again and still refused: store the new `reasons` and
        the settings they came from (`ConflictError` if it is not quarantined)."""
        b = T.batches
        with self._write() as conn:
            done = conn.execute(sa.update(b).where(
                b.c.id == batch_id, b.c.status == "quarantined",
            ).values(reasons=_rows.plain(reasons), spec_sha256=spec_sha256))
            if done.rowcount == 0:
                raise errors.ConflictError(
                    f"batch {batch_id} is not quarantined", batch=batch_id)
            row = conn.execute(
                _history.with_pipeline(b).where(b.c.id == batch_id)).first()
        return _rows.batch(row)

    def recorded_messages(
        self, pipeline: str, source_key: str, messages: Sequence[str],
    ) -> set[str]:
        """The ones among stream `messages` (ids under `source_key`) already in a batch."""
        if not messages:
            return set()
        with self._read() as conn:
            return _messages.recorded(conn, self._pid(conn, pipeline), source_key, messages)

    def batch_messages(self, batch_id: int) -> list[tuple[str, str]]:
        """`(source_key, message id)` of each stream message batch `batch_id` holds."""
        with self._read() as conn:
            return _messages.of_batch(conn, batch_id)

    def prune_messages(
        self, pipeline: str, horizon: timedelta = _messages.HORIZON, keep: int = _messages.KEEP,
    ) -> int:
        """Forget the stream message ids that can no longer be delivered again: those of
        batches older than `horizon` with at least `keep` newer ones (why these are safe to
        forget: `store._messages`); returns how many ids went."""
        with self._write() as conn:
            pid = self._pid(conn, pipeline)
            return _messages.prune(conn, pid, self.clock.now(), horizon=horizon, keep=keep)

    def find_batch(self, pipeline: str, fingerprint: str) -> entities.Batch | None:
        with self._read() as conn:
            return self._find_batch(conn, pipeline, fingerprint)

    def _find_batch(
        self, conn: sa.Connection, pipeline: str, fingerprint: str,
    ) -> entities.Batch | None:
        params = {"pid": self._pid(conn, pipeline), "fingerprint": fingerprint}
        row = conn.execute(_FIND_BATCH, params).first()
        return None if row is None else _rows.batch(row)

    def get_batch(self, batch_id: int) -> entities.Batch:
        with self._read() as conn:
            query = _history.with_pipeline(T.batches).where(T.batches.c.id == batch_id)
            row = conn.execute(query).first()
        if row is None:
            raise errors.NotFoundError(f"batch {batch_id} does not exist", batch=batch_id)
        return _rows.batch(row)

    def list_batches(
        self, pipeline: str, status: types.BatchStatus | None = None,
        after_id: int | None = None, limit: int | None = None, last: int | None = None,
    ) -> list[entities.Batch]:
        """Batches of `pipeline` in id (arrival) order, optionally only those after `after_id`;
        the first `limit`, or the newest `last`."""
        query = _batches_query(status is not None, after_id is not None, limit is not None)
        if last is not None:
            query = query.order_by(None).order_by(T.batches.c.id.desc()).limit(last)
        with self._read() as conn:
            params = {"pid": self._pid(conn, pipeline), "status": status, "after": after_id,
                      "limit": limit}
            rows = conn.execute(query, params).all()
        if last is not None:
            rows.reverse()
        return [_rows.batch(row) for row in rows]

    def count_batches(self, pipeline: str, status: types.BatchStatus | None = None) -> int:
        """How many batches `pipeline` has (of one `status`)."""
        b = T.batches
        with self._read() as conn:
            query = sa.select(sa.func.count()).where(b.c.pipeline_id == self._pid(conn, pipeline))
            if status is not None:
                query = query.where(b.c.status == status)
            return int(conn.scalar(query) or 0)

    # -- profiles -------------------------------------------------------------------------------

    def add_profile(
        self, pipeline: str, profile: types.JSON, batch_id: int | None = None,
    ) -> entities.Profile:
        profile = _rows.plain(profile)
        with self._write() as conn:
            pid = self._pid(conn, pipeline)
            if batch_id is not None:
                self._check_batches(conn, pipeline, pid, [batch_id])
            at = self.clock.now()
            new_id = conn.scalar(_INSERT_PROFILE, {
                "pipeline_id": pid, "batch_id": batch_id, "profile": profile, "created_at": at,
            })
        return entities.Profile(int(new_id), pipeline, batch_id, profile, clocks.as_utc(at))

    def get_profile(self, profile_id: int) -> entities.Profile:
        with self._read() as conn:
            row = conn.execute(_GET_PROFILE, {"id": profile_id}).first()
        if row is None:
            raise errors.NotFoundError(f"profile {profile_id} does not exist", profile=profile_id)
        return _rows.profile(row)

    def _check_batches(
        self, conn: sa.Connection, pipeline: str, pid: int, batch_ids: Sequence[int],
    ) -> None:
        found = set(conn.scalars(_BATCH_IDS, {"pid": pid, "ids": list(batch_ids)}))
        missing = sorted(set(batch_ids) - found)
        if missing:
            raise errors.NotFoundError(
                f"batches {missing} do not exist in pipeline {pipeline!r}",
                pipeline=pipeline, batch=missing[0])

    # -- runs and metrics -----------------------------------------------------------------------

    def start_run(
        self, pipeline: str, *, trainer: str, params: types.JSON, batch_ids: Sequence[int],
        decision_id: int | None = None, trainer_sha256: str | None = None,
    ) -> entities.TrainingRun:
        """Record a training run on `batch_ids` (its lineage), in state ``running``;
        `trainer_sha256` says which trainer it runs (`train.fingerprint`)."""
        batch_ids = [int(b) for b in dict.fromkeys(batch_ids)]
        params = _rows.plain(params)
        with self._write() as conn:
            pid = self._pid(conn, pipeline)
            self._check_batches(conn, pipeline, pid, batch_ids)
            at = self.clock.now()
            run_id = int(conn.scalar(_INSERT_RUN, {
                "pipeline_id": pid, "trainer": trainer, "params": params,
                "decision_id": decision_id, "status": "running", "started_at": at,
                "trainer_sha256": trainer_sha256, "region": self.region,
            }))
            if batch_ids:
                conn.execute(_INSERT_RUN_BATCH, [
                    {"run_id": run_id, "batch_id": b, "position": i}
                    for i, b in enumerate(batch_ids)])
        return entities.TrainingRun(
            id=run_id, pipeline=pipeline, trainer=trainer, params=params,
            batch_ids=tuple(batch_ids), decision_id=decision_id, status="running",
            compute_seconds=None, error=None, started_at=clocks.as_utc(at), finished_at=None,
            trainer_sha256=trainer_sha256, region=self.region,
        )

    def finish_run(
        self, run_id: int, *, status: types.RunStatus, compute_seconds: float | None,
        error: str | None = None,
    ) -> entities.TrainingRun:
        if status not in FINISHED_STATUSES:
            raise errors.ConfigError(
                f"a run finishes as one of {FINISHED_STATUSES}; got {status!r}", run=run_id)
        with self._write() as conn:
            done = conn.execute(_FINISH_RUN, {
                "run": run_id, "b_status": status, "b_error": error,
                "b_compute_seconds": None if compute_seconds is None else float(compute_seconds),
                "b_finished_at": self.clock.now()})
            if done.rowcount == 0:
                raise errors.NotFoundError(f"training run {run_id} does not exist", run=run_id)
            return self._get_run(conn, run_id)

    def get_run(self, run_id: int) -> entities.TrainingRun:
        with self._read() as conn:
            return self._get_run(conn, run_id)

    def _get_run(self, conn: sa.Connection, run_id: int) -> entities.TrainingRun:
        row = conn.execute(_GET_RUN, {"run": run_id}).first()
        if row is None:
            raise errors.NotFoundError(f"training run {run_id} does not exist", run=run_id)
        return _rows.run(row, self._batch_ids(conn, [run_id]).get(run_id, []))

    def list_runs(
        self, pipeline: str, status: types.RunStatus | None = None, decision_id: int | None = None,
        last: int | None = None,
    ) -> list[entities.TrainingRun]:
        """The pipeline's training runs, oldest first; only the newest `last` if given."""
        query = _runs_query(status is not None, decision_id is not None)
        if last is not None:
            query = query.order_by(None).order_by(T.runs.c.id.desc()).limit(last)
        with self._read() as conn:
            params = {"pid": self._pid(conn, pipeline), "status": status, "decision": decision_id}
            rows = conn.execute(query, params).all()
            if last is not None:
                rows.reverse()
            lineage = self._batch_ids(conn, [row.id for row in rows])
        return [_rows.run(row, lineage.get(row.id, [])) for row in rows]

    def log_metrics(self, run_id: int, points: Sequence[tuple[str, float, int]]) -> None:
        """Append `(key, value, step)` points to a run, in one bulk insert."""
        if not points:
            return
        at = self.clock.now()
        with self._write() as conn:
            if conn.scalar(sa.select(T.runs.c.id).where(T.runs.c.id == run_id)) is None:
                raise errors.NotFoundError(f"training run {run_id} does not exist", run=run_id)
            _engine.bulk_insert(
                conn, T.metrics, ("key", "value", "step"),
                ((str(key), float(value), int(step)) for key, value, step in points),
                constants={"run_id": run_id, "at": at})

    def get_metrics(self, run_id: int, key: str | None = None) -> list[entities.MetricPoint]:
        """A run's metric points ordered by key, step and arrival."""
        m = T.metrics
        query = sa.select(m).where(m.c.run_id == run_id)
        if key is not None:
            query = query.where(m.c.key == key)
        with self._read() as conn:
            rows = conn.execute(query.order_by(m.c.key, m.c.step, m.c.id)).all()
        return [_rows.metric(row) for row in rows]

    # -- model versions -------------------------------------------------------------------------

    def add_model_version(
        self, pipeline: str, *, run_id: int | None, artifact_uri: str, sha256: str,
        metrics: types.JSON, profile_id: int | None = None, gate_report: types.JSON | None = None,
        calibration: tuple[str, str] | None = None,
    ) -> entities.ModelVersion:
        """Register a model as the pipeline's next version (1, 2, 3, ...); its batch_ids are
        the lineage of `run_id`. `calibration`: (uri, sha256) of its confidence calibrator."""
        calibration_uri, calibration_sha256 = calibration or (None, None)
        metrics = _rows.plain(metrics)
        report = None if gate_report is None else _rows.plain(gate_report)
        with self._write() as conn:
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
            at = self.clock.now()
            new_id = conn.execute(_INSERT_VERSION, {
                "pipeline_id": bumped.id, "version": bumped.last_version, "run_id": run_id,
                "artifact_uri": artifact_uri, "sha256": sha256, "metrics": metrics,
                "profile_id": profile_id, "gate_report": report, "created_at": at,
                "calibration_uri": calibration_uri, "calibration_sha256": calibration_sha256,
                "region": self.region,
            }).scalar_one()
        return entities.ModelVersion(
            id=int(new_id), pipeline=pipeline, version=bumped.last_version, run_id=run_id,
            artifact_uri=artifact_uri, sha256=sha256, metrics=metrics, profile_id=profile_id,
            gate_report=report, created_at=clocks.as_utc(at), batch_ids=tuple(batch_ids),
            calibration_uri=calibration_uri, calibration_sha256=calibration_sha256,
            region=self.region,
        )

    def _versions(
        self, conn: sa.Connection, query: sa.Select[Any], params: dict[str, Any],
        newest_first: bool = False,
    ) -> list[entities.ModelVersion]:
        rows = list(conn.execute(query, params))
        if newest_first:
            rows.reverse()
        lineage = self._batch_ids(conn, sorted({r.run_id for r in rows if r.run_id is not None}))
        return [_rows.model_version(r, lineage.get(r.run_id, [])) for r in rows]

    def get_model_version(self, pipeline: str, version: int) -> entities.ModelVersion:
        with self._read() as conn:
            return self._get_version(conn, pipeline, version)

    def _get_version(
        self, conn: sa.Connection, pipeline: str, version: int,
    ) -> entities.ModelVersion:
        params = {"pid": self._pid(conn, pipeline), "version": version}
        found = self._versions(conn, _ONE_VERSION, params)
        if not found:
            raise errors.NotFoundError(
                f"model version {version} of pipeline {pipeline!r} does not exist",
                pipeline=pipeline, version=version)
        return found[0]

    def list_model_versions(
        self, pipeline: str, last: int | None = None,
    ) -> list[entities.ModelVersion]:
        """The pipeline's versions, oldest first; only the newest `last` if given."""
        with self._read() as conn:
            params = {"pid": self._pid(conn, pipeline), "limit": last}
            if last is None:
                return self._versions(conn, _ALL_VERSIONS, params)
            return self._versions(conn, _NEWEST_VERSIONS, params, newest_first=True)

    def model_version_for_run(self, run_id: int) -> entities.ModelVersion | None:
        """The newest model version trained by run `run_id`, or None if it registered none."""
        with self._read() as conn:
            found = self._versions(conn, _RUN_VERSIONS, {"run": run_id})
        return found[-1] if found else None

    def set_gate_report(
        self, pipeline: str, version: int, report: types.JSON,
    ) -> entities.ModelVersion:
        mv = T.model_versions
        with self._write() as conn:
            done = conn.execute(sa.update(mv).where(
                mv.c.pipeline_id == self._pid(conn, pipeline), mv.c.version == version,
            ).values(gate_report=_rows.plain(report)))
            if done.rowcount == 0:
                raise errors.NotFoundError(
                    f"model version {version} of pipeline {pipeline!r} does not exist",
                    pipeline=pipeline, version=version)
            return self._get_version(conn, pipeline, version)
