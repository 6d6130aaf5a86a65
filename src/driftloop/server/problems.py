"""The API's one error body, its exception handlers, and the error responses the OpenAPI
document declares for each route.

Every error answer has the keys of `ErrorBody`: ``detail`` (a sentence saying what was wrong
and what to do), ``error`` (the kind: a `DriftloopError` class name, ``RequestValidationError``,
or the HTTP status in words, e.g. ``Forbidden``, ``ContentTooLarge``) and ``context`` (an
object; for a malformed request its ``problems``: where and what, one entry per problem).
The status of a `DriftloopError` comes from `errors.HTTP_STATUS`. A malformed body's
``detail`` shows the shape the route expects, from the ``examples`` of its request model, so
a guess that is close gets the right form back instead of pydantic's list alone.
"""

from __future__ import annotations

import json
import math
import typing
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from driftloop.core import errors

MAX_PROBLEMS = 50
"""Problems a 422 lists (a body with a million bad records gets the first 50)."""


class ErrorBody(BaseModel):
    """What every error answer holds."""

    detail: str = Field(description="What was wrong and what to do")
    error: str = Field(description="The kind of error, e.g. NotFoundError, Forbidden")
    context: dict[str, Any] = Field(
        description="Where it happened (pipeline, version, ...); for a malformed request, "
        "`problems`: one entry per problem with its location (`loc`) and message (`msg`)")


_WHY = {
    400: "The request cannot be read",
    401: "No token, or an unknown or revoked one (`Authorization: Bearer <secret>`)",
    403: "The token lacks the role this endpoint needs",
    404: "Something the request names does not exist",
    409: "The request clashes with the stored state",
    413: "The body is larger than the server's limit, or names too many records",
    415: "The body's Content-Type is not one this endpoint reads",
    422: "The body or a parameter does not have the expected shape or values",
    503: "The server cannot answer yet (no champion loaded, or overloaded)",
}


_KINDS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
          405: "MethodNotAllowed", 409: "Conflict", 413: "ContentTooLarge",
          415: "UnsupportedMediaType", 422: "UnprocessableContent", 503: "ServiceUnavailable"}
"""The `error` of an answer raised as a plain HTTP status (RFC 9110's names, fixed here:
Python's `http.HTTPStatus` phrases differ between versions)."""


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` entry declaring `statuses` with the one error body."""
    return {status: {"model": ErrorBody, "description": _WHY[status]} for status in statuses}


def body(detail: str, error: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """An error body as JSON-ready data (context values that are not JSON become text)."""
    return {"detail": detail, "error": error,
            "context": json.loads(json.dumps(context or {}, default=str))}


def add_handlers(app: FastAPI) -> None:
    """Answer every error of `app` with an `ErrorBody`."""
    app.add_exception_handler(RequestValidationError, _malformed)
    app.add_exception_handler(errors.DriftloopError, _driftloop_error)
    app.add_exception_handler(HTTPException, _http_error)


async def _malformed(request: Request, exc: Exception) -> JSONResponse:
    problems = typing.cast(RequestValidationError, exc).errors()
    listed = [{"loc": [str(part) for part in problem.get("loc", ())],
               "msg": str(problem.get("msg", "")), "type": str(problem.get("type", "")),
               "input": _safe(problem.get("input"))} for problem in problems[:MAX_PROBLEMS]]
    first = listed[0] if listed else {"loc": [], "msg": "malformed request"}
    where = ".".join(first["loc"][1:]) if first["loc"][:1] == ["body"] else ".".join(first["loc"])
    found = f"{len(problems)} problem(s); the first, at `{where or 'the body'}`: {first['msg']}"
    example = _example(request)
    if example is not None and first["loc"][:1] == ["body"]:
        detail = (f"{request.method} {request.url.path} expects a JSON body like "
                  f"{json.dumps(example)}; this one has {found}")
    else:
        detail = f"{request.method} {request.url.path}: {found}"
    return JSONResponse(body(detail, "RequestValidationError", {"problems": listed}), 422)


async def _driftloop_error(_request: Request, exc: Exception) -> JSONResponse:
    error = typing.cast(errors.DriftloopError, exc)  # registered for this class only
    status = errors.http_status(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body(error.message, type(error).__name__, error.context), status,
                        headers=headers)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    error = typing.cast(HTTPException, exc)
    kind = _KINDS.get(error.status_code, f"HTTP{error.status_code}")
    detail, headers = str(error.detail), error.headers
    return JSONResponse(body(detail, kind), error.status_code, headers=headers)


def _example(request: Request) -> Any:
    """The first example of the request model of the route that answered, if it has one."""
    route = request.scope.get("route")
    field = getattr(route, "body_field", None)
    model = getattr(getattr(field, "field_info", None), "annotation", None)
    schema_extra = getattr(model, "model_config", {}).get("json_schema_extra") or {}
    examples = schema_extra.get("examples") if isinstance(schema_extra, dict) else None
    return examples[0] if examples else None


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
