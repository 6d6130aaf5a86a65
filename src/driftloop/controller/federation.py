"""A federated round of the loop: each region's controller ticks with an executor that takes
part in one federated training, and a coordinator averages their parameters.

`run_round(spec_path)` (`driftloop regions federate`) starts one process per region. Each
opens the spec for its own region only (`project.for_region`: that region's store, artifacts,
source) and ticks under that region's lease: it ingests, evaluates and decides as always; when it
trains (its policy fired now, a decision has waited since an earlier tick, or `driftloop
retrain` asked), its `FederatedExecutor` joins the training with its training rows' count,
sums and parameters; otherwise it declines. The coordinator, here, opens no region's store,
artifacts or source: it receives the messages of `train.federated_rounds` and nothing else.
Every region then gates the global model against its own champion on its own holdout, stores
it with its lineage (rounds, regions, their row counts) and rolls it out by its own rules.

`tick_regions(workers)` is the same round with each region's controller on a thread of its
own in this process (the backtest's regions, `controller.federated_backtest`).
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from driftloop.controller import lease as leases
from driftloop.controller import project as projects
from driftloop.controller import tick
from driftloop.core import config, errors, federated_spec
from driftloop.train import federated, federated_executor
from driftloop.train import federated_rounds as rounds

Aggregator = Callable[[Sequence[federated.Update]], dict[str, federated.Array]]


@dataclass(frozen=True)
class RegionOutcome:
    """What one region's tick did in the round (metadata only)."""

    region: str
    version: int | None = None
    promoted: bool = False
    reason: str = ""


@dataclass(frozen=True)
class Round:
    """A federated round: the coordinator's summary and every region's outcome."""

    summary: rounds.Summary
    regions: dict[str, RegionOutcome]


def outcome_of(region: str, result: tick.TickResult | None, error: str | None) -> RegionOutcome:
    """A region's tick result in the round's terms."""
    if error is not None:
        return RegionOutcome(region, reason=error)
    if result is None or result.skipped:
        return RegionOutcome(region, reason=decline_reason(result))
    if result.outcome is None:
        return RegionOutcome(region, reason="did not train (no decision fired)")
    version = result.outcome.version
    return RegionOutcome(region, version.version if version else None, result.outcome.promoted,
                         result.outcome.reason)


def decline_reason(result: tick.TickResult | None) -> str:
    """Why a region that ticked did not train."""
    if result is not None and result.skipped:
        return result.skipped
    return "its policy did not fire and no decision waits"


def region_tick(tick_once: Callable[[], tick.TickResult],
                executor: federated_executor.FederatedExecutor,
                ) -> tuple[tick.TickResult | None, str | None]:
    """One tick of a region in a round (`tick_once`); the executor declines if the tick did
    not train. Returns the result, or the error that stopped the tick."""
    result, error = None, None
    try:
        result = tick_once()
    except Exception as exc:  # reported as the region's outcome; the round goes on without it
        error = f"{type(exc).__name__}: {exc}"
    finally:
        executor.finish(error or decline_reason(result))
    return result, error


def _region_process(spec_path: str, region: str, channel: Connection) -> None:
    """A region's process: opens its own region only, ticks once in the round, reports."""
    error, result = None, None
    executor = federated_executor.FederatedExecutor(channel, region)
    try:
        project = projects.open_project(spec_path, region=region)
    except errors.DriftloopError as exc:
        executor.finish(f"{type(exc).__name__}: {exc}")
        channel.send(RegionOutcome(region, reason=str(exc)))
        return
    try:
        controller = tick.Controller(project, holder=leases.holder_name("federated"),
                                     executor=executor)
        result, error = region_tick(controller.tick, executor)
        controller.release()
    finally:
        project.close()
    channel.send(outcome_of(region, result, error))


