"""The Ray executor (`trainer.executor: ray`, the `ray` extra): trainings, search trials and
backtest policies run as Ray tasks.

`build_executor("ray")` imports this module; the controller trains through `RayExecutor.train`
and `controller.backtest` replays policies through `RayExecutor.map`. `trainer.address` names
an existing cluster (``127.0.0.1:6379``, ``ray://127.0.0.1:10001``); without it the first use
starts a local Ray in this process, with every process bound to 127.0.0.1: Ray would bind the
machine's network address and 0.0.0.0 unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is set
before `ray` is imported (a single-machine Ray then uses the loopback address), so `connect`
sets it and checks afterwards that the node's address is 127.0.0.1. Its workers run at
niceness 0 (`WORKER_NICENESS`), like the local executor's training processes.

A trainer module is imported by the workers from the project folder (`base_dir`), so on a
remote cluster that folder must exist at the same path on every node. A training that runs
past `trainer.timeout` is cancelled (its worker killed) and fails with a `TrainingError`.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from driftloop.core import config, errors
from driftloop.train import executor, search, trainer

LOOPBACK = "127.0.0.1"
LOCAL_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Set to 0 before Ray starts: a single-machine Ray that binds the loopback address only."""
WORKER_NICENESS = "RAY_worker_niceness"
"""Ray runs its workers at niceness 15; on a shared machine every other process then starves
them (a backtest took 8x the local executor's time). A local cluster started here runs them at
0, like the local executor's training processes; set the variable to choose otherwise."""


def connect(address: str | None = None, num_cpus: int | None = None) -> Any:
    """The `ray` module, joined to the cluster at `address` or to a local one on 127.0.0.1
    (started with `num_cpus`, default all). Once per process; later calls reuse the cluster."""
    os.environ.setdefault(LOCAL_ONLY, "0")
    import ray

    if ray.is_initialized():
        return ray
    if address is not None:
        ray.init(address=address, logging_level=logging.WARNING)
        return ray
    os.environ.setdefault(WORKER_NICENESS, "0")
    ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING)
    nodes = ray.nodes()  # type: ignore[no-untyped-call]
    exposed = sorted({node["NodeManagerAddress"] for node in nodes} - {LOOPBACK})
    if exposed:
        ray.shutdown()
        raise errors.ConfigError(
            f"the local Ray cluster bound {', '.join(exposed)} instead of {LOOPBACK}; set "
            f"{LOCAL_ONLY}=0 in the environment before anything imports ray, or start a "
            f"cluster with `ray start --head --node-ip-address {LOOPBACK}` and give its "
            "address as trainer.address")
    return ray


def node_addresses() -> list[str]:
    """The address of every live node of the cluster this process is connected to."""
    ray = connect()
    return sorted(node["NodeManagerAddress"] for node in ray.nodes() if node["Alive"])


