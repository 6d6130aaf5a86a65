"""The shadow scorer: the ``shadow`` alias scores the same records as the champion, off the
response path, and its predictions are logged but never returned.

`POST /v1/predict` (`server.answering`) hands the request's checked records and the champion's
prediction ids to `ShadowScorer.submit` (a bounded queue append, no scoring) and answers at
once; one background thread scores each queued request with the model the ``shadow`` alias
serves then, logs the predictions with alias ``shadow`` under ids derived from the champion's
(`controller.rollout.shadow_id`, so a label given for the champion's prediction labels the
shadow's too), and counts requests, errors and latency for the rollout evaluation. When the
queue is full (the shadow is slower than the traffic) requests are not shadowed and counted as
dropped: the champion's answers never wait for the shadow.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from driftloop.controller import rollout
from driftloop.server import live_models, predictions, scoring, tallies
from driftloop.store import serving

log = logging.getLogger("driftloop.server")


@dataclass(frozen=True)
class Job:
    """One answered request to score again with the shadow: its checked records (the frame,
    if the shadow needs one, is built on the shadow's thread), the champion's prediction ids."""

    data: scoring.ModelInput
    ids: list[str]
    key: str | None
    at: datetime


class ShadowScorer:
    """A queue of answered requests and the thread that scores them with the shadow alias."""

    def __init__(
        self, pipeline: str, holder: live_models.ModelHolder,
        prediction_log: predictions.PredictionLog,
        tally: tallies.Tally, *, max_queued: int = 10_000,
        on_dropped: Callable[[int], None] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.holder = holder
        self._log = prediction_log
        self.tally = tally
        self.max_queued = max_queued
        self.on_dropped = on_dropped
        self._queue: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._busy = False
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        """True while the shadow alias serves a model (only then is anything submitted)."""
        return self.holder.get("shadow") is not None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="driftloop-shadow",
                                            daemon=True)
            self._thread.start()

    def submit(self, job: Job) -> None:
        """Queue an answered request for the shadow; dropped (and counted) when full."""
        with self._cond:
            if len(self._queue) >= self.max_queued:
                if self.on_dropped is not None:
                    self.on_dropped(len(job.ids))
                return
            self._queue.append(job)
            self._cond.notify()

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is scored and handed to the log."""
        deadline = time.monotonic() + timeout
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy,
                                       timeout=max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        """Score what is queued, then stop the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        scoring.prepare_scoring_thread()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping or bool(self._queue))
                if not self._queue:
                    return
                job = self._queue.popleft()
                self._busy = True
            try:
                self._score(job)
            except Exception as exc:  # never let one job stop the thread
                log.warning("shadow scoring failed: %s", exc)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _score(self, job: Job) -> None:
        live = self.holder.get("shadow")
        if live is None:
            return
        started = time.perf_counter()
        try:
            scored = scoring.score_input(live, job.data)
        except Exception as exc:
            self.tally.observe(job.at, live.alias, live.number,
                               (time.perf_counter() - started) * 1000, error=True)
            log.warning("%s: shadow v%d failed to score: %s", self.pipeline, live.number, exc)
            return
        self.tally.observe(job.at, live.alias, live.number,
                           (time.perf_counter() - started) * 1000, error=False)
        self._log.submit([
            serving.Prediction(rollout.shadow_id(champion_id), self.pipeline, live.alias,
                               live.number, job.key, row, out.prediction, out.probabilities,
                               job.at)
            for champion_id, row, out in zip(job.ids, job.data.rows, scored, strict=True)])
