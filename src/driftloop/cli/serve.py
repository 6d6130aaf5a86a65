"""`driftloop serve` (the prediction server under uvicorn, with the dashboard at /ui),
`driftloop ui` (the dashboard alone, over the store) and `driftloop tokens create / list /
revoke` (API tokens; the secret is printed once and only its sha256 is stored).

Registered by `cli.main`. The server binds 127.0.0.1 unless told otherwise: exposing it is a
deliberate `--host 0.0.0.0`.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from driftloop.cli import console, durations, logs

if TYPE_CHECKING:
    from driftloop.controller.project import Project
    from driftloop.store.serving import ServingStore

SPEC = typer.Option(Path("driftloop.yaml"), "--spec", "-s", help="The pipeline spec.")

tokens = typer.Typer(help="API tokens of the prediction server.", no_args_is_help=True)


def serve(
    spec: Path = SPEC,
    host: str = typer.Option("127.0.0.1", help="Address to bind (0.0.0.0 exposes the server)."),
    port: int = typer.Option(8000, min=0, max=65535, help="Port to listen on."),
    poll_interval: str | None = typer.Option(
        None, "--poll-interval", help=f"Time between alias checks (hot swap): {durations.HELP}."
    ),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve the pipeline's champion: predictions, feedback, admin, /metrics, /docs, /ui."""
    import uvicorn

    from driftloop.controller import project as projects
    from driftloop.server import app as apps
    from driftloop.ui import dashboard as dashboards

    poll = None if poll_interval is None else durations.parse(
        poll_interval, "--poll-interval").total_seconds()
    project = console.guard(lambda: projects.open_project(spec))
    try:
        dashboard = dashboards.router(project.store, public=project.spec.serving.public_dashboard)
        app = console.guard(lambda: apps.create_app(
            project, poll_interval=poll, routers=[dashboard]))
        console.info(f"serving {project.name} on http://{host}:{port} (docs: /docs)")
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                    **logs.uvicorn_options())  # type: ignore[arg-type]
    finally:
        project.close()


def ui(
    spec: Path = SPEC,
    host: str = typer.Option("127.0.0.1", help="Address to bind (0.0.0.0 exposes it)."),
    port: int = typer.Option(8001, min=0, max=65535, help="Port to listen on."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve the dashboard alone, over the store (no models loaded): pipelines, timelines,
    lineage, serving stats. Log in with a token that has the view role."""
    import uvicorn

    from driftloop.controller import project as projects
    from driftloop.ui import app as apps

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
    spec: Path = SPEC,
    actor: str | None = typer.Option(None, help="Who creates it; default: the OS user."),
    secret_env: str | None = typer.Option(
        None, "--secret-env", help="Take the secret from this environment variable (made by "
        "a secret store, e.g. DRIFTLOOP_TOKEN) instead of making one; it is not printed."),
) -> None:
    """Create a token and print its secret once (only its sha256 is stored)."""
    import os

    from driftloop.server import auth

    given = None if secret_env is None else os.environ.get(secret_env)
    if secret_env is not None and not given:
        console.fail(f"--secret-env: environment variable {secret_env} is not set")
    serving_store, project = _serving_store(spec)
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
def list_tokens(spec: Path = SPEC) -> None:
    """Tokens with their roles and state (secrets are never shown again)."""
    serving_store, project = _serving_store(spec)
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
    spec: Path = SPEC,
    actor: str | None = typer.Option(None, help="Who revokes it; default: the OS user."),
) -> None:
    """Revoke a token; running servers refuse it within one poll interval."""
    serving_store, project = _serving_store(spec)
    token = console.guard(
        lambda: serving_store.revoke_token(name, actor=actor or getpass.getuser())
    )
    project.close()
    console.ok(f"token {token.name!r} revoked")


def _serving_store(spec: Path) -> tuple[ServingStore, Project]:
    from driftloop.controller import project as projects
    from driftloop.store import serving

    project = console.guard(lambda: projects.open_project(spec))
    return serving.ServingStore(project.store), project
