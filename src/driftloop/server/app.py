"""The prediction server: a FastAPI app for one pipeline, built by `create_app(project)`.

`driftloop serve` runs it under uvicorn; tests run it on a real uvicorn server. Endpoints:

    POST /v1/predict          role predict (or anonymous if the spec allows it)
    POST /v1/feedback         role feedback: ground-truth labels for earlier predictions
    POST /v1/admin/promote    role admin: point an alias at a version (audited)
    POST /v1/admin/rollback   role admin: move an alias back (audited)
    POST /v1/admin/retrain    role admin: ask the next tick to retrain (audited)
    POST /v1/batches              role ingest: a batch of rows (`server.ingest_api`)
    POST /v1/notes  GET /v1/notes role view: notes on versions, decisions, batches
                                  (`server.notes_api`; the author is the token's name)
    GET  /healthz  /readyz  /metrics
    GET  /docs  /openapi.json     Swagger UI, served from the package (`server.docs`)
    GET  /ui/...              the dashboard (`ui.dashboard`, mounted by `driftloop serve`)

Serving a bundle (`server.bundled`), the model cannot change: the admin routes and
``POST /v1/batches`` are not mounted.

Errors: every error answer is one body, ``{"detail", "error", "context"}`` (`server.problems`),
declared per route in the OpenAPI document; a malformed body gets a 422 showing the expected
shape, never a 5xx. A body larger than `Settings.max_body_bytes` is refused with 413 as its
bytes arrive, chunked or not (`server.body_limit`). Request bodies and their bounds:
`server.api_bodies`. The predict path never waits on the database (see `server.predictions`).

``POST /v1/predict`` has two ways in that answer alike: the common request (a valid body, a
known token, no query string) is answered by `server.fast_predict` in front of FastAPI (the
app is its `App`); every other one (``?explain=true``, any error) by the route below. Both end
in `server.answering`.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse, Response

from driftloop.controller import project as projects
from driftloop.controller import retrain as retraining
from driftloop.core import errors
from driftloop.server import (
    access,
    answering,
    api_bodies,
    body_limit,
    docs,
    fast_predict,
    ingest_api,
    notes_api,
    problems,
    request_metrics,
    state,
)
from driftloop.store import bundles

BODY_ERRORS = (400, 401, 403, 413, 422)
"""What every route with a body and a token may answer."""
SWITCH_INTERVAL = 0.001
"""Seconds a thread may hold the GIL while another waits for it (CPython's default: 0.005)."""


def create_app(
    project: projects.Project,
    *,
    settings: state.Settings | None = None,
    routers: Sequence[APIRouter] = (),
    bundle: bundles.Bundle | None = None,
    **overrides: Any,
) -> FastAPI:
    """The server app for `project`; `settings` (or keyword overrides of `state.Settings`)
    replace what the spec's `serving` section says; `routers` are mounted beside the API (the
    CLI mounts the dashboard, `ui.dashboard`); `bundle`: serve that bundle's model, read-only
    (`server.bundled`). The caller keeps ownership of `project`."""
    settings = settings or state.settings_for(project.spec, **overrides)
    server = state.ServerState(project, settings, bundle)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        server.start()
        # What start-up made (libraries, the loaded models) lives as long as the process: out
        # of the collector's way, a full collection no longer walks it during a request.
        gc.freeze()
        # A request waits for the GIL while the prediction-log writer or the alias poller runs
        # Python code; hand it over after 1 ms instead of CPython's default 5 ms (the p99 of a
        # single-record predict at 200 req/s was that wait).
        sys.setswitchinterval(SWITCH_INTERVAL)
        try:
            yield
        finally:
            server.stop()

    app = fast_predict.App(
        fast_predict.FastPredict(server), title=f"driftloop: {project.name}", lifespan=lifespan,
        description="Predictions, feedback labels and model administration of one pipeline.",
        docs_url=None,
    )
    app.state.driftloop = server
    problems.add_handlers(app)
    docs.add_routes(app)
    _add_routes(app, server)
    if bundle is None:
        _add_admin_routes(app, server)
        app.include_router(ingest_api.router(server))
        app.include_router(notes_api.router(server))
    for router in routers:
        app.include_router(router)
    app.add_middleware(body_limit.BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(request_metrics.RequestMetrics, metrics=server.metrics)
    return app


# -- routes --------------------------------------------------------------------------------------


def _add_routes(app: FastAPI, server: state.ServerState) -> None:
    name = server.name

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], response_model=api_bodies.Readiness,
             responses={503: {"model": api_bodies.Readiness, "description": "Not ready: `problems` "
                              "says why"}})
    def readyz() -> JSONResponse:
        """Ready when a champion is loaded and the input schema is known. A store that does
        not answer or refuses writes leaves the server ready (predict answers from memory) and
        is listed under `degraded`, with how many predictions wait or were not logged."""
        problems: list[str] = []
        if server.holder.get("champion") is None:
            problems.append("no champion model is loaded")
        if server.inputs is None:
            problems.append("the pipeline has no schema yet (no accepted data)")
        degraded = []
        if not server.serving.ping():
            degraded.append("the store does not answer")
        if server.log.problem is not None:
            degraded.append(server.log.problem)
        server.metrics.observe_log(server.log)
        body = {"ready": not problems, "pipeline": name, "serving": server.holder.versions(),
                "runtimes": server.holder.runtimes(), "process": server.tally.process,
                "problems": problems, "degraded": degraded}
        return JSONResponse(body, status_code=503 if problems else 200)

    @app.get("/metrics", tags=["health"], response_class=Response, responses={200: {
        "description": "Prometheus metrics in the text exposition format",
        "content": {"text/plain": {"schema": {"type": "string"}}}}})
    def metrics() -> Response:
        """Prometheus metrics."""
        server.metrics.observe_log(server.log)
        content, media_type = server.metrics.render()
        return Response(content, media_type=media_type)

    @app.post("/v1/predict", response_model=api_bodies.PredictResponse, tags=["predict"],
              responses=problems.responses(*BODY_ERRORS, 503))
    async def predict(
        body: api_bodies.PredictRequest, actor: str = access.require(server, "predict"),
        explain: bool = Query(False, description="Add each feature's SHAP contribution to "
                              "every prediction (400 for a model with no explainer)"),
    ) -> JSONResponse:
        """Predict for one or many records; every prediction is logged with its id and the
        alias and version that answered (canary / A-B: a sticky share goes to the model under
        test; shadow: the shadow scores the same records after the answer, never returned)."""
        started = time.perf_counter()
        champion = server.holder.get("champion")  # this request uses these models to the end
        inputs = server.inputs
        if champion is None or inputs is None:
            raise HTTPException(503, "no champion model is loaded yet; see /readyz")
        records: list[Any] = body.records if body.records is not None else [body.record]
        if len(records) > server.settings.max_records:
            raise HTTPException(
                413, f"{len(records)} records in one request; the limit is "
                f"{server.settings.max_records}. Split the request")
        rows = inputs.check(records)
        return JSONResponse(answering.answer(server, champion, inputs, records, rows, body.key,
                                             started, explain=explain))

    @app.post("/v1/feedback", response_model=api_bodies.FeedbackResponse, tags=["feedback"],
              responses=problems.responses(*BODY_ERRORS, 404))
    def feedback(
        body: api_bodies.FeedbackRequest, actor: str = access.require(server, "feedback")
    ) -> Any:
        """Ground truth for earlier predictions (hours or days later). The first label of a
        prediction wins; any unknown prediction id fails the whole call with 404 listing them.
        An online pipeline's learner learns the new labels before the answer (`learned`) if
        this server can take the pipeline's lease; else the lease holder learns them."""
        inputs = server.inputs
        if inputs is not None:
            target = inputs.schema.column(inputs.schema.target)
            problems: list[dict[str, Any]] = []
            for index, item in enumerate(body.labels):
                _, problem = inputs.value(target, item.label)
                if problem is not None:
                    problems.append({"record": index, "field": "label", "msg": problem})
            if problems:
                raise errors.ValidationError(
                    f"{len(problems)} label(s) do not fit the target column "
                    f"{target.name!r}: label {problems[0]['record']}: {problems[0]['msg']}",
                    reasons={"label": [p["msg"] for p in problems]}, problems=problems)
        server.log.flush(timeout=5.0)  # a label may follow its prediction at once
        result = server.serving.add_feedback(
            name, [(item.prediction_id, item.label) for item in body.labels], actor=actor)
        server.metrics.feedback.labels(pipeline=name).inc(len(result.stored))
        learned = server.online.learn_feedback(server.inputs) if server.online else 0
        return {"stored": len(result.stored), "duplicates": list(result.duplicates),
                "learned": learned}


