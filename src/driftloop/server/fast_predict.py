"""The fast path of ``POST /v1/predict``: a pure ASGI middleware in front of the whole FastAPI
app (`App`) that answers the common request in plain Python and hands every other one to the
FastAPI route.

The common request: no query string, a JSON body (``Content-Type: application/json`` or
none) of the documented shape (`api_bodies.PredictRequest`: exactly one of ``records``, a non-empty
list of objects, or ``record``, an object; ``key`` text of at most 200 characters; no other
field), a bearer token the in-memory cache holds with the ``predict`` role (or no token where
anonymous predictions are allowed), a champion loaded, at most `Settings.max_records` records,
and records that pass the schema (`scoring.InputSchema.check`). For it, `FastPredict.answer`
parses the body with `json`, checks that shape with a few type tests, and builds the answer
with `server.answering`, the code the FastAPI route runs, so predictions, probabilities, the
prediction log, tallies, metrics, canary / A-B routing and the shadow behave alike; the
response bytes are those of Starlette's `JSONResponse`. What it skips is FastAPI's work per
request: dependency solving, pydantic models for the request and the response, the middleware
stack and the router, and FastAPI's own telemetry hook (OpenTelemetry spans, if a provider is
configured, cover the requests handed on only).

Anything else is handed on unchanged with the body messages already read replayed
(`Middleware`): a query string (``?explain=true``), another content type, a body that is not
JSON or not of that shape, a missing, unknown, revoked or under-privileged token (the route
asks the store for a token it has not cached), no champion, too many records, records that
fail the schema, a client that disconnected. Every error answer (a 4xx with its message, a
413 for a body past `Settings.max_body_bytes`, declared or chunked) therefore comes from the
route, as before. The body is read chunk by chunk and never past the limit: a larger one is
handed on at once, and the route's `server.body_limit` refuses it as its bytes arrive.

A model that raises while the champion answers fails the request with a 500, as on the route;
the fast path counts its own requests in the request metrics (`server.request_metrics` counts
those it hands on).
"""

from __future__ import annotations

import collections
import functools
import json
import time
from collections.abc import MutableMapping
from typing import Any

from fastapi import FastAPI
from fastapi.security.utils import get_authorization_scheme_param
from starlette.types import ASGIApp, Receive, Scope, Send

from driftloop.core import errors
from driftloop.server import answering, api_bodies, state

PATH = "/v1/predict"
FIELDS = frozenset(api_bodies.PredictRequest.model_fields)
KEY_LENGTH = next(rule.max_length for rule in api_bodies.PredictRequest.model_fields["key"].metadata
                  if hasattr(rule, "max_length"))
_HEADERS = [(b"content-type", b"application/json")]


class FastPredict:
    """Answers a predict request's body, or says (None) that the FastAPI route must."""

    def __init__(self, server: state.ServerState) -> None:
        self.server = server
        self.answered = 0  # requests answered here
        self.handed_on = 0  # requests the route answered

    def answer(
        self, body: bytes, content_type: bytes | None, authorization: bytes | None,
        started: float,
    ) -> bytes | None:
        """The JSON response to a 200, or None when the request is not a common one."""
        if content_type is not None and (
                content_type.split(b";", 1)[0].strip().lower() != b"application/json"):
            return None
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, not UTF-8/16/32, nested too deep
            return None
        records = _records(parsed)
        server = self.server
        if records is None or not self._allowed(authorization):
            return None
        champion, inputs = server.holder.get("champion"), server.inputs
        if champion is None or inputs is None or len(records) > server.settings.max_records:
            return None
        try:
            rows = inputs.check(records)
        except errors.ValidationError:
            return None
        content = answering.answer(server, champion, inputs, records, rows, parsed.get("key"),
                                   started)
        self.answered += 1
        return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None,
                          separators=(",", ":")).encode("utf-8")

    def _allowed(self, authorization: bytes | None) -> bool:
        """True for a cached token with the predict role, or no bearer token where anonymous
        predictions are allowed (as `server.access.require` reads the header)."""
        scheme, secret = get_authorization_scheme_param(
            None if authorization is None else authorization.decode("latin-1"))
        if not (scheme and secret) or scheme.lower() != "bearer":
            return self.server.settings.anonymous_predict
        token = self.server.tokens.cached(secret)
        return token is not None and token.has("predict")