def run_round(spec_path: str | Path, aggregator: Aggregator = federated.aggregate) -> Round:
    """`driftloop regions federate`: one round over every region of the spec at `spec_path`,
    each in a process of its own; this process only coordinates."""
    spec = config.load_spec(spec_path)
    federation = _federation(spec)
    context = multiprocessing.get_context("spawn")
    channels: dict[str, Connection] = {}
    processes: list[Any] = []
    for region in spec.regions:
        mine, theirs = context.Pipe()
        process = context.Process(target=_region_process, name=f"federated-{region.name}",
                                  args=(str(spec_path), region.name, theirs))
        process.start()
        theirs.close()
        channels[region.name] = mine
        processes.append(process)
    timeout = spec.trainer.timeout.total_seconds()
    try:
        summary = rounds.coordinate(channels, federation.rounds, federation.min_regions,
                                    timeout, aggregator)
        outcomes = {}
        for name, channel in channels.items():
            try:
                report = rounds.receive(channel, timeout, (RegionOutcome,), f"region {name!r}")
            except rounds.ProtocolError as exc:  # its process died
                report = RegionOutcome(name, reason=str(exc))
            outcomes[name] = (report if isinstance(report, RegionOutcome)
                              else RegionOutcome(name, reason=report.reason))
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    return Round(summary, outcomes)


class RegionWorker:
    """A region's side on a thread of its own: `build(executor)` makes what it ticks (a
    controller, a backtest's replay) there, so its store is only ever used by that thread."""

    def __init__(self, region: str,
                 build: Callable[[federated_executor.FederatedExecutor], Any]) -> None:
        self.region = region
        self.channel, theirs = multiprocessing.Pipe()
        self._executor = federated_executor.FederatedExecutor(theirs, region)
        self._jobs: queue.Queue[Any] = queue.Queue()
        self._results: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, args=(build,), daemon=True,
                                        name=f"region-{region}")
        self._thread.start()
        self.held = self.result()
        """What `build` made (use it only through jobs: it belongs to the region's thread)."""

    def _serve(self, build: Callable[[federated_executor.FederatedExecutor], Any]) -> None:
        try:
            held = build(self._executor)
        except Exception as exc:  # handed to the caller
            self._results.put(exc)
            return
        self._results.put(held)
        while (job := self._jobs.get()) is not None:
            try:
                self._results.put(job(held, self._executor))
            except Exception as exc:  # handed to the caller of `result`
                self._results.put(exc)

    def start(self, job: Callable[[Any, federated_executor.FederatedExecutor], Any]) -> None:
        """Run `job(held, executor)` on the region's thread (`result()` waits for it)."""
        self._jobs.put(job)

    def result(self) -> Any:
        """The newest job's result (an exception it raised is raised here)."""
        found = self._results.get()
        if isinstance(found, Exception):
            raise found
        return found

    def close(self) -> None:
        """Stop the thread."""
        self._jobs.put(None)
        self._thread.join()


def tick_regions(
    workers: Mapping[str, RegionWorker], federation: federated_spec.FederatedSpec,
    timeout: float, tick_once: Callable[[Any], tick.TickResult],
    aggregator: Aggregator = federated.aggregate,
) -> tuple[rounds.Summary, dict[str, tick.TickResult | None]]:
    """Tick every region once, concurrently, as one round (`tick_once(held)` on each region's
    thread); the coordinator runs here. A tick's error is raised here."""
    def job(held: Any, executor: federated_executor.FederatedExecutor) -> tick.TickResult | None:
        result, error = region_tick(lambda: tick_once(held), executor)
        if error is not None:
            raise errors.TrainingError(error)
        return result

    for worker in workers.values():
        worker.start(job)
    summary = rounds.coordinate({n: w.channel for n, w in workers.items()}, federation.rounds,
                                federation.min_regions, timeout, aggregator)
    return summary, {name: worker.result() for name, worker in workers.items()}


def _federation(spec: config.PipelineSpec) -> federated_spec.FederatedSpec:
    if spec.trainer.federated is None:
        raise errors.ConfigError(
            "`driftloop regions federate` runs pipelines with `trainer.federated`; this spec has "
            "none")
    return spec.trainer.federated
