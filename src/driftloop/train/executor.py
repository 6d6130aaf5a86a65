"""Executors: where a training runs. Chosen by name (`trainer.executor` in the spec).

The controller calls `build_executor(spec.trainer.executor).train(spec.trainer, X, y, base_dir,
scorer)` and records the `TrainResult`'s compute time (and the trials of a `trainer.search`,
see `train.search`) with the training run.

- ``inline`` trains in this process (fast; used by backtests). A runaway trainer cannot be
  stopped, so it has no timeout.
- ``local`` trains in a child process, so a trainer that hangs or leaks is killed at its
  timeout and a crash cannot take the controller down.
- ``ray`` (`train.ray_executor`, the `ray` extra) trains, and runs search trials, as Ray tasks.

With `trainer.segment_by` the base class splits the rows by that column and trains one model
per value plus a fallback on all rows (`train.segments`), through `train_each`: one after
another here, in parallel on Ray.

Each executor registers itself under its `name` when its class is defined; `build_executor`
imports ``driftloop.train.<name>_executor`` for a name not registered yet.
"""

from __future__ import annotations

import abc
import contextlib
import importlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, ClassVar

from driftloop.core import config, errors, parent_death
from driftloop.train import search, trainer


@dataclass(frozen=True)
class TrainResult:
    """A fitted estimator, what it cost (CPU seconds of the training, wall seconds), the
    trials of the search that chose it (none without `trainer.search`), and numbers the
    version's lineage records besides (a federated training's rounds and regions' rows)."""

    estimator: Any
    cpu_seconds: float
    wall_seconds: float
    trials: tuple[search.TrialOutcome, ...] = ()
    lineage: Mapping[str, float] = field(default_factory=dict)


