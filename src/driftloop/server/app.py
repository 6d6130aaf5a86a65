"""The prediction server: a FastAPI app for one pipeline, built by `create_app(project)`.

`driftloop serve` runs it under uvicorn; tests run it on a real uvicorn server. Endpoints:

    POST /v1/predict          role predict (or anonymous if the spec allows it)
    POST /v1/feedback         role feedback: ground-truth labels for earlier predictions
    POST /v1/admin/promote    role admin: point an alias at a version (audited)
    POST /v1/admin/rollback   role admin: move an alias back (audited)
    POST /v1/admin/retrain    role admin: ask the next tick to retrain (audited)
    POST /v1/batches          role ingest: a batch of rows (`server.ingest_api`)
    GET  /healthz  /readyz  /metrics  /docs
    GET  /ui/...              the dashboard (`ui.dashboard`, mounted by `driftloop serve`)

Errors: a `DriftloopError` becomes the status of `errors.http_status` with ``{"detail",
"error", "context"}``; malformed bodies get FastAPI's 422 (or 400, 413), never a 5xx. The
predict path never waits on the database (see `server.predictions`).
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import sys
import time
import typing
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, model_validator

from driftloop.controller import project as projects
from driftloop.core import errors
from driftloop.server import ingest_api, models, predictions, scoring, shadow, state
from driftloop.store import serving

Alias = Literal["champion", "challenger", "shadow", "canary"]
ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
SWITCH_INTERVAL = 0.001
"""Seconds a thread may hold the GIL while another waits for it (CPython's default: 0.005)."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictRequest(_Body):
    """Give `records` (a list) or one `record`; `key` identifies the caller (kept in the
    prediction log; canary and A/B rollouts assign by it, so a key always meets the same
    model while a rollout lasts)."""

    records: list[dict[str, Any]] | None = Field(default=None, min_length=1)
    record: dict[str, Any] | None = None
    key: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _one_of(self) -> PredictRequest:
        if (self.records is None) == (self.record is None):
            raise ValueError("give exactly one of `records` (a list) or `record` (an object)")
        return self


class PredictionOut(BaseModel):
    id: str
    prediction: Any
    probabilities: dict[str, float] | None
    version: int
    alias: str


class PredictResponse(BaseModel):
    predictions: list[PredictionOut]
    version: int
    alias: str


class Label(_Body):
    prediction_id: str = Field(min_length=1, max_length=36)
    label: Any


class FeedbackRequest(_Body):
    labels: list[Label] = Field(min_length=1, max_length=10_000)


class FeedbackResponse(BaseModel):
    stored: int
    duplicates: list[str] = Field(description="Already labelled: the first label wins")
    learned: int = Field(default=0, description=(
        "Labels this server's online learner learned now (0 while an online controller holds "
        "the pipeline's lease: its next tick learns them)"))


class PromoteRequest(_Body):
    version: int = Field(ge=1)
    alias: Alias = "champion"
    reason: str = Field(default="promoted through the API", max_length=500)


class RollbackRequest(_Body):
    alias: Alias = "champion"
    reason: str = Field(default="rolled back through the API", max_length=500)


class RetrainRequest(_Body):
    reason: str = Field(default="requested through the API", max_length=500)


def create_app(
    project: projects.Project,
    *,
    settings: state.Settings | None = None,
    routers: Sequence[APIRouter] = (),
    **overrides: Any,
) -> FastAPI:
    """The server app for `project`; `settings` (or keyword overrides of `state.Settings`)
    replace what the spec's `serving` section says; `routers` are mounted beside the API (the
    CLI mounts the dashboard, `ui.dashboard`). The caller keeps ownership of `project`."""
    settings = settings or state.settings_for(project.spec, **overrides)
    server = state.ServerState(project, settings)

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

    app = FastAPI(
        title=f"driftloop: {project.name}", lifespan=lifespan,
        description="Predictions, feedback labels and model administration of one pipeline.",
    )
    app.state.driftloop = server
    _add_error_handlers(app)
    _add_routes(app, server)
    app.include_router(ingest_api.router(server))
    for router in routers:
        app.include_router(router)
    app.add_middleware(_Guard, server=server)
    return app


# -- authentication ------------------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="A driftloop token: `driftloop tokens create`")


def _require(server: state.ServerState, role: str) -> Any:
    anonymous = role == "predict" and server.settings.anonymous_predict

    async def check(
        credentials: HTTPAuthorizationCredentials | None = Security(_bearer),  # noqa: B008
    ) -> str:
        if credentials is None and anonymous:
            return "anonymous"
        token = server.tokens.authenticate(credentials.credentials if credentials else None)
        if not server.tokens.allowed(token, role):
            raise HTTPException(
                403, f"token {token.name!r} lacks the role {role!r} "
                f"(it has: {', '.join(token.roles)})")
        return token.name

    return Depends(check)


# -- routes --------------------------------------------------------------------------------------


def _add_routes(app: FastAPI, server: state.ServerState) -> None:
    name = server.name
    store = server.project.store

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        """Ready when a champion is loaded, the input schema is known and the store answers."""
        problems: list[str] = []
        if server.holder.get("champion") is None:
            problems.append("no champion model is loaded")
        if server.inputs is None:
            problems.append("the pipeline has no schema yet (no accepted data)")
        if not server.serving.ping():
            problems.append("the store does not answer")
        body = {"ready": not problems, "pipeline": name, "serving": server.holder.versions(),
                "problems": problems}
        return JSONResponse(body, status_code=503 if problems else 200)

    @app.get("/metrics", tags=["health"])
    def metrics() -> Response:
        """Prometheus metrics."""
        server.metrics.log_queued.set(server.log.queued)
        content, media_type = server.metrics.render()
        return Response(content, media_type=media_type)

    @app.post("/v1/predict", response_model=PredictResponse, tags=["predict"])
    async def predict(
        body: PredictRequest, actor: str = _require(server, "predict"),
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
        frame = inputs.frame(rows)
        at = server.project.store.clock.now()
        groups = server.router.route(server.holder, champion, records, body.key)
        answers: list[tuple[models.LiveModel, scoring.Scored] | None] = [None] * len(rows)
        for live, indices in groups:
            part = frame if len(groups) == 1 else frame.iloc[indices].reset_index(drop=True)
            used, scored = _score(server, live, champion, part, at, started)
            for index, out in zip(indices, scored, strict=True):
                answers[index] = (used, out)
        logged = [
            serving.Prediction(str(uuid.uuid4()), name, used.alias, used.number, body.key, row,
                               out.prediction, out.probabilities, at)
            for row, (used, out) in zip(rows, typing.cast(list[Any], answers), strict=True)
        ]
        try:
            server.log.submit(logged)
        except predictions.Overloaded as exc:
            raise HTTPException(503, f"{exc}; try again shortly") from exc
        for live, indices in groups:
            server.metrics.predictions.labels(
                pipeline=name, alias=live.alias, version=str(live.number)).inc(len(indices))
        if server.shadow.active:
            server.shadow.submit(shadow.Job(frame, rows, [p.id for p in logged], body.key, at,
                                          inputs.plain_numbers_))
        return JSONResponse({
            "predictions": [
                {"id": p.id, "prediction": p.prediction, "probabilities": p.probabilities,
                 "version": p.version, "alias": p.alias} for p in logged],
            "version": logged[0].version, "alias": logged[0].alias,
        })

    @app.post("/v1/feedback", response_model=FeedbackResponse, tags=["feedback"])
    def feedback(body: FeedbackRequest, actor: str = _require(server, "feedback")) -> Any:
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

    @app.post("/v1/admin/promote", tags=["admin"])
    def promote(body: PromoteRequest, actor: str = _require(server, "admin")) -> Any:
        """Point an alias (default champion) at a version; audited with the token's name."""
        move = store.set_alias(name, body.alias, body.version, actor=actor, reason=body.reason)
        server.holder.refresh()
        return _move_json(move, server)

    @app.post("/v1/admin/rollback", tags=["admin"])
    def rollback(
        body: RollbackRequest | None = None, actor: str = _require(server, "admin"),
    ) -> Any:
        """Move an alias back to the version it held before; audited with the token's name."""
        body = body or RollbackRequest()
        move = store.rollback(name, body.alias, actor=actor, reason=body.reason)
        server.holder.refresh()
        return _move_json(move, server)

    @app.post("/v1/admin/retrain", tags=["admin"])
    def retrain(
        body: RetrainRequest | None = None, actor: str = _require(server, "admin"),
    ) -> Any:
        """Ask for a retraining (as `driftloop retrain` does); the next tick acts on it."""
        body = body or RetrainRequest()
        request = store.add_decision(
            name, kind="request", fired=True, evidence={"reason": body.reason, "actor": actor})
        store.audit(actor, "retrain.request", name, {"decision": request.id,
                                                      "reason": body.reason})
        return {"decision": request.id, "kind": request.kind, "actor": actor}


def _score(
    server: state.ServerState, live: models.LiveModel, champion: models.LiveModel,
    frame: Any, at: Any, started: float,
) -> tuple[models.LiveModel, list[scoring.Scored]]:
    """Score with `live`; a model under test that raises is counted as its error and the
    champion answers instead. Every model that answered (or failed) is tallied."""
    floats = server.inputs is not None and server.inputs.plain_numbers_
    try:
        scored = scoring.score(live, frame, floats=floats)
    except Exception:
        server.tally.observe(at, live.alias, live.number,
                             (time.perf_counter() - started) * 1000, error=True)
        if live is champion:
            raise
        return _score(server, champion, champion, frame, at, started)
    server.tally.observe(at, live.alias, live.number, (time.perf_counter() - started) * 1000,
                         error=False)
    return live, scored


def _move_json(move: Any, server: state.ServerState) -> dict[str, Any]:
    return {"alias": move.alias, "version": move.version, "previous": move.previous,
            "actor": move.actor, "action": move.action, "serving": server.holder.versions()}


# -- errors and the request guard ------------------------------------------------------------------


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def malformed(_request: Request, exc: Exception) -> JSONResponse:
        # FastAPI's own handler echoes each bad input back, which fails (500) on `1e999`
        # (inf is not JSON) and repeats huge inputs; keep the shape, make inputs safe.
        problems = typing.cast(RequestValidationError, exc).errors()
        detail = [{**problem, "input": _safe(problem.get("input")), "ctx": _safe(
            problem.get("ctx"))} for problem in problems[:50]]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(errors.DriftloopError)
    async def driftloop_error(_request: Request, exc: Exception) -> JSONResponse:
        exc = typing.cast(errors.DriftloopError, exc)  # registered for this class only
        status = errors.http_status(exc)
        body = {"detail": exc.message, "error": type(exc).__name__,
                "context": json.loads(json.dumps(exc.context, default=str))}
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(body, status_code=status, headers=headers)


def _safe(value: Any, depth: int = 0) -> Any:
    """`value` as JSON that always renders: non-finite floats and other objects as text,
    long texts and deep or wide structures cut short."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value if len(value) <= 200 else value[:200] + "..."
    if depth < 3 and isinstance(value, dict):
        return {str(k)[:100]: _safe(v, depth + 1) for k, v in list(value.items())[:20]}
    if depth < 3 and isinstance(value, list | tuple):
        return [_safe(v, depth + 1) for v in list(value)[:20]]
    return _safe(repr(value), depth)


class _Guard:
    """Pure ASGI middleware: request counts, latency and errors by endpoint; refuses bodies
    larger than `max_body_bytes` (413) before they are read."""

    def __init__(self, app: ASGIApp, server: state.ServerState) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def sending(message: typing.MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        limit = self.server.settings.max_body_bytes
        length = dict(scope.get("headers") or []).get(b"content-length", b"0")
        too_big = not length.isdigit() or int(length) > limit
        try:
            if too_big:
                response = JSONResponse(
                    {"detail": f"the body is larger than {limit} bytes (or its length is "
                               "unreadable); split the request"}, status_code=413)
                await response(scope, receive, sending)
            else:
                await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "other"
            metrics = self.server.metrics
            metrics.requests.labels(
                endpoint=endpoint, method=scope["method"], status=str(status[0])).inc()
            metrics.latency.labels(endpoint=endpoint).observe(time.perf_counter() - started)
            if status[0] >= 400:
                kind = "server" if status[0] >= 500 else str(status[0])
                metrics.errors.labels(endpoint=endpoint, kind=kind).inc()
