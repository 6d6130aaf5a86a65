"""Backtest: replay history through the very tick that runs in production, on a fake clock.

`driftloop backtest` and `driftloop demo` call `backtest(...)`. The baselines (`baselines`) and a
fixed schedule with the policy's own training budget (`same_budget`) are replayed beside the
policies. Each policy gets its own in-memory store and artifact root, a `ReplaySource` that
releases one batch per step as the clock reaches its end, and an in-process executor (its CPU
seconds are what is compared); every batch is scored by the live champion before anything
learns from it (test-then-train; one policy's replay: `controller.policy_replay`). The first
`warmup` of data is one batch that only trains the first model. Policies run in `workers`
processes, several per process in lockstep (`policy_replay.replay_group`), or as Ray tasks when
the spec's `trainer.executor` is ``ray``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import multiprocessing
import os
import queue as queues
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from multiprocessing import managers
from pathlib import Path
from typing import Any

import pandas as pd

from driftloop.controller import policy_replay
from driftloop.core import config, errors, parent_death
from driftloop.train import executor as executors
from driftloop.train import ray_executor

NEVER, EVERY_BATCH, FIXED_WINDOW = "never", "every-batch", "every-batch (fixed window)"


def baselines(spec: config.PipelineSpec, warmup_rows: int) -> dict[str, dict[str, Any]]:
    """What every policy is compared with: train once; retrain on every batch with the spec's
    window rule; and, unless that rule is a fixed window already, retrain on every batch on a
    fixed window as long as the warm-up (so a poor window rule cannot make every-batch look
    weak). Baselines promote every model (no gate)."""
    every = {"triggers": [{"kind": "volume", "every": "1 batch"}], "cooldown": 0,
             "gate": {"enabled": False}}
    found = {NEVER: {"triggers": [], "cooldown": 0}, EVERY_BATCH: every}
    if spec.trainer.window.kind == "auto":  # every-batch chooses its window at every training
        window = {**spec.trainer.window.model_dump(mode="json"), "rechoose": "always"}
        found[EVERY_BATCH] = {**every, "trainer": {**spec.trainer.model_dump(mode="json"),
                                                   "window": window}}
    if spec.trainer.window.kind in {"all", "auto", "since_drift"}:
        window = {"kind": "last", "size": f"{max(warmup_rows, 1)} rows"}
        trainer = {**spec.trainer.model_dump(mode="json"), "window": window}
        found[FIXED_WINDOW] = {**every, "trainer": trainer}
    return found


def same_budget(result: policy_replay.PolicyResult, batches: int) -> tuple[str, dict[str, Any]]:
    """A fixed schedule with about `result`'s number of trainings over `batches` batches: the
    spec's own settings, retraining every k batches."""
    k = max(1, round((batches - 1) / max(result.trainings - 1, 1)))
    name = f"every {k} batches (same budget)" if k > 1 else "every batch (same budget)"
    return name, {"triggers": [{"kind": "volume", "every": f"{k} batches"}], "cooldown": 0}


def batch_ends(
    frame: pd.DataFrame, timestamp: str, every: timedelta, warmup: timedelta
) -> list[pd.Timestamp]:
    """Ends of the warm-up batch, then of one batch per `every`, up to the last row."""
    if timestamp not in frame.columns or frame.empty:
        raise errors.ConfigError(
            f"nothing to replay: the data has no rows or no {timestamp!r} column "
            f"(columns: {', '.join(map(str, frame.columns))})"
        )
    times = frame[timestamp]
    first, last = times.iloc[0], times.iloc[-1]
    ends = [first + warmup - pd.Timedelta(microseconds=1)]
    while ends[-1] < last:
        ends.append(ends[-1] + every)
    return ends


def policy_spec(base: config.PipelineSpec, overrides: dict[str, Any]) -> config.PipelineSpec:
    """`base` with top-level fields replaced (nested mappings merged one level deep)."""
    data = base.model_dump(mode="json")
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return config.PipelineSpec.model_validate(data)


Progress = Callable[[str, int], None]
"""Called with (policy, batches replayed so far)."""


def backtest(
    frame: pd.DataFrame,
    spec: config.PipelineSpec,
    policies: dict[str, dict[str, Any]],
    *,
    base_dir: Path,
    every: timedelta = timedelta(days=1),
    warmup: timedelta = timedelta(days=30),
    workers: int = 1,
    progress: Progress | None = None,
    budget: str | None = None,
) -> list[policy_replay.PolicyResult]:
    """Replay the baselines and each named policy (spec overrides); results in that order.
    With `budget` (a policy's name), a fixed schedule with that policy's number of trainings
    is replayed after them and comes last.

    With `workers` > 1 the policies run in that many processes, one CPU thread each; with
    `trainer.executor: ray` they run as Ray tasks (one CPU each) on the spec's cluster.
    """
    ends = batch_ends(frame, policy_replay.timestamp_of(spec), every, warmup)
    warmup_rows = int((frame[policy_replay.timestamp_of(spec)] <= ends[0]).sum())
    overrides = {**baselines(spec, warmup_rows), **policies}
    specs = {name: policy_spec(spec, changes) for name, changes in overrides.items()}
    results = replay_all(frame, specs, ends, base_dir, workers, progress)
    if budget is not None:
        found = next(r for r in results if r.policy == budget)
        name, changes = same_budget(found, len(ends))
        extra = {name: policy_spec(specs[budget], changes)}
        results += replay_all(frame, extra, ends, base_dir, 1, progress)
    return results


