"""Engines and transactions for the metadata store; `store.metadata.MetadataStore` calls these.

`create_engine(url)` understands `sqlite:///path.db` (WAL, incremental auto-vacuum for a new
file, synchronous=NORMAL, foreign keys, busy timeout; opening a connection never writes, so it
never waits for another process's write lock), `sqlite://` (in memory, one shared
connection) and `postgresql://...` (psycopg 3).
`transaction(engine, write=...)` is one transaction; on SQLite a writing one starts with
`BEGIN IMMEDIATE`, so two writers queue on the busy timeout instead of failing when a read
lock cannot be upgraded. `bulk_insert` is the fast path for many rows (metric points, the
prediction log).
"""

from __future__ import annotations

import contextlib
import logging
import operator
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, pool

from driftloop.core import errors, secrecy

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000


def create_engine(url: str) -> sa.Engine:
    """An engine for a store URL; raises `ConfigError` for a scheme the store does not speak."""
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError):  # ValueError: a port that is no number
        shown = secrecy.redact_url(url)
        raise errors.ConfigError(
            f"store URL {shown!r} is not a database URL; use sqlite:///path.db or "
            "postgresql://user@host/db",
            url=shown,
        ) from None  # the parser's message repeats the URL with its password
    backend = parsed.get_backend_name()
    log.debug("opening the %s store at %s", backend, parsed.render_as_string(hide_password=True))
    if backend == "sqlite":
        return _sqlite(parsed)
    if backend in ("postgresql", "postgres"):
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        return sa.create_engine(parsed, pool_pre_ping=True)
    raise errors.ConfigError(
        f"store URL scheme {parsed.drivername!r} is not supported; use sqlite:///path.db, "
        "sqlite:// (in memory) or postgresql://user@host/db",
        url=parsed.render_as_string(hide_password=True),
    )


def _sqlite(url: sa.URL) -> sa.Engine:
    memory = url.database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if memory:
        kwargs["poolclass"] = pool.StaticPool
    else:
        Path(str(url.database)).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy (the "begin" hook below) own BEGIN/COMMIT instead of pysqlite.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if not memory:
            if cursor.execute("PRAGMA page_count").fetchone()[0] == 0:
                # a new file (before its first table, the only time it takes effect): freed
                # pages then go back to the file system in slices (`store.retention.compact`).
                # Never on a file with tables: there the pragma rewrites a header field, a
                # write, and opening a connection would wait for another writer's lock.
                cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        write = connection.get_execution_options().get("driftloop_write", False)
        # Straight to the driver: through `exec_driver_sql` this costs as much as a query.
        driver: Any = connection.connection.driver_connection
        driver.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def insert(dialect: str, table: sa.Table) -> Any:
    """An INSERT that knows ON CONFLICT, for the backend named `dialect` (SQLite or PostgreSQL)."""
    if dialect == "postgresql":  # imported here: a SQLite store never loads this dialect
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


@contextlib.contextmanager
def transaction(engine: sa.Engine, *, write: bool) -> Iterator[sa.Connection]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    with engine.connect() as connection:
        if write:
            connection.execution_options(driftloop_write=True)
        with connection.begin():
            yield connection


SQLITE_CHUNK_VALUES = 999
"""Values per multi-row INSERT on SQLite (its limit of a statement's parameters before 3.32)."""


def bulk_insert(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: Iterable[tuple[Any, ...]],
    constants: dict[str, Any], *, skip_conflicts_on: str | None = None,
) -> None:
    """INSERT `rows` (values of `columns`) plus `constants` (the same in every row) through the
    driver; with `skip_conflicts_on` (a unique column), rows whose value there is already
    stored are skipped (``ON CONFLICT DO NOTHING``).

    Core's executemany converts every value of every row through its column type; here the
    constants are converted once and per-row values only where their type needs it (plain
    strings and numbers do not), which makes bulk metric logging several times faster.

    On SQLite the rows go as multi-row INSERTs (`SQLITE_CHUNK_VALUES` values each): the
    driver's executemany runs the statement once per row and lets go of the GIL around each
    run, and in a busy server (the prediction log's writer beside the request thread) each
    hand-over of the GIL cost about as much CPU as the row's insert (measured: 33 against
    23 µs a row).
    """
    dialect = conn.dialect
    names = [*columns, *constants]
    bound = tuple(
        _converter(table, name, dialect)(value) for name, value in constants.items())
    converters = [(i, _converter(table, name, dialect)) for i, name in enumerate(columns)]
    converters = [(i, convert) for i, convert in converters if convert is not _same]
    params: list[tuple[Any, ...]] = []
    for row in rows:
        if converters:
            values = list(row)
            for i, convert in converters:
                values[i] = convert(values[i])
            row = tuple(values)
        params.append(tuple(row) + bound)
    if dialect.name == "sqlite":
        _sqlite_insert(conn, table, names, params, skip_conflicts_on)
        return
    statement = insert(dialect.name, table)
    if skip_conflicts_on is not None:
        statement = statement.on_conflict_do_nothing(index_elements=[skip_conflicts_on])
    compiled = statement.compile(dialect=dialect, column_keys=names)
    if compiled.positional:
        order = [names.index(name) for name in compiled.positiontup or ()]
        pick = operator.itemgetter(*order)
        driver: list[Any] = [pick(values) for values in params] if len(order) > 1 else params
    else:
        driver = [dict(zip(names, values, strict=True)) for values in params]
    conn.exec_driver_sql(compiled.string, driver)


def _sqlite_insert(
    conn: sa.Connection, table: sa.Table, names: list[str], params: list[tuple[Any, ...]],
    skip_conflicts_on: str | None,
) -> None:
    """`params` (values of `names`) as multi-row INSERTs on SQLite."""
    quote = conn.dialect.identifier_preparer.quote
    head = f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, names))}) VALUES "
    group = "(" + ", ".join(["?"] * len(names)) + ")"
    tail = ("" if skip_conflicts_on is None
            else f" ON CONFLICT ({quote(skip_conflicts_on)}) DO NOTHING")
    step = max(1, SQLITE_CHUNK_VALUES // len(names))
    for start in range(0, len(params), step):
        chunk = params[start:start + step]
        conn.exec_driver_sql(head + ", ".join([group] * len(chunk)) + tail,
                             tuple(value for values in chunk for value in values))


def _same(value: Any) -> Any:
    return value


def _converter(table: sa.Table, name: str, dialect: sa.Dialect) -> Any:
    processor = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
    return _same if processor is None else processor
