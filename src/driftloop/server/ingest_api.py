"""`POST /v1/batches`: a client posts a batch of rows (CSV, Parquet or JSON records).

    POST /v1/batches          role ingest; body by Content-Type:
                                text/csv | application/json (an array of flat objects)
                                | application/vnd.apache.parquet
    GET  /v1/batches/{key}    role ingest: what became of a posted batch

A posted body becomes a batch exactly as a file does: read by the same readers
(`data.bodies`, which uses the files source's), named by its sha256, validated and stored
(accepted, or quarantined with reasons naming CSV lines / records) by the controller's own
`controller.ingest.record_batch`. Answers: 201 ``{"batch_id", "status", "reasons", "rows",
"key"}`` when this request recorded a new batch; 200 with the same body when the batch exists
already (the same batch id again, or the same body again under any id); 202 with status
``queued`` when it will be recorded by the next tick (below). A body that cannot be read at all
(not CSV, not JSON records, not Parquet, empty, no rows) is refused with 400 naming what is
wrong, an unknown Content-Type with 415, a body over the server's `max_body_bytes` with 413
(counted as it arrives, so a chunked body without Content-Length is held to it too); nothing
is stored then.

Idempotency: the client names a batch by the ``Idempotency-Key`` header, or, where it cannot
set headers, the ``batch_id`` query parameter (both given and different: 400). The same id
again answers with the stored batch and records nothing (a different body under a used id:
409). Without an id the body's sha256 is its id, so the same body twice is one batch.

Who writes: the server is not the controller. Every write that the lease fences stays fenced:
a batch (its row, its artifact, and the pipeline's schema, which the first accepted batch
sets) is only ever recorded by the holder of the pipeline's lease. The route first stores the
raw body in the store's `uploads` table, unfenced: that is the client's data, like a
prediction or a feedback label, and the moment the client may forget it. Then it takes the
lease for just as long as recording needs (holder ``server:ingest@host:pid:…``, given back at
once, as the online learner's feedback call does) and records the waiting uploads, oldest
first, through the controller's path, with its writes fenced. While a controller holds the
lease (a tick in progress, perhaps a long training) the request does not wait: it answers 202
and the controller's ingest records the upload on its next tick (`ingest_uploads`). Writing
batches from the server without the lease was the other choice, and it is wrong twice: two
writers could both infer the pipeline's schema from their first batch, and on PostgreSQL a
batch id is drawn before its commit, so an unfenced insert can commit below an id the
controller's `History` has already read past and would never be seen by a long-running
controller (the lease serialises batch writers, so ids commit in order).
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from driftloop.controller import ingest as ingesting
from driftloop.controller import lease as leases
from driftloop.core import errors
from driftloop.data import bodies
from driftloop.server import access, problems, state
from driftloop.store import entities, uploads

ROLE = "ingest"
ACTOR = "server:ingest"
MEDIA_TYPES: dict[str, bodies.Format] = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/json": "json",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "application/parquet": "parquet",
}
"""Content-Type (without parameters) → format of the body."""
_SCHEMAS = {
    "json": {"type": "array", "items": {"type": "object"}},
    "csv": {"type": "string"},
    "parquet": {"type": "string", "format": "binary"},
}
_BODIES = {media: {"schema": _SCHEMAS[fmt]} for media, fmt in MEDIA_TYPES.items()}
"""The request body as OpenAPI declares it (the route reads the raw body itself)."""


class BatchOut(BaseModel):
    key: str = Field(description="The batch id the client gave, else sha256:<hex of the body>")
    batch_id: int | None = Field(description="The stored batch; null while queued")
    status: str = Field(description="accepted, quarantined, or queued (the next tick records it)")
    reasons: dict[str, list[str]] = Field(description="Why it was quarantined, per column")
    rows: int | None




def router(server: state.ServerState) -> APIRouter:
    """The routes of this module for `server`."""
    routes = APIRouter(tags=["ingest"])
    store = uploads.UploadStore(server.project.store)
    lease_holder = leases.holder_name(ACTOR)

    allowed = access.require(server, ROLE)

    @routes.post(
        "/v1/batches", status_code=201, response_model=BatchOut,
        responses={200: {"model": BatchOut, "description": "The batch existed already"},
                   202: {"model": BatchOut, "description": "Queued for the next tick"},
                   **problems.responses(400, 401, 403, 409, 413, 415, 422)},
        openapi_extra={"requestBody": {"required": True, "content": _BODIES}},
    )
    async def post_batch(
        request: Request,
        batch_id: str | None = Query(
            None, min_length=1, max_length=uploads.KEY_LENGTH,
            description="The client's id of this batch (or send the Idempotency-Key header)"),
        idempotency_key: str | None = Header(
            None, alias="Idempotency-Key", min_length=1, max_length=uploads.KEY_LENGTH),
        actor: str = allowed,
    ) -> JSONResponse:
        """Validate and store a batch of rows, once per batch id (see the module docstring)."""
        fmt = _format(request.headers.get("content-type"))
        if batch_id is not None and idempotency_key is not None and batch_id != idempotency_key:
            raise HTTPException(400, "the Idempotency-Key header and the batch_id parameter "
                                "differ; send one of them")
        data = await _body(request, server.settings.max_body_bytes)
        key = idempotency_key or batch_id
        return await run_in_threadpool(_post, data, fmt, key, actor)

    def _post(data: bytes, fmt: bodies.Format, key: str | None, actor: str) -> JSONResponse:
        frame, error = bodies.read_body(data, fmt)
        if error is not None or frame is None:
            raise HTTPException(400, f"cannot read the body: {error}")
        if frame.empty:
            raise HTTPException(400, f"the {fmt} body holds no rows")
        key = key or "sha256:" + hashlib.sha256(data).hexdigest()
        upload, new = store.add(server.name, key, data, fmt, actor=actor)
        if upload.batch_id is not None:
            return _answer(upload, server.project.store.batches.get(upload.batch_id), 200)
        recorded = _record(upload, frame if new else None)
        if recorded is None:
            return _answer(upload, None, 202)
        upload, batch, fresh = recorded
        return _answer(upload, batch, 201 if fresh else 200)

    def _record(upload: uploads.Upload, frame: Any) -> ingesting.Recorded | None:
        """Record the uploads waiting up to `upload` under the lease; None if it is held."""
        project = server.project
        taken = False
        try:
            with leases.hold(project.store, project.name, lease_holder,
                             project.spec.lease_timeout) as lease:
                if lease is None:
                    return None  # the holder's next ingest records it
                taken = True
                for older in store.pending(project.name):
                    if older.id >= upload.id:
                        break
                    ingesting.record_upload(project, store, older)
                return ingesting.record_upload(project, store, upload, frame=frame)
        except errors.ConflictError:  # the lease lapsed mid-call: the new holder records it
            return None
        finally:
            if taken:
                project.store.leases.release(project.name, lease_holder)

    @routes.get("/v1/batches/{key:path}", response_model=BatchOut,
                responses=problems.responses(401, 403, 404, 422))
    def get_batch(key: str, actor: str = allowed) -> JSONResponse:
        """What became of the batch posted under `key` (the client's id, or sha256:<hex>)."""
        upload = store.get(server.name, key)
        if upload is None:
            raise errors.NotFoundError(f"no batch was posted with id {key!r}", batch_id=key)
        batch = (None if upload.batch_id is None
                 else server.project.store.batches.get(upload.batch_id))
        return _answer(upload, batch, 200)

    return routes


def _format(content_type: str | None) -> bodies.Format:
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in MEDIA_TYPES:
        raise HTTPException(
            415, f"Content-Type {media or '(none)'!r} is not a batch format; send one of "
            f"{', '.join(MEDIA_TYPES)}")
    return MEDIA_TYPES[media]


async def _body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as more than `limit` bytes have arrived."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"the body is larger than {limit} bytes; split the batch")
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data.strip():
        raise HTTPException(400, "the body is empty; send the rows of the batch")
    return data


def _answer(upload: uploads.Upload, batch: entities.Batch | None, status: int) -> JSONResponse:
    body = {"key": upload.key, "batch_id": None if batch is None else batch.id,
            "status": "queued" if batch is None else batch.status,
            "reasons": {} if batch is None else batch.reasons,
            "rows": None if batch is None else batch.rows}
    headers = {"Location": f"/v1/batches/{quote(upload.key, safe='')}"}
    return JSONResponse(body, status_code=status, headers=headers)
