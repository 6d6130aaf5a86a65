"""The trials of a run's hyperparameter search (`trainer.search`): params and score per trial.

`store.metadata.MetadataStore` inherits `TrialStore`; the controller's retrain step writes the
trials of each search with `add_trials`, and `list_trials` reads them back in trial order.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from driftloop.core import errors, finite
from driftloop.store import _history, _rows, entities, tables

T = tables
_RUN_EXISTS = sa.select(T.runs.c.id).where(T.runs.c.id == _history.param("run"))
_LIST = (sa.select(T.trials).where(T.trials.c.run_id == _history.param("run"))
         .order_by(T.trials.c.number))


class TrialStore(_history.HistoryStore):
    """Search trials, stored under their training run."""

    def add_trials(self, run_id: int, trials: Sequence[entities.TrialRecord]) -> None:
        """Record `trials` under run `run_id` (one insert); numbers are unique per run."""
        if not trials:
            return
        at = self.clock.now()
        rows = [{
            "run_id": run_id, "number": int(t.number), "family": t.family,
            "params": _rows.plain(t.params), "score": finite.or_none(t.score),
            "cpu_seconds": float(t.cpu_seconds), "wall_seconds": float(t.wall_seconds),
            "error": t.error, "at": at,
        } for t in trials]
        with self._write() as conn:
            if conn.scalar(_RUN_EXISTS, {"run": run_id}) is None:
                raise errors.NotFoundError(f"training run {run_id} does not exist", run=run_id)
            conn.execute(sa.insert(T.trials), rows)

    def list_trials(self, run_id: int) -> list[entities.Trial]:
        """The trials of run `run_id` in trial order (none if it did not search)."""
        with self._read() as conn:
            rows = conn.execute(_LIST, {"run": run_id}).all()
        return [entities.Trial(
            run_id=row.run_id, number=row.number, family=row.family, params=row.params,
            score=row.score, cpu_seconds=row.cpu_seconds, wall_seconds=row.wall_seconds,
            error=row.error, at=row.at) for row in rows]