def _add_admin_routes(app: FastAPI, server: state.ServerState) -> None:
    name = server.name
    store = server.project.store

    @app.post("/v1/admin/promote", tags=["admin"], response_model=api_bodies.AliasMoveOut,
              responses=problems.responses(*BODY_ERRORS, 404, 409))
    def promote(
        body: api_bodies.PromoteRequest, actor: str = access.require(server, "admin"),
    ) -> Any:
        """Point an alias (default champion) at a version; audited with the token's name."""
        move = store.aliases.set(name, body.alias, body.version, actor=actor, reason=body.reason)
        server.holder.refresh()
        return _move_json(move, server)

    @app.post("/v1/admin/rollback", tags=["admin"], response_model=api_bodies.AliasMoveOut,
              responses=problems.responses(*BODY_ERRORS, 404, 409))
    def rollback(
        body: api_bodies.RollbackRequest | None = None,
        actor: str = access.require(server, "admin"),
    ) -> Any:
        """Move an alias back to the version it held before; audited with the token's name."""
        body = body or api_bodies.RollbackRequest()
        move = store.aliases.rollback(name, body.alias, actor=actor, reason=body.reason)
        server.holder.refresh()
        return _move_json(move, server)

    @app.post("/v1/admin/retrain", tags=["admin"], response_model=api_bodies.RetrainOut,
              responses=problems.responses(*BODY_ERRORS))
    def retrain(
        body: api_bodies.RetrainRequest | None = None, actor: str = access.require(server, "admin"),
    ) -> Any:
        """Ask for a retraining (as `driftloop retrain` does); the next tick acts on it."""
        body = body or api_bodies.RetrainRequest()
        request = retraining.request(store, name, body.reason, actor)
        return {"decision": request.id, "kind": request.kind, "actor": actor}


def _move_json(move: Any, server: state.ServerState) -> dict[str, Any]:
    return {"alias": move.alias, "version": move.version, "previous": move.previous,
            "actor": move.actor, "action": move.action, "serving": server.holder.versions()}
