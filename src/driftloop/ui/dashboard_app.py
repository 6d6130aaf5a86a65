"""The dashboard alone, over a project's store: `driftloop ui` runs this app under uvicorn.

It loads no model and serves no prediction; the pages are those of `ui.dashboard`, which
`driftloop serve` also includes next to the prediction API.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from driftloop.controller import project as projects
from driftloop.ui import dashboard


def create_app(project: projects.Project) -> FastAPI:
    """The dashboard app for the store of `project` (the caller keeps ownership of it)."""
    app = FastAPI(title=f"driftloop dashboard: {project.name}", docs_url=None, redoc_url=None,
                  openapi_url=None)
    spec = project.spec
    everywhere = None
    if spec.regions:
        from driftloop.controller import regions

        def everywhere() -> list[regions.RegionStatus]:
            return regions.global_status(spec, project.base_dir)

    app.include_router(dashboard.router(
        project.store, public=spec.serving.public_dashboard, regions=everywhere))

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse(f"{dashboard.PREFIX}/")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