def replay_all(
    frame: pd.DataFrame,
    specs: dict[str, config.PipelineSpec],
    ends: Sequence[pd.Timestamp],
    base_dir: Path,
    workers: int,
    progress: Progress | None,
) -> list[policy_replay.PolicyResult]:
    """Replay each spec, in `workers` processes or on Ray; results in the order of `specs`."""
    first = next(iter(specs.values()))
    if first.trainer.executor == "ray":
        return _on_ray(frame, specs, ends, base_dir, first.trainer.address, progress)
    if workers <= 1:
        reporters = {name: _reporter(progress, name) for name in specs}
        steps = {name: call for name, call in reporters.items() if call is not None}
        return policy_replay.replay_group(frame, specs, ends, base_dir, steps)
    groups = _groups(list(specs), workers)
    context = multiprocessing.get_context("spawn")
    tie = parent_death.die_with_parent, (os.getpid(),)  # what this starts ends with it
    manager = managers.SyncManager(ctx=context)
    with _terminated_as_exit():
        manager.start(*tie)
        with manager, concurrent.futures.ProcessPoolExecutor(
                len(groups), mp_context=context, initializer=tie[0], initargs=tie[1]) as pool:
            queue = manager.Queue()
            try:
                futures = [
                    pool.submit(
                        policy_replay.replay_group, frame, {name: specs[name] for name in group},
                        ends, base_dir, {name: _Enqueue(queue, name) for name in group},
                    )
                    for group in groups
                ]
                while not all(future.done() for future in futures):
                    _drain(queue, progress, timeout=0.2)
                _drain(queue, progress, timeout=0)
            except BaseException:  # SIGTERM (`_terminated_as_exit`), Ctrl-C: stop them now
                _stop(pool)
                raise
            found = {result.policy: result for future in futures for result in future.result()}
            return [found[name] for name in specs]


@contextlib.contextmanager
def _terminated_as_exit() -> Iterator[None]:
    """While inside, SIGTERM raises `SystemExit` (exit status 143, as if killed by it), so the
    caller stops its workers on the way out; from the main thread only (where signals go)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def exit_(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Cancel what has not started and terminate the workers (a replay in progress has
    nothing worth waiting for)."""
    workers = list((pool._processes or {}).values())  # Python 3.14: pool.terminate_workers()
    pool.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        process.terminate()


def _groups(names: list[str], workers: int) -> list[list[str]]:
    """Policies per worker process, each group replayed in lockstep. Retraining on every batch
    costs about as much as all the other policies together, so it shares its worker only with
    `never` (which trains once); the rest are dealt out over the other workers.

    >>> _groups(["never", "every-batch", "fixed", "a", "b"], 2)
    [['every-batch', 'never'], ['fixed', 'a', 'b']]
    >>> _groups(["never", "every-batch", "fixed", "a", "b"], 3)
    [['every-batch', 'never'], ['fixed', 'b'], ['a']]
    """
    heavy: list[str] = [name for name in (EVERY_BATCH, NEVER) if name in names]
    rest = [name for name in names if name not in heavy]
    if workers <= 1 or not heavy or not rest:
        spread = heavy + rest
        return [spread[i::workers] for i in range(min(workers, len(spread)))]
    others = min(workers - 1, len(rest))
    return [heavy] + [rest[i::others] for i in range(others)]


def _on_ray(
    frame: pd.DataFrame,
    specs: dict[str, config.PipelineSpec],
    ends: Sequence[pd.Timestamp],
    base_dir: Path,
    address: str | None,
    progress: Progress | None,
) -> list[policy_replay.PolicyResult]:
    """Each policy as a Ray task; the frame goes to the object store once."""
    cluster = executors.build_executor("ray", address=address)
    assert isinstance(cluster, ray_executor.RayExecutor)
    queue = cluster.queue()
    shared = cluster.put(frame)
    calls = [
        (shared, policy, name, ends, base_dir, _Enqueue(queue, name))
        for name, policy in specs.items()
    ]
    results = cluster.map(
        policy_replay.replay_policy, calls, lambda: _drain(queue, progress, timeout=0))
    _drain(queue, progress, timeout=0)
    return results


def _reporter(progress: Progress | None, name: str) -> Callable[[], None] | None:
    if progress is None:
        return None
    count = itertools.count(1)
    return lambda: progress(name, next(count))


class _Enqueue:
    """A picklable step callback for worker processes: reports every 10th step to a queue."""

    def __init__(self, queue: Any, name: str) -> None:
        self.queue = queue
        self.name = name
        self._done = 0

    def __call__(self) -> None:
        self._done += 1
        if self._done % 10 == 0:
            self.queue.put((self.name, self._done))


def _drain(queue: Any, progress: Progress | None, timeout: float) -> None:
    """Pass on every queued step report; wait up to `timeout` for the first."""
    while True:
        try:
            name, done = queue.get(timeout=timeout) if timeout else queue.get_nowait()
        except queues.Empty:
            return
        timeout = 0
        if progress is not None:
            progress(name, done)