def _records(parsed: Any) -> list[Any] | None:
    """The records of a body `api_bodies.PredictRequest` accepts, or None for any other body."""
    if type(parsed) is not dict or not parsed.keys() <= FIELDS:
        return None
    key = parsed.get("key")
    if key is not None and (type(key) is not str or len(key) > KEY_LENGTH):
        return None
    if "records" in parsed:
        records = parsed["records"]
        if "record" in parsed or type(records) is not list or not records:
            return None
        return records if all(type(record) is dict for record in records) else None
    record = parsed.get("record")
    return [record] if type(record) is dict else None


class App(FastAPI):
    """The server's FastAPI app with the fast path in front of all of it: a request for
    `PATH` meets `Middleware` first, before FastAPI's own layers (its telemetry hook, error
    and exception middleware, the app's middleware, the router), which cost a single-record
    request about as much as its prediction; every other request goes to FastAPI as usual.
    A model failing on the fast path reaches uvicorn, which answers the same plain 500."""

    def __init__(self, fast: FastPredict, **options: Any) -> None:
        super().__init__(**options)
        self.state.fast_predict = fast
        self._fast_path = Middleware(functools.partial(FastAPI.__call__, self), fast)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH:
            await self._fast_path(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


class Middleware:
    """Wraps an ASGI app: reads the body of ``POST /v1/predict`` (up to the body limit) and
    sends `fast`'s answer, or hands the request on with the messages read replayed."""

    def __init__(self, app: ASGIApp, fast: FastPredict) -> None:
        self.app = app
        self.fast = fast
        self._ok: Any = None  # the metrics' children of a 200 (made at the first one)
        self._latency: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if scope["query_string"] or scope.get("root_path"):
            await self._hand_on(scope, [], receive, send)
            return
        started = time.perf_counter()
        content_type = authorization = None
        limit = self.fast.server.settings.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-type" and content_type is None:
                content_type = value
            elif name == b"authorization" and authorization is None:
                authorization = value
            elif name == b"content-length" and (not value.isdigit() or int(value) > limit):
                await self._hand_on(scope, [], receive, send)
                return
        messages: list[MutableMapping[str, Any]] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if message["type"] != "http.request" or size > limit:
                await self._hand_on(scope, messages, receive, send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(message.get("body", b"") for message in messages)
        metrics = self.fast.server.metrics
        try:
            payload = self.fast.answer(body, content_type, authorization, started)
        except Exception:  # a model failed: uvicorn answers 500; counted as the route counts it
            metrics.requests.labels(endpoint=PATH, method="POST", status="500").inc()
            metrics.errors.labels(endpoint=PATH, kind="server").inc()
            metrics.latency.labels(endpoint=PATH).observe(time.perf_counter() - started)
            raise
        if payload is None:
            await self._hand_on(scope, messages, receive, send)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(payload)).encode()), *_HEADERS]})
        await send({"type": "http.response.body", "body": payload})
        if self._ok is None:
            self._ok = metrics.requests.labels(endpoint=PATH, method="POST", status="200")
            self._latency = metrics.latency.labels(endpoint=PATH)
        self._ok.inc()
        self._latency.observe(time.perf_counter() - started)

    async def _hand_on(
        self, scope: Scope, messages: list[MutableMapping[str, Any]], receive: Receive,
        send: Send,
    ) -> None:
        """The FastAPI app answers, reading `messages` first, then the rest of the body."""
        self.fast.handed_on += 1
        pending = collections.deque(messages)

        async def replay() -> MutableMapping[str, Any]:
            if pending:
                return pending.popleft()
            found: MutableMapping[str, Any] = await receive()
            return found

        await self.app(scope, replay, send)
