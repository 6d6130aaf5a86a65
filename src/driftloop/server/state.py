"""Everything a server process holds between requests, and the poller that keeps it current.

`server.app.create_app` builds one `ServerState` and starts / stops it with the app's lifespan.
The poller thread (every `Settings.poll_interval`) follows the aliases (`ModelHolder.refresh`,
the hot swap; with ``serving.runtime: onnx`` also the ONNX exports made since a version was
loaded, `server.onnx_runtime`), re-reads the active tokens and the pipeline's schema, updates
the live metric gauge; a second thread writes the per-alias request tallies (`server.tallies`),
so a write waiting for the store's lock never delays a swap; nothing of that runs on a
request. The rollout strategy of the spec decides which aliases are watched: the
champion, plus the strategy's test alias (``shadow``, ``canary`` or ``challenger``).

Serving a bundle (`server.bundled`), the state holds the bundle's one model as the champion,
takes the input schema from the bundle and never follows an alias: the model cannot change.

Settings come from the spec's `serving` section, overridden by keyword arguments.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from typing import Any

from driftloop.controller import project as projects
from driftloop.data import calendar
from driftloop.server import (
    auth,
    explained,
    live_models,
    online_serving,
    onnx_runtime,
    predictions,
    prometheus_metrics,
    routing,
    scoring,
    shadow,
    tallies,
)
from driftloop.store import bundles, serving, serving_stats
from driftloop.validation import schema as schemas

log = logging.getLogger("driftloop.server")


@dataclass(frozen=True)
class Settings:
    """How a server behaves; the defaults are safe (no anonymous access)."""

    anonymous_predict: bool = False
    poll_interval: float = 1.0
    flush_interval: float = 0.05
    batch_rows: int = 500
    max_queued: int = 200_000
    max_records: int = 10_000
    max_body_bytes: int = 16 * 1024 * 1024
    aliases: tuple[str, ...] = ("champion",)
    runtime: str = "sklearn"


def settings_for(spec: Any, **overrides: Any) -> Settings:
    """`Settings` from the spec's `serving` section and `overrides`."""
    found: dict[str, Any] = {}
    for item in fields(Settings):
        value = getattr(spec.serving, item.name, None)
        if value is not None:
            found[item.name] = value.total_seconds() if isinstance(value, timedelta) else value
    test_alias = spec.rollout.test_alias
    if test_alias is not None:
        found["aliases"] = ("champion", test_alias)
    found.update({key: value for key, value in overrides.items() if value is not None})
    return replace(Settings(), **found)


