"""Fit a challenger: hold out the newest labelled rows, choose the training window, train,
and — once the gate has compared it with the champion on the holdout — refit it on everything.

    labelled rows ─► window (spec) ─► [ train part | holdout ]
                                        │ auto: each candidate window of the train part is
                                        │ fitted and scored on the holdout; the best wins
                                        ▼
                                    challenger ─► gate on the holdout ─► refit on its rows
                                                                         and the holdout

The holdout is the gate's (`gate.holdout`: batches, rows, a duration or a share; at most a
fifth of the rows). Without a gate and without `auto` there is none: the model trains on the
whole window. With `gate.refit` the stored model is refitted after a pass, so comparing the
models costs the new model none of its newest rows. `auto` chooses on the same holdout the
gate then judges: its winner's holdout score is slightly optimistic, the champion's is not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from driftloop.controller import project as projects
from driftloop.core import types
from driftloop.core.amount import Amount
from driftloop.gate import metrics as gate_metrics
from driftloop.store import entities
from driftloop.train import executor as executors
from driftloop.train import window as windows

PATIENCE = 2
"""`auto` stops trying longer windows after this many in a row scored below the best so far: on
a drifting stream the long ones are not worth their cost, on a stable one each is better."""


@dataclass(frozen=True)
class Split:
    """The training window cut into the rows to train on and the newest rows held out."""

    window: pd.DataFrame
    train: pd.DataFrame
    holdout: pd.DataFrame


@dataclass(frozen=True)
class Fitted:
    """A challenger, the window it was chosen with, what it cost, and the windows tried."""

    estimator: Any
    size: Amount | None  # None: the spec's own window
    rows: int  # how many of the newest training rows it was fitted on
    cpu_seconds: float
    trials: tuple[entities.TrialRecord, ...]
    lineage: Mapping[str, float] = field(default_factory=dict)


def split(project: projects.Project, window: pd.DataFrame) -> Split:
    """Hold out the newest `gate.holdout` of `window` when a gate or `auto` needs it."""
    spec = project.spec
    if not (spec.gate.enabled or spec.trainer.window.kind == "auto") or window.empty:
        return Split(window, window, window.iloc[:0])
    held = windows.newest(window, spec.gate.holdout, timestamp=spec.timestamp,
                          now=newest_time(window, spec.timestamp, project.clock.now()))
    rows = min(len(held), len(window) // 5)
    return Split(window, window.iloc[: len(window) - rows], window.iloc[len(window) - rows :])


def unseen(holdout: pd.DataFrame, champion: entities.ModelVersion | None) -> pd.DataFrame:
    """The holdout rows the champion was not trained on (newer than its newest batch): the
    only ones a comparison with it is fair on."""
    if champion is None:
        return holdout
    upto = int(champion.metrics.get("data_upto_batch", max(champion.batch_ids, default=0)))
    return holdout[holdout[types.BATCH_COLUMN].to_numpy() > upto]


def fit(
    project: projects.Project,
    part: Split,
    features: list[str],
    executor: executors.Executor,
    anchor: int | None = None,
) -> Fitted:
    """Train the challenger on `part.train`; with window `auto`, the best of the candidate
    windows by the gate's metric on `part.holdout` (ties go to the longer window), trying them
    shortest first until `PATIENCE` in a row did worse than the best. With `anchor` (a routine
    refresh, see `retrain.anchor`) no candidate is longer than the rows from that batch on,
    the champion's window grown by the batches since: long fits only after a change."""
    spec = project.spec
    scorer = gate_metrics.Scorer(spec.gate.metric, spec.task)
    if spec.trainer.window.kind != "auto" or part.holdout.empty:
        result = executor.train(spec.trainer, part.train[features], part.train[spec.target],
                                project.base_dir, scorer)
        trials = tuple(_trial(t) for t in result.trials)
        return Fitted(result.estimator, None, len(part.train), result.cpu_seconds, trials,
                      result.lineage)
    sizes = windows.auto_candidates(part.train, spec.trainer.window)
    batches = part.train[types.BATCH_COLUMN].to_numpy()
    if anchor is not None and (batches >= anchor).any():
        grown = len(set(batches[batches >= anchor]))
        sizes = [*(s for s in sizes if s.unit == "batches" and s.value < grown),
                 Amount(float(grown), "batches")]
    now = newest_time(part.train, spec.timestamp, project.clock.now())
    holdout_X, holdout_y = part.holdout[features], part.holdout[spec.target]
    sign = 1.0 if gate_metrics.get_metric(spec.gate.metric, spec.task).greater_is_better else -1.0
    tried: list[tuple[Amount, int, float, executors.TrainResult]] = []
    best, since_best = -1, 0
    for size in sizes:  # shortest first; stop once longer windows stopped helping
        rows = windows.newest(part.train, size, timestamp=spec.timestamp, now=now)
        if tried and len(rows) == tried[-1][1]:
            continue
        (result,) = executor.train_each(
            spec.trainer, [(rows[features], rows[spec.target])], project.base_dir, scorer)
        score = scorer(result.estimator, holdout_X, holdout_y)
        tried.append((size, len(rows), score, result))
        if best < 0 or sign * score >= sign * tried[best][2]:
            best, since_best = len(tried) - 1, 0
        else:
            since_best += 1
            if since_best >= PATIENCE:
                break
    trials = tuple(
        entities.TrialRecord(number=i, family="window", params={"size": str(size), "rows": rows},
                             score=score, cpu_seconds=r.cpu_seconds, wall_seconds=r.wall_seconds,
                             error=None)
        for i, (size, rows, score, r) in enumerate(tried))
    size, rows, _, result = tried[best]
    return Fitted(result.estimator, size, rows, sum(t[3].cpu_seconds for t in tried), trials)


def refit(
    project: projects.Project,
    part: Split,
    fitted: Fitted,
    features: list[str],
    executor: executors.Executor,
) -> tuple[Any, float, pd.DataFrame]:
    """The model to store after the gate passed: refitted on the rows the challenger was fitted
    on plus the holdout (`gate.refit`), else the challenger itself (always for a federated
    model: a refit would be another round of every region). Returns it, its CPU seconds and
    its rows."""
    spec = project.spec
    if part.holdout.empty or not spec.gate.refit or spec.trainer.federated is not None:
        return fitted.estimator, 0.0, part.train.iloc[len(part.train) - fitted.rows :]
    rows = part.window.iloc[len(part.train) - fitted.rows :]
    result = executor.train(spec.trainer, rows[features], rows[spec.target], project.base_dir,
                            gate_metrics.Scorer(spec.gate.metric, spec.task))
    return result.estimator, result.cpu_seconds, rows


def _trial(trial: Any) -> entities.TrialRecord:
    return entities.TrialRecord(
        number=trial.number, family=trial.family, params=trial.params, score=trial.score,
        cpu_seconds=trial.cpu_seconds, wall_seconds=trial.wall_seconds, error=trial.error)


def newest_time(frame: pd.DataFrame, timestamp: str | None, default: Any) -> Any:
    """Time windows end at the newest row, so a replayed history trains as it did live."""
    if timestamp is None or frame.empty:
        return default
    return pd.Timestamp(frame[timestamp].max()).to_pydatetime()


def batch_ids(rows: pd.DataFrame) -> tuple[int, ...]:
    """The batches `rows` came from (a version's training data, for lineage)."""
    return tuple(int(b) for b in rows[types.BATCH_COLUMN].unique())
