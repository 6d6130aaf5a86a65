"""Schema migrations of the metadata store, run from code (no alembic.ini needed).

`MetadataStore.open` calls `upgrade`; tests call `current_revision` and `head_revision`. The
Alembic environment (`env.py`) and the revisions (`versions/`) live next to this file, so
`script_location` is this package's folder wherever driftloop is installed.
"""

from __future__ import annotations

import re
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
    tables. SQLite's write lock serialises them already.

    A database already at the newest revision is told from one query (`is_current`), so
    opening a store imports no Alembic then."""
    if revision == "head" and is_current(engine):
        return
    from alembic import command

    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK)))
        command.upgrade(alembic_config(connection), revision)  # type: ignore[arg-type]


_REVISION = re.compile(r"^(down_)?revision\b[^=]*=\s*(?:None|[\"']([^\"']+)[\"'])", re.M)


def shipped_head() -> str | None:
    """The newest revision in `versions/`, read from the revision files' ``revision`` and
    ``down_revision`` lines without Alembic; None unless exactly one revision is no other's
    parent (then Alembic decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (HERE / "versions").glob("*.py"):
        for down, name in _REVISION.findall(path.read_text(encoding="utf-8")):
            if name:
                (parents if down else revisions).add(name)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def is_current(engine: sa.Engine) -> bool:
    """Whether the database behind `engine` is at `shipped_head()` (False when unsure: no
    version table yet, several heads)."""
    head = shipped_head()
    if head is None:
        return False
    try:
        with engine.connect() as connection:
            found = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    except sa.exc.DBAPIError:
        return False
    return [row[0] for row in found] == [head]


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database behind `engine` is at; None for an empty database."""
    from alembic.runtime import migration

    with engine.connect() as connection:
        return migration.MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this version of driftloop."""
    from alembic import script

    return script.ScriptDirectory.from_config(alembic_config()).get_current_head()  # type: ignore[arg-type]
