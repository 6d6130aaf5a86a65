"""The `driftloop` command: sub-commands are defined in the modules beside this one and
registered here by name (`Commands`), and each command's module is imported only when that
command runs (`cli.lazy`). Heavy imports happen inside the commands."""

from __future__ import annotations

from typing import ClassVar

import typer

from driftloop.cli import lazy, logs


class Commands(lazy.LazyGroup):
    """`driftloop`'s sub-commands: name -> ``"module:attribute"`` in `driftloop.cli`, in the
    order ``--help`` lists them. The names are written here, not found by importing the
    modules, so that a command imports only its own module."""

    lazy_commands: ClassVar[dict[str, str]] = {
        "init": "project_commands:init",
        "check": "project_commands:check",
        "ingest": "data:ingest",
        "status": "status:status",
        "tick": "loop:tick",
        "run": "loop:run",
        "retrain": "loop:retrain",
        "gc": "gc:gc",
        "notifications": "notifications:notifications",
        "demo": "demo:demo",
        "backtest": "backtest_command:backtest",
        "report": "report_command:report",
        "serve": "serve:serve",
        "package": "deploy:package",
        "ui": "serve:ui",
        "batches": "data:batches_app",
        "models": "model_commands:app",
        "regions": "region_commands:app",
        "notes": "note_commands:app",
        "deploy": "deploy:app",
        "tokens": "serve:tokens",
    }


app = typer.Typer(
    name="driftloop",
    help="Continuous training: ingest, validate, detect drift, retrain, gate, version, loop.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=Commands,
)


def _print_version(asked: bool) -> None:
    if asked:
        import driftloop

        typer.echo(f"driftloop {driftloop.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version,
        help="Print the version and exit."),
    log_format: logs.Format | None = typer.Option(
        None, "--log-format", help="Log lines as text or JSON objects (on stderr)."),
    log_level: str | None = typer.Option(
        None, "--log-level", help="debug, info, warning (default) or error."),
) -> None:
    """Continuous training: ingest, validate, detect drift, retrain, gate, version, loop."""
    if log_format is not None or log_level is not None:
        logs.configure(log_format or "text", log_level or "warning")

