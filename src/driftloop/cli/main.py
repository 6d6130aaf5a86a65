"""The `driftloop` command: sub-commands are defined in the modules beside this one and
registered here. Heavy imports happen inside the commands, so `driftloop --help` is fast."""

from __future__ import annotations

import typer

from driftloop.cli import (
    backtest_command,
    data,
    demo,
    deploy,
    gc,
    logs,
    loop,
    model_commands,
    model_formats,
    note_commands,
    notifications,
    project_commands,
    region_commands,
    report_command,
    serve,
    status,
)

app = typer.Typer(
    name="driftloop",
    help="Continuous training: ingest, validate, detect drift, retrain, gate, version, loop.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
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


app.command()(project_commands.init)
app.command()(project_commands.check)
app.command()(data.ingest)
app.add_typer(data.batches_app, name="batches")
model_commands.app.command("export")(model_formats.export)
model_commands.app.command("import")(model_formats.import_model)
app.add_typer(model_commands.app, name="models")
app.add_typer(region_commands.app, name="regions")
app.add_typer(note_commands.app, name="notes")
app.command()(status.status)
app.command()(loop.tick)
app.command()(loop.run)
app.command()(loop.retrain)
app.command()(gc.gc)
app.command()(notifications.notifications)
app.command()(demo.demo)
app.command()(backtest_command.backtest)
app.command()(report_command.report)
app.command()(serve.serve)
app.command()(deploy.package)
app.add_typer(deploy.app, name="deploy")
app.command()(serve.ui)
app.add_typer(serve.tokens, name="tokens")
