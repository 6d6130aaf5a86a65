"""A request body limit that counts the bytes as they arrive: a pure ASGI middleware.

A declared Content-Length past the limit is answered 413 before a byte of the body is read; a
body without one (``Transfer-Encoding: chunked``) is counted chunk by chunk, and the moment the
count passes the limit the app's next read raises `TooLarge` (a 413 `HTTPException`, so the
app's handler answers it with the API's error body, `server.problems`). Nothing past the limit
is buffered, and the 413 carries ``Connection: close``, so uvicorn drops the connection instead
of reading the rest of the upload.

FastAPI's own `max_body_size` counts the same way, but for a declared length it replaces the
app's answer with a fixed text/plain body, which the OpenAPI document cannot describe.
"""

from __future__ import annotations

import typing
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse

from driftloop.server import problems

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class TooLarge(HTTPException):
    """The body passed the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=f"the body is larger than {limit} bytes (the server's "
                         "`serving.max_body_bytes`); split the request",
                         headers={"Connection": "close"})


class BodyLimit:
    """Wraps an ASGI app: HTTP request bodies of at most `limit` bytes reach it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            refused = TooLarge(self.limit)
            await JSONResponse(problems.body(refused.detail, "ContentTooLarge"), 413,
                               headers=refused.headers)(scope, receive, send)
            return
        received = 0
        started = False

        async def counting() -> typing.MutableMapping[str, Any]:
            nonlocal received
            message: typing.MutableMapping[str, Any] = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise TooLarge(self.limit)
            return message

        async def sending(message: typing.MutableMapping[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting, sending)
        except TooLarge as refused:  # read outside a route (no handler answered it)
            if started:
                raise
            await JSONResponse(problems.body(refused.detail, "ContentTooLarge"), 413,
                               headers=refused.headers)(scope, receive, send)
