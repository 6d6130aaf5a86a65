"""The answer to a predict request whose body is valid and whose records passed the schema:
route the records, score them, log and count the predictions, queue the shadow's work.

Both ways into ``POST /v1/predict`` end here: the FastAPI route (`server.app`) and the fast
path (`server.fast_predict`), so the two give the same predictions, probabilities, logged rows
and metrics for the same records. Each request uses the models it read once at its start (the
hot swap replaces them between requests, `server.live_models`).
"""

from __future__ import annotations

import time
import typing
from typing import Any

from fastapi import HTTPException

from driftloop.server import explained, live_models, prediction_ids, scoring, shadow, state
from driftloop.store import serving


def answer(
    server: state.ServerState, champion: live_models.LiveModel, inputs: scoring.InputSchema,
    records: list[Any], rows: list[Any], key: str | None, started: float, *,
    explain: bool = False,
) -> dict[str, Any]:
    """The response body for `records` (as sent; `rows`: what `inputs.check` made of them).
    With `explain`, each prediction carries the SHAP contributions of the model that answered
    it (a 400 `HTTPException` for a model with no explainer). `started`: the request's
    `time.perf_counter()` at arrival, for the per-alias latency tallies."""
    name = server.name
    data = scoring.ModelInput.of(inputs, rows)
    at = server.project.store.clock.now()
    groups = server.router.route(server.holder, champion, records, key)
    answers: list[tuple[live_models.LiveModel, scoring.Scored] | None] = [None] * len(rows)
    for live, indices in groups:
        part = data if len(groups) == 1 else data.take(indices)
        used, scored = _score(server, live, champion, part, at, started)
        for index, out in zip(indices, scored, strict=True):
            answers[index] = (used, out)
    contributions = _explain(server, groups, data, len(rows)) if explain else None
    logged = [
        serving.Prediction(id_, name, used.alias, used.number, key, row, out.prediction,
                           out.probabilities, at)
        for id_, row, (used, out) in zip(prediction_ids.new_ids(at, len(rows)), rows,
                                         typing.cast(list[Any], answers), strict=True)
    ]
    server.log.submit(logged)  # never refuses: what it cannot keep is counted (readyz)
    for live, indices in groups:
        server.metrics.predicted(name, live.alias).inc(len(indices))
    if server.shadow.active:
        server.shadow.submit(shadow.Job(data, [p.id for p in logged], key, at))
    predictions = [{"id": p.id, "prediction": p.prediction, "probabilities": p.probabilities,
                    "version": p.version, "alias": p.alias} for p in logged]
    if contributions is not None:
        for item, values in zip(predictions, contributions, strict=True):
            item["contributions"] = values
    return {"predictions": predictions, "version": logged[0].version, "alias": logged[0].alias}


def _score(
    server: state.ServerState, live: live_models.LiveModel, champion: live_models.LiveModel,
    data: scoring.ModelInput, at: Any, started: float,
) -> tuple[live_models.LiveModel, list[scoring.Scored]]:
    """Score with `live`; a model under test that raises is counted as its error and the
    champion answers instead. Every model that answered (or failed) is tallied."""
    try:
        scored = scoring.score_input(live, data)
    except Exception:
        server.tally.observe(at, live.alias, live.number,
                             (time.perf_counter() - started) * 1000, error=True)
        if live is champion:
            raise
        return _score(server, champion, champion, data, at, started)
    server.tally.observe(at, live.alias, live.number, (time.perf_counter() - started) * 1000,
                         error=False)
    return live, scored


def _explain(server: state.ServerState, groups: Any, data: scoring.ModelInput,
             count: int) -> list[dict[str, float]]:
    """Each record's SHAP contributions from the model that answered it; a 400 naming the
    reason when that model has no explainer."""
    started = time.perf_counter()
    out: list[dict[str, float]] = [{}] * count
    for live, indices in groups:
        part = data if len(groups) == 1 else data.take(indices)
        try:
            values = server.explainers.contributions(live.model, live.number, part.frame)
        except explained.Unexplainable as exc:
            raise HTTPException(400, f"version {live.number} ({type(live.model).__name__}) "
                                f"cannot explain its predictions: {exc}") from exc
        for index, row in zip(indices, values, strict=True):
            out[index] = row
        server.metrics.explained.labels(pipeline=server.name, alias=live.alias).inc(len(indices))
    server.metrics.explain_latency.labels(pipeline=server.name).observe(
        time.perf_counter() - started)
    return out
