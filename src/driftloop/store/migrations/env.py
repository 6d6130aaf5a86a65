"""Alembic environment of the metadata store; Alembic runs it during `migrations.upgrade`.

The connection comes in through `config.attributes["connection"]` (set by
`driftloop.store.migrations.alembic_config`); there is no alembic.ini and no URL here. Imported
outside a migration (e.g. by doctest collection) it does nothing.
"""

from __future__ import annotations

from alembic import context

from driftloop.store import tables


def run_migrations() -> None:
    """Migrate the connection handed over by the caller, online."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "driftloop migrations run from code: use driftloop.store.migrations.upgrade(engine)"
        )
    context.configure(
        connection=connection,
        target_metadata=tables.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if hasattr(context, "config"):  # only while Alembic is running this file
    run_migrations()
