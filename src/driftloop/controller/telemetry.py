"""The controller's Prometheus metrics: what `driftloop run --metrics-port` exposes.

Names follow the Prometheus conventions (base units, ``_seconds``, ``_total`` on counters,
``_timestamp_seconds`` on a time, an ``_info`` gauge of 1 for the build), and every label has
a bounded set of values: the pipeline, a decision's kind, a run's status, a tick's result.
No label carries a model version, which grows with every retrain (the server's
``driftloop_model_version`` gauge says which version an alias serves).

    >>> import datetime
    >>> from driftloop.controller import tick
    >>> metrics = ControllerMetrics("p")
    >>> metrics.observe(tick.TickResult(acted=False), 0.25,
    ...                 datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC))
    >>> text = metrics.render().decode()
    >>> 'driftloop_ticks_total{pipeline="p",result="idle"} 1.0' in text
    True
    >>> 'driftloop_last_successful_tick_timestamp_seconds{pipeline="p"} 1.7040672e+09' in text
    True
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import prometheus_client as prom

from driftloop.core import build

if TYPE_CHECKING:
    from driftloop.controller import tick

TICK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
"""Seconds: a tick with nothing new takes milliseconds, one that trains minutes."""


class ControllerMetrics:
    """The metrics of one controller process, on a registry of their own."""

    def __init__(self, pipeline: str) -> None:
        self.pipeline = pipeline
        self.registry = prom.CollectorRegistry(auto_describe=True)
        r = self.registry
        self.build_info = prom.Gauge(
            "driftloop_build_info", "Always 1; the labels say which driftloop and Python run.",
            ["version", "python"], registry=r)
        self.build_info.labels(**build.labels()).set(1)
        self.ticks = prom.Counter(
            "driftloop_ticks", "Ticks by result: acted, idle (nothing new), skipped (another "
            "controller held the lease) or failed.", ["pipeline", "result"], registry=r)
        self.tick_duration = prom.Histogram(
            "driftloop_tick_duration_seconds", "Wall time of a tick, lease to release.",
            ["pipeline"], buckets=TICK_BUCKETS, registry=r)
        self.last_success = prom.Gauge(
            "driftloop_last_successful_tick_timestamp_seconds",
            "When the last tick that did not fail ended (Unix time).", ["pipeline"], registry=r)
        self.trainings = prom.Counter(
            "driftloop_trainings", "Training runs by final status.", ["pipeline", "status"],
            registry=r)
        self.training_duration = prom.Histogram(
            "driftloop_training_duration_seconds", "Wall time of a training run.", ["pipeline"],
            buckets=TICK_BUCKETS, registry=r)
        self.training_cpu = prom.Counter(
            "driftloop_training_cpu_seconds", "CPU time spent training.", ["pipeline"],
            registry=r)
        self.decisions = prom.Counter(
            "driftloop_decisions", "Decisions recorded, by kind and whether they fired.",
            ["pipeline", "kind", "fired"], registry=r)
        self.promotions = prom.Counter(
            "driftloop_promotions", "Challengers promoted to champion.", ["pipeline"],
            registry=r)
        self.lease_held = prom.Gauge(
            "driftloop_lease_held", "1 while this controller ticks under the pipeline's lease.",
            ["pipeline"], registry=r)
        self.lease_held.labels(pipeline=pipeline).set(0)

    def observe(self, result: tick.TickResult, seconds: float, ended: datetime) -> None:
        """Count one tick that returned `result` after `seconds`, ending at `ended`."""
        p = self.pipeline
        kind = "skipped" if result.skipped else "acted" if result.acted else "idle"
        self.ticks.labels(pipeline=p, result=kind).inc()
        self.tick_duration.labels(pipeline=p).observe(seconds)
        self.last_success.labels(pipeline=p).set(ended.timestamp())
        for decision in (result.decision, result.rollout):
            if decision is not None:
                self.decisions.labels(pipeline=p, kind=decision.kind,
                                      fired=str(decision.fired).lower()).inc()
        if result.outcome is not None:
            self._training(result.outcome)

    def failed(self, seconds: float) -> None:
        """Count a tick that raised after `seconds`."""
        self.ticks.labels(pipeline=self.pipeline, result="failed").inc()
        self.tick_duration.labels(pipeline=self.pipeline).observe(seconds)

    def holding(self, held: bool) -> None:
        self.lease_held.labels(pipeline=self.pipeline).set(1 if held else 0)

    def _training(self, outcome: Any) -> None:
        p, run = self.pipeline, outcome.run
        self.trainings.labels(pipeline=p, status=run.status).inc()
        if run.finished_at is not None:
            wall = (run.finished_at - run.started_at).total_seconds()
            self.training_duration.labels(pipeline=p).observe(max(wall, 0.0))
        if run.compute_seconds:
            self.training_cpu.labels(pipeline=p).inc(run.compute_seconds)
        if outcome.promoted:
            self.promotions.labels(pipeline=p).inc()

    def serve(self, port: int, host: str = "127.0.0.1") -> Any:
        """Expose the metrics on http://host:port/metrics from a daemon thread; returns the
        HTTP server (``shutdown()`` then ``server_close()`` stop it)."""
        server, _thread = prom.start_http_server(port, addr=host, registry=self.registry)
        return server

    def render(self) -> bytes:
        """The exposition text."""
        return prom.generate_latest(self.registry)