class Executor(abc.ABC):
    """Runs a trainer. Subclasses set `name` and register themselves."""

    name: ClassVar[str]
    registry: ClassVar[dict[str, type[Executor]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if name is not None:
            Executor.registry[name] = cls

    def train(self, spec: config.TrainerSpec, X: Any, y: Any, base_dir: Path,
              scorer: search.Scorer | None = None) -> TrainResult:
        """Fit the model `spec` describes on `X`, `y` (searching as `spec.search` says, trials
        scored by `scorer`; one model per segment with `spec.segment_by`); `TrainingError` if
        it fails."""
        if spec.segment_by is None:
            return self.train_one(spec, X, y, base_dir, scorer)
        from driftloop.train import segments  # pandas: imported when a training happens

        wall = time.perf_counter()
        parts = segments.split(X, y, spec.segment_by)
        plain = spec.model_copy(update={"segment_by": None})
        fallback, *each = self.train_each(plain, [(X, y), *parts.values()], base_dir, scorer)
        model = segments.SegmentedModel(
            spec.segment_by, dict(zip(parts, (r.estimator for r in each), strict=True)),
            fallback.estimator)
        return TrainResult(model, fallback.cpu_seconds + sum(r.cpu_seconds for r in each),
                           time.perf_counter() - wall)

    @abc.abstractmethod
    def train_one(self, spec: config.TrainerSpec, X: Any, y: Any, base_dir: Path,
                  scorer: search.Scorer | None = None) -> TrainResult:
        """Fit one model (no segments) as `spec` says."""

    def train_each(self, spec: config.TrainerSpec, parts: list[tuple[Any, Any]], base_dir: Path,
                   scorer: search.Scorer | None = None) -> list[TrainResult]:
        """One model for each `(X, y)` of `parts`, in order."""
        return [self.train_one(spec, X, y, base_dir, scorer) for X, y in parts]

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={value!r}" for key, value in vars(self).items()
                           if not key.endswith("_"))
        return f"{type(self).__name__}({fields})"


def build_executor(name: str, **params: Any) -> Executor:
    """The executor registered as `name` (`local`, `inline`, ...).

    >>> build_executor("local", timeout=60)
    LocalExecutor(timeout=60)
    """
    if name not in Executor.registry and name.isidentifier():
        try:
            importlib.import_module(f"driftloop.train.{name}_executor")
        except ModuleNotFoundError as exc:
            if exc.name != f"driftloop.train.{name}_executor":
                raise errors.ConfigError(
                    f"trainer.executor {name!r} needs {exc.name!r}: pip install "
                    f"'driftloop[{name}]'") from exc
    cls = Executor.registry.get(name)
    if cls is None:
        raise errors.ConfigError(
            f"trainer.executor: unknown executor {name!r}; known: "
            f"{', '.join(sorted(Executor.registry))}")
    return cls(**params)


class InlineExecutor(Executor):
    """Trains in the calling process; CPU time from `time.process_time`."""

    name = "inline"

    def train_one(self, spec: config.TrainerSpec, X: Any, y: Any, base_dir: Path,
                  scorer: search.Scorer | None = None) -> TrainResult:
        cpu, wall = time.process_time(), time.perf_counter()
        estimator, trials = search.fit(spec, X, y, base_dir, scorer)
        return TrainResult(estimator, time.process_time() - cpu, time.perf_counter() - wall,
                           trials)


class LocalExecutor(Executor):
    """Trains in a child process and kills it after `timeout` seconds (default: the spec's).

    The child is started with the "forkserver" context (a fresh interpreter image, no copied
    threads or locks; "spawn" where forkserver is missing). It receives the rows and the spec,
    fits, and sends back the fitted estimator and its own CPU seconds through a Pipe. That
    pipe carries pickles, which is acceptable here: both ends are our own processes, started
    for this call; nothing read from the store or the network is unpickled. Model files in
    the store use skops, never pickle. The pickle is read as the child imported the trainer,
    with the project folder first on the path (`trainer.unpickle`), so a model class defined
    in the project's own modules comes back.

    The child dies with its controller. It leads its own process group, which the controller
    kills (SIGKILL) at the timeout or when it stops mid-training (an exception, Ctrl-C), so
    processes the trainer started go too. If the controller dies without a word (SIGKILL, OOM
    killer), a thread in the child sees the end of a pipe only the controller held and kills
    the group; and, should the trainer's native code hold the GIL so that thread cannot run,
    on Linux the kernel SIGKILLs the child when its parent (the fork server, which exits with
    the controller) dies (``PR_SET_PDEATHSIG``).

    As with any multiprocessing code, a script that trains through this executor must keep
    its top-level work under ``if __name__ == "__main__":`` (the child re-imports it).
    """

    name = "local"

    def __init__(self, timeout: float | timedelta | None = None) -> None:
        self.timeout = timeout

    def train_one(self, spec: config.TrainerSpec, X: Any, y: Any, base_dir: Path,
                  scorer: search.Scorer | None = None) -> TrainResult:
        timeout = self.timeout if self.timeout is not None else spec.timeout
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
        context = _context()
        receive, send = context.Pipe(duplex=False)
        watch, held = context.Pipe(duplex=False)  # only this process holds `held`
        wall = time.perf_counter()
        child = context.Process(target=_train_in_child,
                                args=(send, watch, spec, X, y, Path(base_dir), scorer),
                                name=f"driftloop-train-{spec.function}", daemon=True)
        try:
            child.start()
        finally:
            send.close()  # the child holds the only sending end: its exit means end of file
            watch.close()
        try:
            if not receive.poll(seconds):
                raise errors.TrainingError(
                    f"training exceeded its timeout of {seconds:g}s ({spec.function}); the "
                    "training process was killed. Raise trainer.timeout or train on fewer rows")
            try:
                message = trainer.unpickle(receive.recv_bytes(), base_dir)
            except EOFError:
                child.join(5)
                raise errors.TrainingError(
                    f"the training process for {spec.function!r} died without a result (exit "
                    f"code {child.exitcode}); it may have run out of memory, or a script that "
                    "calls driftloop lacks the `if __name__ == '__main__':` guard that "
                    "multiprocessing needs") from None
        finally:
            receive.close()
            if child.is_alive():
                _kill_group(child)
            child.join()
            child.close()
            held.close()
        status, payload, cpu = message
        if status == "ok":
            return TrainResult(payload[0], cpu, time.perf_counter() - wall, payload[1])
        kind, text = payload
        error = errors.ConfigError if kind == "ConfigError" else errors.TrainingError
        raise error(text)


def _context() -> Any:
    """The forkserver context, its server preloaded with what every training imports."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(_PRELOAD))  # no effect once the server runs
    return context


# Imported once by the fork server, so a training child starts without importing them again.
_PRELOAD = ("numpy", "pandas", "sklearn.base", "sklearn.pipeline", "driftloop.train.search")


def _kill_group(child: Any) -> None:
    """SIGKILL the child's process group (the child and what its trainer started); the child
    alone if it has no group of its own yet (killed before `_die_with` ran)."""
    killpg = getattr(os, "killpg", None)
    try:
        if killpg is not None and os.getpgid(child.pid) == child.pid:
            killpg(child.pid, signal.SIGKILL)
            return
    except ProcessLookupError:
        return  # gone already
    child.kill()


def _die_with(controller: Connection) -> None:
    """In the child: lead a process group of its own, have the kernel SIGKILL it when its
    parent (the fork server, which exits with the controller) dies (`core.parent_death`), and
    kill the group when `controller` (a pipe only the controller holds the other end of)
    reaches end of file."""
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)
    parent_death.die_with_parent()
    threading.Thread(target=_watch, args=(controller,), name="driftloop-watch",
                     daemon=True).start()


def _watch(controller: Connection) -> None:
    """Wait for the controller's end of the pipe to close (it died, or is done with this
    training and already has its result), then SIGKILL this process group."""
    with contextlib.suppress(EOFError, OSError):
        controller.recv_bytes()
    if hasattr(os, "killpg"):
        os.killpg(0, signal.SIGKILL)
    os._exit(1)


def _train_in_child(send: Connection, controller: Connection, spec: config.TrainerSpec, X: Any,
                    y: Any, base_dir: Path, scorer: search.Scorer | None) -> None:
    """The child's side: tie its life to the controller (`_die_with`), fit (searching if the
    spec says so), then send ("ok", (estimator, trials), cpu) or ("error", (kind, text), cpu)."""
    _die_with(controller)
    start = time.process_time()
    try:
        fitted = search.fit(spec, X, y, base_dir, scorer)
    except errors.DriftloopError as exc:
        outcome: tuple[str, Any] = ("error", (type(exc).__name__, str(exc)))
    except BaseException as exc:  # the trainer's own failure, reported to the parent
        outcome = ("error", ("TrainingError",
                             f"trainer {spec.function!r} failed: {type(exc).__name__}: {exc}"))
    else:
        outcome = ("ok", fitted)
    cpu = time.process_time() - start
    try:
        send.send((*outcome, cpu))
    except Exception as exc:  # the fitted model cannot be pickled (a lambda inside, ...)
        send.send(("error", ("TrainingError",
                             f"the model from {spec.function!r} cannot be sent back from the "
                             f"training process: {type(exc).__name__}: {exc}"), cpu))
    finally:
        send.close()
