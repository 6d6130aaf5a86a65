"""Options that several `driftloop` commands take, defined once so that each is spelt, shortened
and explained the same way in every command.

A command that writes a file or a folder names it with ``--out`` (``-o``); ``--json`` prints
one JSON document with stable keys instead of tables (`cli.json_output`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

SPEC = typer.Option(Path("driftloop.yaml"), "--spec", "-s", help="The pipeline spec.")
"""``--spec``/``-s``: the pipeline spec (``spec: Path = options.SPEC``)."""

ACTOR = typer.Option(
    None, "--actor", help="Who does this (kept with what it changes); default: the OS user."
)
"""``--actor``: who acts, kept in the audit log or on the version
(``actor: str | None = options.ACTOR``)."""

Json = Annotated[bool, typer.Option(
    "--json", help="Print one JSON document (stable keys), no tables.")]
"""``--json`` (``as_json: options.Json = False``)."""