class RayExecutor(executor.Executor):
    """Trains as a Ray task (one CPU); segment models train as parallel tasks, and a search
    runs as many trials at once as the cluster has CPUs (asking Optuna for that many)."""

    name = "ray"

    def __init__(self, address: str | None = None,
                 timeout: float | timedelta | None = None) -> None:
        self.address = address
        self.timeout = timeout

    def train_one(self, spec: config.TrainerSpec, X: Any, y: Any, base_dir: Path,
                  scorer: search.Scorer | None = None) -> executor.TrainResult:
        if spec.search is None:
            return self.train_each(spec, [(X, y)], base_dir)[0]
        if scorer is None:
            raise errors.ConfigError("trainer.search needs a metric to score trials by")
        ray, seconds, deadline = self._start(spec)
        wall = time.perf_counter()
        runner = _TrialRunner(ray, deadline, spec.function, seconds)
        parallel = max(1, int(ray.cluster_resources().get("CPU", 1)))
        best, trials = search.search(spec, X, y, Path(base_dir), scorer, runner, parallel)
        return executor.TrainResult(best.estimator, sum(t.cpu_seconds for t in trials),
                                    time.perf_counter() - wall, trials)

    def train_each(self, spec: config.TrainerSpec, parts: list[tuple[Any, Any]], base_dir: Path,
                   scorer: search.Scorer | None = None) -> list[executor.TrainResult]:
        """Every part as its own Ray task, all at once (per-segment models train in parallel)."""
        if spec.search is not None:
            return super().train_each(spec, parts, base_dir, scorer)
        ray, seconds, deadline = self._start(spec)
        wall = time.perf_counter()
        remote = _remote(ray, _fit)
        refs = [remote.remote(spec, X, y, Path(base_dir)) for X, y in parts]
        results = []
        for status, payload, cpu in _get(ray, refs, deadline, spec.function, seconds):
            if status == "error":
                kind, text = payload
                raise (errors.ConfigError if kind == "ConfigError" else errors.TrainingError)(text)
            results.append(executor.TrainResult(payload, cpu, time.perf_counter() - wall))
        return results

    def _start(self, spec: config.TrainerSpec) -> tuple[Any, float, float]:
        """The connected `ray` module, the timeout in seconds and its monotonic deadline."""
        ray = connect(self.address if self.address is not None else spec.address)
        timeout = self.timeout if self.timeout is not None else spec.timeout
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
        return ray, seconds, time.monotonic() + seconds

    def map(self, function: Callable[..., Any], calls: Sequence[Sequence[Any]],
            while_waiting: Callable[[], None] | None = None) -> list[Any]:
        """`function(*args)` for every `args` of `calls` as Ray tasks (one CPU each), results
        in order; `while_waiting` is called about five times a second until all are done."""
        ray = connect(self.address)
        remote = _remote(ray, function)
        refs = [remote.remote(*args) for args in calls]
        pending = list(refs)
        while pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=0.2)
            if while_waiting is not None:
                while_waiting()
        return list(ray.get(refs))

    def put(self, value: Any) -> Any:
        """`value` in the cluster's object store, to pass to many tasks without copying it."""
        return connect(self.address).put(value)

    def queue(self) -> Any:
        """A queue that tasks put into and this process reads (`ray.util.queue.Queue`)."""
        connect(self.address)
        from ray.util.queue import Queue

        return Queue()


class _TrialRunner:
    """Runs a batch of search trials as Ray tasks; the rows are put in the object store once."""

    def __init__(self, ray: Any, deadline: float, function: str, seconds: float) -> None:
        self.ray = ray
        self.deadline = deadline
        self.function = function
        self.seconds = seconds
        self._shared: Any = None

    def __call__(self, evaluate: search.Evaluate, shared: search.Split,
                 tasks: Sequence[search.TrialTask]) -> list[search.TrialOutcome]:
        if self._shared is None:
            self._shared = self.ray.put(shared)
        remote = _remote(self.ray, evaluate)
        refs = [remote.remote(self._shared, task) for task in tasks]
        return _get(self.ray, refs, self.deadline, self.function, self.seconds)


@functools.cache
def _remote_cached(ray: Any, function: Callable[..., Any]) -> Any:
    return ray.remote(num_cpus=1, max_retries=0)(function)


def _remote(ray: Any, function: Callable[..., Any]) -> Any:
    """`function` as a Ray remote function (one CPU, no retries: a failure is reported)."""
    return _remote_cached(ray, function)


def _get(ray: Any, refs: list[Any], deadline: float, function: str,
         seconds: float) -> list[Any]:
    """The results of `refs`; past the deadline the tasks are cancelled: `TrainingError`."""
    from ray import exceptions

    try:
        return list(ray.get(refs, timeout=max(0.0, deadline - time.monotonic())))
    except exceptions.GetTimeoutError:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise errors.TrainingError(
            f"training exceeded its timeout of {seconds:g}s ({function}); the Ray task was "
            "cancelled. Raise trainer.timeout or train on fewer rows") from None
    except exceptions.RayError as exc:
        raise errors.TrainingError(
            f"the Ray task training {function!r} failed: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc


def _fit(spec: config.TrainerSpec, X: Any, y: Any, base_dir: Path) -> tuple[str, Any, float]:
    """The task's side of one training: ("ok", estimator, cpu) or ("error", (kind, text), cpu)."""
    start = time.process_time()
    try:
        model = trainer.fit_model(spec, X, y, base_dir)
    except errors.DriftloopError as exc:
        return "error", (type(exc).__name__, str(exc)), time.process_time() - start
    return "ok", model, time.process_time() - start
