"""`driftloop serve` (the prediction server under uvicorn, with the dashboard at /ui; with
`--bundle`, a packaged model version without the pipeline's store, `server.bundled`),
`driftloop ui` (the dashboard alone, over the store) and `driftloop tokens create / list /
revoke` (API tokens; the secret is printed once and only its sha256 is stored).

Registered by `cli.main`. The server binds 127.0.0.1 unless told otherwise: exposing it is a
deliberate `--host 0.0.0.0`. With ``--workers N`` uvicorn starts N processes on one listening
socket; each loads the models, polls the aliases (hot swap), logs its predictions and writes its
request tallies itself, and their Prometheus metrics are summed (`server.prometheus_metrics`).
"""

from __future__ import annotations

import getpass
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from driftloop.cli import console, durations, logs, options

if TYPE_CHECKING:
    from fastapi import FastAPI

    from driftloop.controller.project import Project
    from driftloop.store.bundles import Bundle
    from driftloop.store.serving import ServingStore

WORKER_SPEC = "DRIFTLOOP_SERVE_SPEC"
WORKER_POLL = "DRIFTLOOP_SERVE_POLL_INTERVAL"
WORKER_BUNDLE = "DRIFTLOOP_SERVE_BUNDLE"

BundleTokens = Annotated[Path | None, typer.Option(
    "--bundle", help="The tokens of a server that serves this bundle (in the store "
    "`driftloop serve --bundle` logs to) instead of the spec's store.")]

tokens = typer.Typer(help="API tokens of the prediction server.", no_args_is_help=True)


def serve(
    spec: Path = options.SPEC,
    host: str = typer.Option("127.0.0.1", help="Address to bind (0.0.0.0 exposes the server)."),
    port: int = typer.Option(8000, min=0, max=65535, help="Port to listen on."),
    poll_interval: str | None = typer.Option(
        None, "--poll-interval", help=f"Time between alias checks (hot swap): {durations.HELP}."
    ),
    workers: Annotated[int, typer.Option(
        "--workers", "-w", min=1, help="Worker processes sharing the port (one per core).")] = 1,
    log_level: str = typer.Option("info", help="uvicorn log level."),
    bundle: Annotated[Path | None, typer.Option(
        "--bundle", help="Serve this bundle (`driftloop package`) instead of the spec's "
        "champion: read-only, no store needed; predictions go to $DRIFTLOOP_STORE_URL or the "
        "SQLite file $DRIFTLOOP_PREDICTION_LOG (default ./predictions.db).")] = None,
) -> None:
    """Serve the pipeline's champion: predictions, feedback, admin, /metrics, /docs, /ui."""
    if bundle is not None:
        serve_bundle(bundle, host, port, log_level, workers)
        return
    import uvicorn

    from driftloop.controller import project as projects

    poll = None if poll_interval is None else durations.parse(
        poll_interval, "--poll-interval").total_seconds()
    project = console.guard(lambda: projects.open_project(spec))
    try:
        if workers > 1 and project.spec.online is not None:
            console.fail("an online learner learns in one process: serve it with --workers 1")
        console.info(f"serving {project.name} on http://{host}:{port} (docs: /docs)"
                     + (f" with {workers} workers" if workers > 1 else ""))
        if workers == 1:
            app = console.guard(lambda: _app(project, poll))
            uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                        **logs.uvicorn_options())  # type: ignore[arg-type]
            return
        _run_workers({WORKER_SPEC: str(spec.resolve()), WORKER_POLL: str(poll or "")},
                     workers, host, port, log_level)
    finally:
        project.close()


def _run_workers(
    environ: dict[str, str], workers: int, host: str, port: int, log_level: str,
) -> None:
    """uvicorn with `workers` processes; each builds its own app (`worker_app`) from `environ`,
    and their metrics meet in one folder (prometheus-client's multiprocess mode,
    `server.prometheus_metrics`)."""
    import uvicorn

    metrics_dir = tempfile.mkdtemp(prefix="driftloop-metrics-")
    os.environ.update({**environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir})
    try:
        uvicorn.run(f"{__name__}:worker_app", factory=True, workers=workers, host=host,
                    port=port, log_level=log_level, access_log=False)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def worker_app() -> FastAPI:
    """The app of one worker of `serve --workers N` (uvicorn calls it in each process)."""
    from driftloop.controller import project as projects

    if os.environ.get(WORKER_BUNDLE):
        return _bundle_app(Path(os.environ[WORKER_BUNDLE]))
    project = projects.open_project(Path(os.environ[WORKER_SPEC]))
    poll = os.environ.get(WORKER_POLL)
    return _app(project, float(poll) if poll else None)


def _app(project: Project, poll_interval: float | None) -> FastAPI:
    """The prediction server with the dashboard at /ui."""
    from driftloop.server import app as apps
    from driftloop.ui import dashboard as dashboards

    dashboard = dashboards.router(project.store, public=project.spec.serving.public_dashboard)
    return apps.create_app(project, poll_interval=poll_interval, routers=[dashboard])


