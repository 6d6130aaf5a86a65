"""The server's Prometheus metrics, on a registry of their own (one per app, so several apps
can live in one process, as in the tests). Names follow the Prometheus conventions (base
units, ``_total`` counters, a ``driftloop_build_info`` gauge), labels have bounded values.

`server.app` observes requests through these objects and renders `GET /metrics` with
`render`; `server.models`, `server.predictions` and `server.state` report swaps, load errors
and the prediction log's progress.

    >>> metrics = ServerMetrics()
    >>> metrics.requests.labels(endpoint="/v1/predict", method="POST", status="200").inc()
    >>> b'driftloop_requests_total{endpoint="/v1/predict",method="POST",status="200"} 1.0' in (
    ...     metrics.render()[0])
    True
"""

from __future__ import annotations

import prometheus_client as prom

from driftloop.core import build

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
            ["version", "python"], registry=r)
        self.build_info.labels(**build.labels()).set(1)
        self.latency = prom.Histogram(
            "driftloop_request_duration_seconds", "Request latency, by endpoint.",
            ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.errors = prom.Counter(
            "driftloop_errors", "Failed requests (4xx and 5xx) by endpoint and kind of error.",
            ["endpoint", "kind"], registry=r)
        self.model_version = prom.Gauge(
            "driftloop_model_version", "The model version each alias serves (0: none loaded).",
            ["pipeline", "alias"], registry=r)
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
            registry=r)
        self.log_written = prom.Counter(
            "driftloop_prediction_log_written", "Predictions written to the store.", registry=r)
        self.log_write_errors = prom.Counter(
            "driftloop_prediction_log_write_errors",
            "Failed writes of a prediction batch (retried).", registry=r)
        self.live_metric = prom.Gauge(
            "driftloop_live_metric",
            "The champion's newest live score on labelled data, from the controller's "
            "evaluations.", ["pipeline", "metric"], registry=r)
        self.shadow_dropped = prom.Counter(
            "driftloop_shadow_dropped", "Records not shadowed because the shadow fell behind.",
            ["pipeline"], registry=r)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return prom.generate_latest(self.registry), prom.CONTENT_TYPE_LATEST
