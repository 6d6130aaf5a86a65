"""The `driftloop` command. Each sub-command lives in a module of its own beside this one."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="driftloop",
    help="Continuous training: ingest, validate, detect drift, retrain, gate, version, loop.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
