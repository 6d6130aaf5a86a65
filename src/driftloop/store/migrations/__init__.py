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


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the schema behind `engine` up to `revision` (default: the newest), atomically."""
    from alembic import command

    with engine.begin() as connection:
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