def serve_bundle(path: Path, host: str, port: int, log_level: str, workers: int = 1) -> None:
    """Serve the bundle at `path`; a bundle that changed after packaging is refused here,
    before any worker starts."""
    import uvicorn

    from driftloop.store import bundles

    opened = console.guard(lambda: bundles.open_bundle(path))
    version = opened.version.version
    console.info(f"serving {opened.pipeline} v{version} from {path} on http://{host}:{port}"
                 + (f" with {workers} workers" if workers > 1 else ""))
    if workers > 1:
        _run_workers({WORKER_BUNDLE: str(path.resolve())}, workers, host, port, log_level)
        return
    app = console.guard(lambda: _bundle_app(path, opened))
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
    finally:
        app.state.driftloop.project.close()


def _bundle_app(path: Path, opened: Bundle | None = None) -> FastAPI:
    """The read-only server of the bundle at `path` (`server.bundled`)."""
    from driftloop.server import app as apps
    from driftloop.server import bundled
    from driftloop.store import bundles

    opened = opened or bundles.open_bundle(path)
    project = bundled.open_bundle_project(opened, bundled.log_url())
    return apps.create_app(project, bundle=opened)


def ui(
    spec: Path = options.SPEC,
    host: str = typer.Option("127.0.0.1", help="Address to bind (0.0.0.0 exposes it)."),
    port: int = typer.Option(8001, min=0, max=65535, help="Port to listen on."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve the dashboard alone, over the store (no models loaded): pipelines, timelines,
    lineage, serving stats. Log in with a token that has the view role."""
    import uvicorn

    from driftloop.controller import project as projects
    from driftloop.ui import dashboard_app as apps

    project = console.guard(lambda: projects.open_project(spec))
    try:
        app = apps.create_app(project)
        console.info(f"dashboard of {project.name} on http://{host}:{port}/ui/")
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                    **logs.uvicorn_options())  # type: ignore[arg-type]
    finally:
        project.close()


@tokens.command("create")
def create(
    name: str = typer.Argument(..., help="A name for the token (shown in the audit log)."),
    role: list[str] = typer.Option(
        ..., "--role", "-r",
        help="predict, feedback, admin, view (dashboard) or ingest (POST /v1/batches); repeat.",
    ),
    spec: Path = options.SPEC,
    actor: str | None = options.ACTOR,
    bundle: BundleTokens = None,
    secret_env: Annotated[str | None, typer.Option(
        "--secret-env", help="Take the secret from this environment variable (made by a secret "
        "store, e.g. DRIFTLOOP_TOKEN) instead of making one; it is not printed.")] = None,
) -> None:
    """Create a token and print its secret once (only its sha256 is stored)."""
    from driftloop.server import auth

    given = None if secret_env is None else os.environ.get(secret_env)
    if secret_env is not None and not given:
        console.fail(f"--secret-env: environment variable {secret_env} is not set")
    serving_store, project = _serving_store(spec, bundle)
    who = actor or getpass.getuser()
    if given is not None:
        token = console.guard(lambda: auth.register_secret(serving_store, name, given, role,
                                                           actor=who))
        project.close()
        console.ok(f"token {token.name!r} registered with roles {', '.join(token.roles)} for "
                   f"the secret in ${secret_env} (only its sha256 is stored)")
        return
    token, secret = console.guard(lambda: auth.create_token(serving_store, name, role, actor=who))
    project.close()
    console.ok(f"token {token.name!r} created with roles {', '.join(token.roles)}")
    console.print("secret (shown only now; send it as `Authorization: Bearer <secret>`):")
    console.stdout.print(secret, markup=False, highlight=False, soft_wrap=True)


@tokens.command("list")
def list_tokens(spec: Path = options.SPEC, bundle: BundleTokens = None) -> None:
    """Tokens with their roles and state (secrets are never shown again)."""
    serving_store, project = _serving_store(spec, bundle)
    found = serving_store.list_tokens()
    project.close()
    table = console.table("name", "roles", "created", "revoked")
    for token in found:
        table.add_row(
            token.name,
            ", ".join(token.roles),
            f"{token.created_at:%Y-%m-%d %H:%M}",
            "" if token.revoked_at is None else f"{token.revoked_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@tokens.command("revoke")
def revoke(
    name: str = typer.Argument(..., help="The token to revoke."),
    spec: Path = options.SPEC,
    actor: str | None = options.ACTOR,
    bundle: BundleTokens = None,
) -> None:
    """Revoke a token; running servers refuse it within one poll interval."""
    serving_store, project = _serving_store(spec, bundle)
    token = console.guard(
        lambda: serving_store.revoke_token(name, actor=actor or getpass.getuser())
    )
    project.close()
    console.ok(f"token {token.name!r} revoked")


def _serving_store(spec: Path, bundle: Path | None) -> tuple[ServingStore, Project]:
    from driftloop.controller import project as projects
    from driftloop.server import bundled
    from driftloop.store import bundles, serving

    if bundle is None:
        project = console.guard(lambda: projects.open_project(spec))
    else:
        opened = console.guard(lambda: bundles.open_bundle(bundle))
        project = console.guard(lambda: bundled.open_bundle_project(opened, bundled.log_url()))
    return serving.ServingStore(project.store), project
