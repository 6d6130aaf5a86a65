"""``/docs``: Swagger UI for the API, served from the package so it works offline.

The Swagger UI files are vendored in ``driftloop/ui/static/`` (from the npm package
``swagger-ui-dist``; see its README.md) and served here under ``/docs/static/``; the page is
FastAPI's `get_swagger_ui_html` pointed at them, with no favicon and no validator badge (both
would be fetched from another site). The files are read as package data of `driftloop.ui`
(not an import of its code), so a server without the dashboard still has its docs.
"""

from __future__ import annotations

import functools
from importlib import resources

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

PATH = "/docs"
FILES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}


@functools.cache
def _read(name: str) -> bytes:
    return resources.files("driftloop.ui").joinpath("static", name).read_bytes()


def add_routes(app: FastAPI) -> None:
    """Serve Swagger UI for `app`'s OpenAPI document at ``/docs`` (create `app` with
    ``docs_url=None`` so FastAPI does not add its own, CDN-loaded page)."""
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(PATH, include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title}: API",
            swagger_js_url=f"{PATH}/static/swagger-ui-bundle.js",
            swagger_css_url=f"{PATH}/static/swagger-ui.css",
            swagger_favicon_url="data:,",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(PATH + "/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in FILES:
            raise HTTPException(404, f"no file {name!r} under {PATH}/static")
        return Response(_read(name), media_type=FILES[name],
                        headers={"Cache-Control": "public, max-age=86400"})