class ServerState:
    """The project, its stores, the live models, the prediction log, tokens and metrics;
    with `bundle`, that bundle's model and schema instead of the store's aliases and schema."""

    def __init__(
        self, project: projects.Project, settings: Settings,
        bundle: bundles.Bundle | None = None,
    ) -> None:
        self.project = project
        self.settings = settings
        self.bundle = bundle
        self.serving = serving.ServingStore(project.store)
        self.metrics = prometheus_metrics.ServerMetrics()
        self.explainers = explained.Explainers(project)
        name = project.name
        self.onnx = (onnx_runtime.OnnxPreparer(project.store, project.artifacts, name)
                     if settings.runtime == "onnx" and bundle is None else None)
        self.holder = live_models.ModelHolder(
            project.store, project.artifacts, name,
            aliases=settings.aliases if bundle is None else (),
            on_swap=self._swapped, on_load_error=self._load_failed, prepare=self.onnx)
        self.log = predictions.PredictionLog(
            self.serving, flush_interval=settings.flush_interval, batch_rows=settings.batch_rows,
            max_queued=settings.max_queued,
            on_written=self.metrics.log_written.inc,
            on_error=lambda _exc: self.metrics.log_write_errors.inc())
        self.tokens = auth.TokenCache(self.serving)
        self.router = routing.Router(project.spec.rollout)
        self.tally = tallies.Tally(tallies.process_name())
        self.stats = serving_stats.ServingStats(self.serving)
        self.shadow = shadow.ShadowScorer(
            name, self.holder, self.log, self.tally,
            on_dropped=lambda n: self.metrics.shadow_dropped.labels(pipeline=name).inc(n))
        self.online = (
            online_serving.OnlineServing(project, self.serving, self.holder)
            if project.spec.online is not None and bundle is None else None
        )
        self._inputs: scoring.InputSchema | None = None
        self._schema_json: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tallies: threading.Thread | None = None
        for alias in settings.aliases:
            self.metrics.model_version.labels(pipeline=name, alias=alias).set(0)
        if bundle is not None:  # loaded (and verified) before the server accepts a request
            self.holder.adopt("champion", bundle.version, bundle.load_model())

    @property
    def name(self) -> str:
        return self.project.name

    @property
    def inputs(self) -> scoring.InputSchema | None:
        """The input schema, or None while the pipeline has none (no data accepted yet)."""
        return self._inputs

    def start(self) -> None:
        """Load what is live now, then start the log writer and the poller."""
        scoring.prepare_scoring_thread()
        self.poll_once()
        self.log.start()
        if "shadow" in self.settings.aliases:
            self.shadow.start()
        self._thread = threading.Thread(target=self._poll, name="driftloop-poller", daemon=True)
        self._thread.start()
        self._tallies = threading.Thread(target=self._write_tallies, name="driftloop-tallies",
                                         daemon=True)
        self._tallies.start()

    def stop(self) -> None:
        """Stop polling, write every queued prediction, give up the online learner's lease."""
        self._stop.set()
        for thread in (self._thread, self._tallies):
            if thread is not None:
                thread.join(10)
        self.shadow.close()
        self.log.close()
        if self.online is not None:
            try:
                self.online.release()
            except Exception as exc:  # it lapses after the lease timeout anyway
                log.warning("releasing the online learner's lease failed: %s", exc)
        try:
            self._flush_stats()
        except Exception as exc:
            log.warning("writing the last request tallies failed: %s", exc)
        self.metrics.close()

    def poll_once(self) -> None:
        """One round of the poller; each part fails alone (logged) and is retried next round.
        It only reads: the request tallies are written on their own thread (`_write_tallies`),
        so a write waiting for the store's lock never holds back following the aliases."""
        for part in (self.holder.refresh, self._refresh_onnx, self.tokens.refresh,
                     self._refresh_schema, self._refresh_live_metric, self._refresh_fairness):
            try:
                part()
            except Exception as exc:
                log.warning("poller: %s failed: %s", getattr(part, "__name__", part), exc)
        self.metrics.observe_log(self.log)

    def _poll(self) -> None:
        while not self._stop.wait(self.settings.poll_interval):
            self.poll_once()

    def _write_tallies(self) -> None:
        while not self._stop.wait(self.settings.poll_interval):
            try:
                self._flush_stats()
            except Exception as exc:  # kept in memory; the next round writes them
                log.warning("writing the request tallies failed: %s", exc)

    def _refresh_schema(self) -> None:
        stored = (self.bundle.schema if self.bundle is not None
                  else self.project.store.get_pipeline(self.name).schema)
        if stored is None or stored == self._schema_json:
            return
        schema = schemas.Schema.from_json(stored)
        spec = self.project.spec
        features = calendar.input_columns(spec, list(schema.names))
        derive = None if spec.calendar is None else functools.partial(calendar.model_input, spec)
        self._inputs = scoring.InputSchema(
            schema, features, allow_new_categories=spec.validation.allow_new_categories,
            derive=derive)
        self._schema_json = stored

    def _refresh_onnx(self) -> None:
        """``serving.runtime: onnx``: swap in the ONNX exports made since a version loaded."""
        if self.onnx is None:
            return
        for number in self.onnx.exported_since(self.holder.versions().values()):
            self.holder.reload(number)

    def _flush_stats(self) -> None:
        self.tally.flush(self.stats, self.name, self.project.store.clock.now())

    def _refresh_live_metric(self) -> None:
        champion = self.holder.get("champion")
        if champion is None:
            return
        newest = self.project.store.list_evaluations(self.name, version=champion.number, last=1)
        if newest and newest[0].value is not None:
            self.metrics.live_metric.labels(pipeline=self.name, metric=newest[0].metric).set(
                newest[0].value)

    def _refresh_fairness(self) -> None:
        """The newest batch fairness report as gauges (only with a `fairness:` section)."""
        if self.project.spec.fairness is None:
            return
        newest = self.project.store.list_findings(self.name, "fairness", last=1)
        if not newest:
            return
        for feature, column in newest[0].report.get("columns", {}).items():
            for group, values in column.get("groups", {}).items():
                for metric, value in values.items():
                    if isinstance(value, int | float) and metric != "rows":
                        self.metrics.fairness_group.labels(
                            pipeline=self.name, feature=feature, group=group,
                            metric=metric).set(value)
                self.metrics.fairness_group.labels(pipeline=self.name, feature=feature,
                                                   group=group, metric="rows").set(
                    values.get("rows", 0))
            for disparity, value in column.get("disparities", {}).items():
                if value is not None:
                    self.metrics.fairness_disparity.labels(
                        pipeline=self.name, feature=feature, disparity=disparity).set(value)

    def _swapped(
        self, alias: str, old: live_models.LiveModel | None, new: live_models.LiveModel | None,
    ) -> None:
        if self.online is not None:
            self.online.swapped(alias, new)
        gauge = self.metrics.model_version.labels(pipeline=self.name, alias=alias)
        gauge.set(0 if new is None else new.number)
        self.metrics.swaps.labels(pipeline=self.name, alias=alias).inc()

    def _load_failed(self, alias: str, _number: int, _exc: Exception) -> None:
        self.metrics.load_errors.labels(pipeline=self.name, alias=alias).inc()
