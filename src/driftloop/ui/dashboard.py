"""The dashboard: server-rendered pages (Jinja2) under ``/ui``, as a FastAPI `APIRouter`.

`driftloop serve` mounts it beside the prediction API (`server.app.create_app(routers=...)`);
`ui.dashboard_app.create_app` serves it alone for `driftloop ui` (the store only, no models). Pages:

    GET  /ui/                                   pipelines overview
    GET  /ui/pipelines/{name}                   timeline: events, live metric and drift charts
    GET  /ui/pipelines/{name}/versions/{n}      a model version's lineage ("why am I live?")
    GET  /ui/pipelines/{name}/serving           traffic and latency per alias, live comparison
    GET  /ui/login  POST /ui/login  POST /ui/logout
    GET  /ui/static/{file}                      the vendored uPlot and the dashboard's JS/CSS

Access: a token with the ``view`` role, sent as the ``driftloop_token`` cookie (set by the login
form; HttpOnly, SameSite=Strict) or as ``Authorization: Bearer``, checked against the stored
sha256 on every page (a revoked token stops working at once). The spec's
``serving.public_dashboard: true`` opens the pages without a token. Charts are drawn in the
browser by the vendored uPlot (`static/`), never fetched from a CDN.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from importlib import resources
from typing import Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from driftloop.core import errors, types
from driftloop.store import lineage, metadata, notes, serving
from driftloop.ui import responsible_views, templating, views

COOKIE = "driftloop_token"
ROLE = "view"
PREFIX = "/ui"
STATIC = {
    "uPlot.iife.min.js": "text/javascript", "uPlot.min.css": "text/css",
    "dashboard.js": "text/javascript", "dashboard.css": "text/css",
}

templates = templating.templates


def render(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page from `templates/`, with the prefix every link starts with."""
    html = templates.get_template(template).render(prefix=PREFIX, **context)
    return HTMLResponse(html, status_code=status)


def router(
    store: metadata.MetadataStore, *, public: bool = False,
    regions: Callable[[], list[Any]] | None = None,
) -> APIRouter:
    """The dashboard's routes over `store`; `public` opens them without a token; `regions`
    gives the global view of a pipeline with `regions:` (`controller.regions`)."""
    tokens = serving.ServingStore(store)
    api = APIRouter(prefix=PREFIX, include_in_schema=False)

    def page(request: Request, build: Callable[[str], HTMLResponse]) -> Response:
        """`build(user)` for a viewer; else a redirect to the login page (no or unknown
        token) or a 403 page (no view role); a 404 page when something named does not exist."""
        user = "public"
        if not public:
            header = request.headers.get("authorization", "")
            secret = request.cookies.get(COOKIE) or (
                header[7:].strip() if header.lower().startswith("bearer ") else "")
            token = tokens.find_token(serving.hash_secret(secret)) if secret else None
            if token is None or not token.active:
                target = urllib.parse.quote(request.url.path, safe="/")
                return RedirectResponse(f"{PREFIX}/login?next={target}", status_code=303)
            if not token.has(ROLE):
                return render("error.html.j2", 403, user=token.name, public=False,
                              title="Forbidden", message=f"token {token.name!r} lacks the role "
                              f"{ROLE!r} (it has: {', '.join(token.roles)})")
            user = token.name
        try:
            return build(user)
        except errors.NotFoundError as exc:
            return render("error.html.j2", 404, user=user, public=public, title="Not found",
                          message=exc.message)

    @api.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            raise HTTPException(404, f"no static file {name!r}")
        body = resources.files("driftloop.ui").joinpath("static", name).read_bytes()
        return Response(body, media_type=STATIC[name],
                        headers={"Cache-Control": "public, max-age=3600"})

    @api.get("/login")
    def login_form(next: str = Query(f"{PREFIX}/", max_length=500)) -> HTMLResponse:
        return render("login.html.j2", user="", public=True, next=_local(next), message="")

    @api.post("/login")
    async def login(request: Request) -> Response:
        body = await request.body()
        if len(body) > 4096:
            raise HTTPException(413, "the login form is larger than 4 KB")
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        secret = (form.get("token") or [""])[0].strip()
        target = _local((form.get("next") or [f"{PREFIX}/"])[0])
        token = tokens.find_token(serving.hash_secret(secret)) if secret else None
        if token is None or not token.active or not token.has(ROLE):
            why = ("this token lacks the view role" if token is not None and token.active
                   else "unknown or revoked token")
            return render("login.html.j2", 401, user="", public=True, next=target, message=why)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, secret, httponly=True, samesite="strict", path=PREFIX,
                            secure=request.url.scheme == "https", max_age=12 * 3600)
        return response

    @api.post("/logout")
    def logout() -> Response:
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    @api.get("/")
    def overview(request: Request) -> Response:
        return page(request, lambda user: render(
            "overview.html.j2", user=user, public=public, pipelines=views.overview(store),
            regions=regions is not None))

    @api.get("/regions")
    def regions_page(request: Request) -> Response:
        rows = regions() if regions is not None else []
        return page(request, lambda user: render(
            "regions.html.j2", user=user, public=public, regions=rows))

    @api.get("/pipelines/{name}")
    def pipeline(request: Request, name: str, limit: int = Query(200, ge=1, le=5000)) -> Response:
        return page(request, lambda user: render(
            "timeline.html.j2", user=user, public=public, name=name, limit=limit,
            events=views.timeline(store, name, limit), charts=views.charts(store, name),
            fairness=responsible_views.fairness_chart(store, name),
            aliases=store.aliases.all(name)))

    @api.get("/pipelines/{name}/versions/{number}")
    def version(
        request: Request, name: str, number: int = Path(ge=1, le=types.MAX_VERSION),
    ) -> Response:
        def build(user: str) -> HTMLResponse:
            traced = lineage.of_version(store, name, number)
            return render("version.html.j2", user=user, public=public, name=name,
                          lineage=traced, notes=_notes(store, name, traced),
                          explained=responsible_views.explanation(store, name, number))

        return page(request, build)

    @api.get("/pipelines/{name}/serving")
    def serving_page(
        request: Request, name: str, hours: float = Query(24.0, gt=0, le=24 * 31),
    ) -> Response:
        return page(request, lambda user: render(
            "serving.html.j2", user=user, public=public, name=name,
            view=views.serving_view(store, name, store.clock.now(), hours)))

    return api


def _notes(store: metadata.MetadataStore, name: str, traced: lineage.Lineage) -> list[Any]:
    """The notes on a version, on the decision that caused it and on its batches, by time."""
    found = notes.Notes(store)
    kept = found.of(name, "version", traced.version.version)
    if traced.decision is not None:
        kept += found.of(name, "decision", traced.decision.id)
    wanted = {b.id for b in traced.batches}
    kept += [n for n in found.of(name, "batch") if n.target_id in wanted]
    return sorted(kept, key=lambda n: n.at)


def _local(target: str) -> str:
    """`target` if it is a dashboard path, else the overview: the login never redirects to
    another site."""
    return target if target.startswith(PREFIX + "/") and "//" not in target else f"{PREFIX}/"
