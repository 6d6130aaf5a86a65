"""Training runs: the batches each trained on (its lineage), its metric points and the trials
of its hyperparameter search (`trainer.search`)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from driftloop.core import clock as clocks
from driftloop.core import errors, finite, types
from driftloop.store import _batches, _database, _engine, _rows, entities, tables

T = tables
FINISHED_STATUSES = ("succeeded", "failed", "interrupted", "postponed")
_param = _database.param
_LINEAGE = (
    sa.select(T.run_batches.c.run_id, T.run_batches.c.batch_id)
    .where(T.run_batches.c.run_id.in_(sa.bindparam("runs", expanding=True)))
    .order_by(T.run_batches.c.run_id, T.run_batches.c.position)
)
_INSERT = sa.insert(T.runs).returning(T.runs.c.id)
_INSERT_RUN_BATCH = sa.insert(T.run_batches)
_FINISH = sa.update(T.runs).where(T.runs.c.id == _param("run")).values(
    status=_param("b_status"), error=_param("b_error"),
    compute_seconds=_param("b_compute_seconds"), finished_at=_param("b_finished_at"))
_GET = _database.with_pipeline(T.runs).where(T.runs.c.id == _param("run"))
_EXISTS = sa.select(T.runs.c.id).where(T.runs.c.id == _param("run"))
_TRIALS = (sa.select(T.trials).where(T.trials.c.run_id == _param("run"))
           .order_by(T.trials.c.number))


@functools.cache
def _list_query(status: bool, decision: bool) -> sa.Select[Any]:
    r = T.runs
    query = _database.with_pipeline(r).where(r.c.pipeline_id == _param("pid"))
    if status:
        query = query.where(r.c.status == _param("status"))
    if decision:
        query = query.where(r.c.decision_id == _param("decision"))
    return query.order_by(r.c.id)


def lineage(conn: sa.Connection, run_ids: Sequence[int]) -> dict[int, list[int]]:
    """The batch ids each of `run_ids` trained on, in training order."""
    if not run_ids:
        return {}
    rows = conn.execute(_LINEAGE, {"runs": list(run_ids)})
    return _rows.group((row.run_id, row.batch_id) for row in rows)


class Runs:
    """Training runs, their metrics and search trials."""

    def __init__(self, db: _database.Database) -> None:
        self._db = db

    def start(
        self, pipeline: str, *, trainer: str, params: types.JSON, batch_ids: Sequence[int],
        decision_id: int | None = None, trainer_sha256: str | None = None,
    ) -> entities.TrainingRun:
        """Record a training run on `batch_ids` (its lineage), in state ``running``;
        `trainer_sha256` says which trainer it runs (`train.fingerprint`)."""
        batch_ids = [int(b) for b in dict.fromkeys(batch_ids)]
        params = _rows.plain(params)
        region = self._db.region
        with self._db.write() as conn:
            pid = self._db.pid(conn, pipeline)
            _batches.check_ids(conn, pipeline, pid, batch_ids)
            at = self._db.clock.now()
            run_id = int(conn.scalar(_INSERT, {
                "pipeline_id": pid, "trainer": trainer, "params": params,
                "decision_id": decision_id, "status": "running", "started_at": at,
                "trainer_sha256": trainer_sha256, "region": region,
            }))
            if batch_ids:
                conn.execute(_INSERT_RUN_BATCH, [
                    {"run_id": run_id, "batch_id": b, "position": i}
                    for i, b in enumerate(batch_ids)])
        return entities.TrainingRun(
            id=run_id, pipeline=pipeline, trainer=trainer, params=params,
            batch_ids=tuple(batch_ids), decision_id=decision_id, status="running",
            compute_seconds=None, error=None, started_at=clocks.as_utc(at), finished_at=None,
            trainer_sha256=trainer_sha256, region=region,
        )

    def finish(
        self, run_id: int, *, status: types.RunStatus, compute_seconds: float | None,
        error: str | None = None,
    ) -> entities.TrainingRun:
        if status not in FINISHED_STATUSES:
            raise errors.ConfigError(
                f"a run finishes as one of {FINISHED_STATUSES}; got {status!r}", run=run_id)
        with self._db.write() as conn:
            done = conn.execute(_FINISH, {
                "run": run_id, "b_status": status, "b_error": error,
                "b_compute_seconds": None if compute_seconds is None else float(compute_seconds),
                "b_finished_at": self._db.clock.now()})
            if done.rowcount == 0:
                raise errors.NotFoundError(f"training run {run_id} does not exist", run=run_id)
            return _get(conn, run_id)

    def get(self, run_id: int) -> entities.TrainingRun:
        with self._db.read() as conn:
            return _get(conn, run_id)

    def log_metrics(self, run_id: int, points: Sequence[tuple[str, float, int]]) -> None:
        """Append `(key, value, step)` points to a run, in one bulk insert."""
        if not points:
            return
        at = self._db.clock.now()
        with self._db.write() as conn:
            if conn.scalar(_EXISTS, {"run": run_id}) is None:
                raise errors.NotFoundError(f"training run {run_id} does not exist", run=run_id)
            _engine.bulk_insert(
                conn, T.metrics, ("key", "value", "step"),
                ((str(key), float(value), int(step)) for key, value, step in points),
                constants={"run_id": run_id, "at": at})

    def metrics(self, run_id: int, key: str | None = None) -> list[entities.MetricPoint]:
        """A run's metric points ordered by key, step and arrival."""
        m = T.metrics
        query = sa.select(m).where(m.c.run_id == run_id)
        if key is not None:
            query = query.where(m.c.key == key)
        with self._db.read() as conn:
            rows = conn.execute(query.order_by(m.c.key, m.c.step, m.c.id)).all()
        return [_rows.metric(row) for row in rows]

    def add_trials(self, run_id: int, trials: Sequence[entities.TrialRecord]) -> None:
        """Record the search `trials` of run `run_id` (one insert); numbers are unique per run."""
        if not trials:
            return
        at = self._db.clock.now()
        rows = [{
            "run_id": run_id, "number": int(t.number), "family": t.family,
            "params": _rows.plain(t.params), "score": finite.or_none(t.score),
            "cpu_seconds": float(t.cpu_seconds), "wall_seconds": float(t.wall_seconds),
            "error": t.error, "at": at,
        } for t in trials]
        with self._db.write() as conn:
            if conn.scalar(_EXISTS, {"run": run_id}) is None:
                raise errors.NotFoundError(f"training run {run_id} does not exist", run=run_id)
            conn.execute(sa.insert(T.trials), rows)

    def trials(self, run_id: int) -> list[entities.Trial]:
        """The trials of run `run_id` in trial order (none if it did not search)."""
        with self._db.read() as conn:
            rows = conn.execute(_TRIALS, {"run": run_id}).all()
        return [entities.Trial(
            run_id=row.run_id, number=row.number, family=row.family, params=row.params,
            score=row.score, cpu_seconds=row.cpu_seconds, wall_seconds=row.wall_seconds,
            error=row.error, at=row.at) for row in rows]

    def list(
        self, pipeline: str, status: types.RunStatus | None = None, decision_id: int | None = None,
        last: int | None = None,
    ) -> list[entities.TrainingRun]:
        """The pipeline's training runs, oldest first; only the newest `last` if given."""
        query = _list_query(status is not None, decision_id is not None)
        if last is not None:
            query = query.order_by(None).order_by(T.runs.c.id.desc()).limit(last)
        with self._db.read() as conn:
            params = {"pid": self._db.pid(conn, pipeline), "status": status,
                      "decision": decision_id}
            rows = conn.execute(query, params).all()
            if last is not None:
                rows.reverse()
            batches = lineage(conn, [row.id for row in rows])
        return [_rows.run(row, batches.get(row.id, [])) for row in rows]


def _get(conn: sa.Connection, run_id: int) -> entities.TrainingRun:
    row = conn.execute(_GET, {"run": run_id}).first()
    if row is None:
        raise errors.NotFoundError(f"training run {run_id} does not exist", run=run_id)
    return _rows.run(row, lineage(conn, [run_id]).get(run_id, []))
