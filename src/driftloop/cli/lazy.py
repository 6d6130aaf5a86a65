"""A command group that imports a sub-command's module only when that command is used.

Click's documented `LazyGroup` pattern (``list_commands`` from a table of names,
``get_command`` imports on demand), on Typer's group class: `driftloop tick` then imports
``cli.loop`` and not the modules of the other twenty commands, which a cron job pays for on
every run. ``driftloop --help`` still loads every command, to show each one's help line.

A table entry is ``"module:attribute"`` in `driftloop.cli`: a command function (registered
under the table's name, as ``app.command(name)`` would) or a `typer.Typer` (a group).
"""

from __future__ import annotations

import importlib
from typing import Any, ClassVar

import typer
from typer.core import TyperGroup


class LazyGroup(TyperGroup):
    """Sub-commands from `lazy_commands`, loaded once each; subclasses set the table.

    Typer builds the group with keyword arguments of its own, so the table is a class attribute
    (``Typer(cls=...)`` takes a class, not an instance)."""

    lazy_commands: ClassVar[dict[str, str]] = {}

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.commands, *(name for name in self.lazy_commands if name not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            self.commands[cmd_name] = load(cmd_name, self.lazy_commands[cmd_name])
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and args[0] not in self.lazy_commands:
            for name in self.lazy_commands:  # a typo: Typer's "Did you mean" reads loaded ones
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)


def load(name: str, where: str) -> Any:
    """The click command `where` (``"module:attribute"`` in `driftloop.cli`) names."""
    module, attribute = where.split(":")
    found = getattr(importlib.import_module(f"driftloop.cli.{module}"), attribute)
    command: Any
    if isinstance(found, typer.Typer):
        command = typer.main.get_group(found)
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(found)
        command = typer.main.get_command(single)
    command.name = name
    return command
