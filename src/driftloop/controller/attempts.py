"""Retries of a fired retrain decision, and when the loop gives up on one.

A fired decision whose runs all failed is retried by the next ticks until `MAX_ATTEMPTS` of
its runs failed with the current trainer. Runs that do not count: those a stopped controller
left "interrupted" (a kill is not the trainer's fault), those "postponed" because the work did
not happen (a federated round too few regions joined: `errors.Postponed`), and failures of
another trainer (a run records `train.fingerprint.trainer_sha256`; fixing ``train.py`` or the
spec's ``trainer:`` starts the count again). After that the loop waits for a new decision:
`driftloop retrain` asks for one; `driftloop status` and the dashboard show the give-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from driftloop.store import entities, metadata

MAX_ATTEMPTS = 3
"""Failed trainings of one decision, with one trainer, before the loop gives up on it."""


@dataclass(frozen=True)
class GaveUp:
    """The loop stopped retrying `decision_id` after `failures` failed runs, the last at `at`."""

    decision_id: int
    failures: int
    at: datetime
    error: str

    def message(self) -> str:
        """What `driftloop status`, `tick` and the dashboard say.

        >>> from datetime import UTC
        >>> GaveUp(4, 3, datetime(2024, 5, 1, 12, 30, tzinfo=UTC), "ValueError: oops").message()
        'retraining gave up after 3 failures at 2024-05-01 12:30:00 UTC: ValueError: oops; `driftloop retrain` to try again'
        """  # noqa: E501
        return (f"retraining gave up after {self.failures} failures at "
                f"{self.at:%Y-%m-%d %H:%M:%S %Z}: {self.error}; `driftloop retrain` to try again")


def failures(
    runs: Sequence[entities.TrainingRun], trainer_sha256: str,
) -> list[entities.TrainingRun]:
    """The failed runs among `runs` that count against the trainer `trainer_sha256` (runs
    recorded before trainers were hashed count against any)."""
    return [run for run in runs if run.status == "failed"
            and run.trainer_sha256 in (None, trainer_sha256)]


def gave_up(runs: Sequence[entities.TrainingRun], trainer_sha256: str) -> GaveUp | None:
    """The give-up, if the runs of one decision (oldest first) hold `MAX_ATTEMPTS` failures
    of this trainer and no success; None while it is still retried (or it succeeded)."""
    if any(run.status == "succeeded" for run in runs):
        return None
    failed = failures(runs, trainer_sha256)
    if len(failed) < MAX_ATTEMPTS:
        return None
    last = failed[-1]
    return GaveUp(decision_id=int(last.decision_id or 0), failures=len(failed),
                  at=last.finished_at or last.started_at, error=last.error or "no error recorded")


def latest_give_up(
    store: metadata.MetadataStore, pipeline: str, trainer_sha256: str | None = None,
) -> GaveUp | None:
    """The give-up on the pipeline's newest fired retrain decision, if the loop gave up on it
    (two reads: that decision and its runs). Without `trainer_sha256` (a reader that has no
    spec, such as the dashboard), the trainer is taken to be the one its newest run ran."""
    fired = store.decisions.list(pipeline, kind="retrain", fired=True, limit=1)
    if not fired:
        return None
    runs = store.runs.list(pipeline, decision_id=fired[-1].id)
    if trainer_sha256 is None:
        trainer_sha256 = next((r.trainer_sha256 for r in reversed(runs) if r.trainer_sha256), "")
    return gave_up(runs, trainer_sha256)
