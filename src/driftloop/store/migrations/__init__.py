"""Schema migrations of the metadata store, run from code (no alembic.ini needed).

`MetadataStore.open` calls `upgrade`; tests call `current_revision` and `head_revision`. The
Alembic environment (`env.py`) and the revisions (`versions/`) live next to this file, so
`script_location` is this package's folder wherever driftloop is installed.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent


def alembic_config(connection: sa.Connection | None = None) -> object:
    """An `alembic.config.Config` for this folder; `connection` is what `env.py` migrates."""
    from alembic import config

    cfg = config.Config()
    cfg.set_main_option("script_location", str(HERE))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


MIGRATION_LOCK = 0x6472_6966_746C_6F6F
"""The PostgreSQL advisory lock key held while migrating (a constant: b"driftloo")."""


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the schema behind `engine` up to `revision` (default: the newest), atomically.

    Several controllers often start together on a new database; on PostgreSQL each migration
    first takes a transaction-scoped advisory lock, so they migrate one after the other (the
    later ones find the schema current and do nothing) instead of racing to create the same
    tables. SQLite's write lock serialises them already."""
    from alembic import command

    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK)))
        command.upgrade(alembic_config(connection), revision)  # type: ignore[arg-type]


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database behind `engine` is at; None for an empty database."""
    from alembic.runtime import migration

    with engine.connect() as connection:
        return migration.MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this version of driftloop."""
    from alembic import script

    return script.ScriptDirectory.from_config(alembic_config()).get_current_head()  # type: ignore[arg-type]
