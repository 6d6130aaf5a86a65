"""Notes on model versions, decisions and batches, over HTTP; the author is the token's name.

    POST /v1/notes                      role view: {"target": "version", "id": 3, "text": "..."}
    GET  /v1/notes?target=version&id=3  role view: the notes on one target (or all), oldest first

Times are UTC (ISO 8601); each reader shows them in their own time zone (the dashboard uses
the browser's). A note on a target that does not exist is refused with 404.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from driftloop.server import access, problems, state
from driftloop.store import notes

ROLE = "view"


class NoteIn(BaseModel):
    target: notes.Target = Field(description="What the note is on")
    id: int = Field(ge=1, le=2**62, description="Its number: version, decision or batch id")
    text: str = Field(min_length=1, max_length=notes.MAX_TEXT)


class NoteOut(BaseModel):
    id: int
    target: str
    target_id: int
    author: str
    text: str
    at: datetime


def _out(note: notes.Note) -> NoteOut:
    return NoteOut(id=note.id, target=note.target, target_id=note.target_id, author=note.author,
                   text=note.text, at=note.at)


def router(server: state.ServerState) -> APIRouter:
    """The routes of this module for `server`."""
    routes = APIRouter(tags=["notes"])
    book = notes.Notes(server.project.store)
    allowed = access.require(server, ROLE)

    @routes.post("/v1/notes", status_code=201, response_model=NoteOut,
                 responses=problems.responses(400, 401, 403, 404, 422))
    async def add_note(body: NoteIn, author: str = allowed) -> NoteOut:
        """Leave a note on a model version, a decision or a batch of this pipeline."""
        note = await run_in_threadpool(
            book.add, server.name, body.target, body.id, author=author, text=body.text)
        return _out(note)

    @routes.get("/v1/notes", response_model=list[NoteOut],
                responses=problems.responses(401, 403, 422))
    async def list_notes(
        target: notes.Target | None = Query(  # noqa: B008 (FastAPI's way)
            None, description="Only notes on this kind"),
        id: int | None = Query(None, ge=1, le=2**62, description="Only notes on this one"),
        _: str = allowed,
    ) -> list[NoteOut]:
        """The notes of this pipeline, oldest first (the newest 200)."""
        found = await run_in_threadpool(book.of, server.name, target, id)
        return [_out(note) for note in found]

    return routes
