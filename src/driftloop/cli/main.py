"""The `driftloop` command: sub-commands are defined in the modules beside this one and
registered here. Heavy imports happen inside the commands, so `driftloop --help` is fast."""

from __future__ import annotations

import typer

from driftloop.cli import (
    backtest,
    data,
    demo,
    deploy,
    gc,
    loop,
    model_formats,
    models,
    notes,
    notifications,
    project,
    regions,
    report,
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
app.command()(project.init)
app.command()(project.check)
app.command()(data.ingest)
app.add_typer(data.batches_app, name="batches")
models.app.command("export")(model_formats.export)
models.app.command("import")(model_formats.import_model)
app.add_typer(models.app, name="models")
app.add_typer(regions.app, name="regions")
app.add_typer(notes.app, name="notes")
app.command()(status.status)
app.command()(loop.tick)
app.command()(loop.run)
app.command()(loop.retrain)
app.command()(gc.gc)
app.command()(notifications.notifications)
app.command()(demo.demo)
app.command()(backtest.backtest)
app.command()(report.report)
app.command()(serve.serve)
app.command()(deploy.package)
app.add_typer(deploy.app, name="deploy")
app.command()(serve.ui)
app.add_typer(serve.tokens, name="tokens")
