"""The server's Prometheus metrics, on a registry of their own (one per app, so several apps
can live in one process, as in the tests). Names follow the Prometheus conventions (base
units, ``_total`` counters, a ``driftloop_build_info`` gauge), labels have bounded values.

Under ``driftloop serve --workers N`` every worker process writes its metrics to files in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, switched on by that
variable before the workers start), and `render` sums them over the workers, whichever worker
answers ``GET /metrics``: counters and histograms add up, the queue gauge adds up, and
`model_version` has one series per live worker (a ``pid`` label), so a hot swap can be seen
reaching each of them.

`server.app` observes requests through these objects and renders `GET /metrics` with
`render`; `server.live_models`, `server.predictions` and `server.state` report swaps, load errors
and the prediction log's progress.

    >>> metrics = ServerMetrics()
    >>> metrics.requests.labels(endpoint="/v1/predict", method="POST", status="200").inc()
    >>> b'driftloop_requests_total{endpoint="/v1/predict",method="POST",status="200"} 1.0' in (
    ...     metrics.render()[0])
    True
"""

from __future__ import annotations

import os
from typing import Any

import prometheus_client as prom
from prometheus_client import multiprocess

from driftloop.core import build

MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)
"""Seconds; fine at the low end, where a single-record prediction lives (a few ms)."""


class ServerMetrics:
    """Every metric `GET /metrics` exposes."""

    def __init__(self) -> None:
        self.registry = prom.CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = prom.Counter(
            "driftloop_requests", "HTTP requests by endpoint, method and status.",
            ["endpoint", "method", "status"], registry=r)
        self.build_info = prom.Gauge(
            "driftloop_build_info", "Always 1; the labels say which driftloop and Python run.",
            ["version", "python"], registry=r, multiprocess_mode="max")
        self.build_info.labels(**build.labels()).set(1)
        self.latency = prom.Histogram(
            "driftloop_request_duration_seconds", "Request latency, by endpoint.",
            ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.errors = prom.Counter(
            "driftloop_errors", "Failed requests (4xx and 5xx) by endpoint and kind of error.",
            ["endpoint", "kind"], registry=r)
        self.model_version = prom.Gauge(
            "driftloop_model_version", "The model version each alias serves (0: none loaded).",
            ["pipeline", "alias"], registry=r, multiprocess_mode="liveall")
        self.swaps = prom.Counter(
            "driftloop_model_swaps", "Hot swaps of the model behind an alias.",
            ["pipeline", "alias"], registry=r)
        self.load_errors = prom.Counter(
            "driftloop_model_load_errors", "Failed attempts to load a model version.",
            ["pipeline", "alias"], registry=r)
        self.predictions = prom.Counter(  # no version label: it would grow with every retrain
            "driftloop_predictions", "Records predicted, by alias (driftloop_model_version "
            "says which version an alias serves).", ["pipeline", "alias"], registry=r)
        self.feedback = prom.Counter(
            "driftloop_feedback", "Feedback labels stored (duplicates not counted).",
            ["pipeline"], registry=r)
        self.log_queued = prom.Gauge(
            "driftloop_prediction_log_queued", "Predictions waiting to be written.",
            registry=r, multiprocess_mode="livesum")
        self.log_written = prom.Counter(
            "driftloop_prediction_log_written", "Predictions written to the store.", registry=r)
        self.log_write_errors = prom.Counter(
            "driftloop_prediction_log_write_errors",
            "Failed writes of a prediction batch (retried).", registry=r)
        self.log_unlogged = prom.Gauge(
            "driftloop_predictions_unlogged",
            "Predictions answered but not logged: the store refused writes while the log's "
            "memory was full (since the server started).", registry=r)
        self.store_writable = prom.Gauge(
            "driftloop_store_writable",
            "1 while the prediction log's writes succeed, 0 while the store refuses them.",
            registry=r)
        self.live_metric = prom.Gauge(
            "driftloop_live_metric",
            "The champion's newest live score on labelled data, from the controller's "
            "evaluations.", ["pipeline", "metric"], registry=r, multiprocess_mode="livemax")
        self.explained = prom.Counter(  # by alias: a version label would grow with retrains
            "driftloop_explained_predictions", "Records predicted with their SHAP contributions "
            "(?explain=true), by alias.", ["pipeline", "alias"], registry=r)
        self.explain_latency = prom.Histogram(
            "driftloop_explain_duration_seconds",
            "Time spent on SHAP contributions per explained request.",
            ["pipeline"], buckets=LATENCY_BUCKETS, registry=r)
        self.fairness_group = prom.Gauge(
            "driftloop_fairness_group_metric",
            "The champion's per-group metric on its newest labelled batch (groups: declared "
            "or the most frequent, the rest 'other').",
            ["pipeline", "feature", "group", "metric"], registry=r)
        self.fairness_disparity = prom.Gauge(
            "driftloop_fairness_disparity",
            "The champion's disparity between groups on its newest labelled batch.",
            ["pipeline", "feature", "disparity"], registry=r)
        self.shadow_dropped = prom.Counter(
            "driftloop_shadow_dropped", "Records not shadowed because the shadow fell behind.",
            ["pipeline"], registry=r)
        self._predicted: dict[tuple[str, str], Any] = {}

    def predicted(self, pipeline: str, alias: str) -> Any:
        """The `predictions` counter of `alias` (its child kept: finding it by label values
        cost as much as a prediction's other metrics together)."""
        child = self._predicted.get((pipeline, alias))
        if child is None:
            child = self._predicted[pipeline, alias] = self.predictions.labels(
                pipeline=pipeline, alias=alias)
        return child

    def observe_log(self, log: Any) -> None:
        """Copy the prediction log's state (a `server.predictions.PredictionLog`) to gauges."""
        self.log_queued.set(log.queued)
        self.log_unlogged.set(log.unlogged)
        self.store_writable.set(0 if log.last_error is not None else 1)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type (summed over the workers, if several)."""
        if os.environ.get(MULTIPROCESS):
            merged = prom.CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return prom.generate_latest(merged), prom.CONTENT_TYPE_LATEST
        return prom.generate_latest(self.registry), prom.CONTENT_TYPE_LATEST

    def close(self) -> None:
        """This worker stops: its live gauges leave the sums (multiprocess mode only)."""
        if os.environ.get(MULTIPROCESS):
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
