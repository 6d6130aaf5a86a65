"""Backtest of a federated pipeline against its alternatives, through the loop's own tick.

Each region's history is replayed through its own controller (`policy_replay.Replay`: its own
in-memory store, artifacts, clock), the regions in lockstep: every step is one federated
round (`federation.tick_regions`), so the global model is gated and promoted in each region
like any version, and every batch is scored by the region's live champion before anything
learns from it (test-then-train). `compare` replays the same regions three ways:

* ``federated``: the spec as written (only parameters cross regions);
* ``per-region``: the same trainer without `federated`, each region alone on its own rows;
* ``pooled``: one pipeline on every region's rows (what data residency forbids; the bound).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd
import threadpoolctl

from driftloop.controller import backtest, federation, policy_replay, tick
from driftloop.core import config, errors
from driftloop.train import federated_executor

MODES = ("federated", "per-region", "pooled")


def replay_federated(
    frames: Mapping[str, pd.DataFrame], spec: config.PipelineSpec,
    ends: Sequence[pd.Timestamp], base_dir: Path,
) -> dict[str, policy_replay.PolicyResult]:
    """Every region's replay, the regions training together in one round per step."""
    rules = spec.trainer.federated
    if rules is None:
        raise errors.ConfigError("a federated backtest needs `trainer.federated` in the spec")

    def build(name: str) -> federation.RegionWorker:
        def make(executor: federated_executor.FederatedExecutor) -> policy_replay.Replay:
            return policy_replay.Replay(frames[name], spec, name, ends, base_dir, executor=executor)
        return federation.RegionWorker(name, make)

    workers = {name: build(name) for name in frames}
    timeout = spec.trainer.timeout.total_seconds()
    try:
        with threadpoolctl.threadpool_limits(1):
            for end in ends:
                federation.tick_regions(workers, rules, timeout, _stepper(end))
        for worker in workers.values():
            worker.start(lambda replay, _executor: replay.finish())
        return {name: worker.result() for name, worker in workers.items()}
    finally:
        for worker in workers.values():
            worker.close()


def _stepper(end: pd.Timestamp) -> Callable[[policy_replay.Replay], tick.TickResult]:
    """A region's replay's step to `end`."""
    return lambda replay: replay.step(end)


def compare(
    frames: Mapping[str, pd.DataFrame], spec: config.PipelineSpec,
    ends: Sequence[pd.Timestamp], base_dir: Path,
) -> dict[str, dict[str, policy_replay.PolicyResult]]:
    """mode → region (or ``all`` for pooled) → its replay."""
    alone = backtest.policy_spec(spec, {"trainer": {"federated": None}})
    pooled = backtest.policy_spec(alone, {"regions": []})
    every = pd.concat(list(frames.values())).sort_values(policy_replay.timestamp_of(spec),
                                                          kind="stable")
    return {
        "federated": replay_federated(frames, spec, ends, base_dir),
        "per-region": {name: policy_replay.replay_policy(frame, alone, name, ends, base_dir)
                       for name, frame in frames.items()},
        "pooled": {"all": policy_replay.replay_policy(every, pooled, "pooled", ends, base_dir)},
    }


def overall(results: Mapping[str, policy_replay.PolicyResult]) -> float:
    """The metric over every scored row of `results` (each region weighted by its rows)."""
    scored = [(s.metric, s.rows) for r in results.values() for s in r.steps
              if s.metric is not None]
    rows = sum(n for _, n in scored)
    return sum(m * n for m, n in scored) / rows if rows else float("nan")
