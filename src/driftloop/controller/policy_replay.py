"""One policy replayed through the production tick on a fake clock: its own in-memory store,
artifact root, replay source and controller (`Replay`), several in lockstep on one CPU thread
(`replay_group`); the result is a `PolicyResult` with the timeline of `Step`s.

Every batch is scored by the live champion before anything learns from it (test-then-train),
and its accuracy estimated from calibrated confidences before its labels are used (the error of
that estimate against the realised accuracy is `PolicyResult.estimate_mae`). `controller.backtest`
plans the replays and runs them side by side.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import threadpoolctl

from driftloop.controller import online_tick, tick
from driftloop.controller import project as projects
from driftloop.core import clock as clocks
from driftloop.core import config, errors
from driftloop.data.sources import replay
from driftloop.store import artifacts, entities, metadata
from driftloop.train import executor as executors


@dataclass(frozen=True)
class Step:
    """One replayed batch: its end, the live accuracy on it, what the policy did."""

    end: str
    rows: int
    metric: float | None
    retrained: bool
    promoted: bool
    drift_share: float | None
    drift: dict[str, float]
    estimate: float | None = None


@dataclass(frozen=True)
class PolicyResult:
    """One policy's replay: the headline numbers and the timeline."""

    policy: str
    metric: str
    score: float
    trainings: int
    promotions: int
    cpu_seconds: float
    wall_seconds: float
    steps: tuple[Step, ...]
    estimate_mae: float | None = None
    """Mean absolute error, over the batches that had both, of the accuracy estimated from
    calibrated confidences before the batch's labels were used against the accuracy realised
    on it; None when nothing was estimated (no calibrator, or a metric other than accuracy)."""
    estimated_batches: int = 0


def replay_policy(
    frame: pd.DataFrame,
    spec: config.PipelineSpec,
    name: str,
    ends: Sequence[pd.Timestamp],
    base_dir: Path,
    on_step: Callable[[], None] | None = None,
) -> PolicyResult:
    """Run one policy over the whole frame through `Controller.tick`, on one CPU thread
    (so that policies run side by side and CPU seconds compare)."""
    steps = {name: on_step} if on_step is not None else {}
    return replay_group(frame, {name: spec}, ends, base_dir, steps)[0]


def replay_group(
    frame: pd.DataFrame,
    specs: dict[str, config.PipelineSpec],
    ends: Sequence[pd.Timestamp],
    base_dir: Path,
    on_step: dict[str, Callable[[], None]] | None = None,
) -> list[PolicyResult]:
    """Replay several policies in lockstep, one batch of each in turn, on one CPU thread.
    Lockstep makes their CPU seconds comparable on a machine whose speed drifts: every policy
    trains throughout the replay, not in a window of its own."""
    with contextlib.ExitStack() as limits:
        limits.enter_context(threadpoolctl.threadpool_limits(1))
        replays = [Replay(frame, spec, name, ends, base_dir) for name, spec in specs.items()]
        for index, end in enumerate(ends):
            for replay in replays:
                replay.step(end)
                if on_step and replay.name in on_step:
                    on_step[replay.name]()
            if index == 0:
                # The first step trains, loading the trainer's thread pools (OpenMP, BLAS)
                # after the first limit: two replays with two threads each on two cores spin
                # in OpenMP's waits and run several times slower.
                limits.enter_context(threadpoolctl.threadpool_limits(1))
        return [replay.finish() for replay in replays]


class Replay:
    """One policy's replay: its own in-memory store, artifact root, clock and controller
    (training with `executor`, default in this process)."""

    def __init__(
        self,
        frame: pd.DataFrame,
        spec: config.PipelineSpec,
        name: str,
        ends: Sequence[pd.Timestamp],
        base_dir: Path,
        executor: executors.Executor | None = None,
    ) -> None:
        timestamp = timestamp_of(spec)
        self.name = name
        self.spec = spec
        self.clock = clocks.FakeClock(ends[0].to_pydatetime())
        self.store = metadata.MetadataStore.open("sqlite://", clock=self.clock)
        project = projects.Project(
            spec=spec,
            base_dir=base_dir,
            store=self.store,
            artifacts=artifacts.ReplayArtifactStore(),
            source=replay.ReplaySource(frame, timestamp, ends, self.clock),
            clock=self.clock,
        )
        self.store.pipelines.ensure(spec.name, spec.model_dump(mode="json"))
        self.controller = tick.build_controller(  # no retention: this store is thrown away
            project, holder=f"backtest:{name}", executor=executor or executors.InlineExecutor(),
            retain=False)
        self.steps: list[Step] = []
        self.evaluations: list[entities.Evaluation] = []  # every tick's (retention moves
        # older ones out of the store: `controller.records`)
        self.seconds = 0.0

    def step(self, end: pd.Timestamp) -> tick.TickResult:
        """Tick once with the clock at `end`; what the tick did."""
        started = time.perf_counter()
        self.clock.set(end.to_pydatetime())
        result = self.controller.tick()
        self.steps.append(_step(end, result))
        self.evaluations += result.evaluations
        self.seconds += time.perf_counter() - started
        return result

    def finish(self) -> PolicyResult:
        store, spec = self.store, self.spec
        if isinstance(self.controller, online_tick.OnlineController):
            self.controller.finish()  # the last snapshot: its learning CPU counts too
        runs = store.runs.list(spec.name, status="succeeded")
        evaluations = self.evaluations
        scored = [(e.value, e.rows) for e in evaluations if e.value is not None]
        rows = sum(n for _, n in scored)
        misses = [
            abs(e.estimated_value - e.value)
            for e in evaluations
            if e.value is not None and e.estimated_value is not None and e.metric == "accuracy"
        ]
        score = sum(value * n for value, n in scored) / rows if rows else float("nan")
        promotions = len(store.aliases.history(spec.name, "champion"))
        store.close()
        return PolicyResult(
            policy=self.name,
            metric=spec.gate.metric,
            score=score,
            trainings=len(runs),
            promotions=promotions,
            cpu_seconds=sum(run.compute_seconds or 0.0 for run in runs),
            wall_seconds=self.seconds,
            steps=tuple(self.steps),
            estimate_mae=sum(misses) / len(misses) if misses else None,
            estimated_batches=len(misses),
        )


def timestamp_of(spec: config.PipelineSpec) -> str:
    """The column that orders rows in time; a `ConfigError` if the spec names none."""
    if spec.timestamp is None:
        raise errors.ConfigError(
            "a backtest needs `timestamp`: the column that orders rows in time"
        )
    return spec.timestamp


def _step(end: pd.Timestamp, result: tick.TickResult) -> Step:
    evaluation = result.evaluations[-1] if result.evaluations else None
    drift = (result.decision.evidence.get("drift") if result.decision else None) or {}
    columns = {
        c["name"]: float(c["effect"])
        for c in drift.get("columns", [])
        if c.get("effect") is not None
    }
    return Step(
        end=end.isoformat(),
        rows=evaluation.rows if evaluation else 0,
        metric=evaluation.value if evaluation else None,
        retrained=result.outcome is not None and result.outcome.version is not None,
        promoted=bool(result.outcome and result.outcome.promoted),
        drift_share=drift.get("drifted_share"),
        drift=columns,
        estimate=evaluation.estimated_value if evaluation else None,
    )
