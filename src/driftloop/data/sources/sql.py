"""`SqlSource`: rows of a table or query, read incrementally in the order of a timestamp column.

Built by `base.build_source` from a `core.config.SqlSourceSpec`; polled by the controller. Any
SQLAlchemy URL works; ``postgresql://`` is read with psycopg 3.

Each poll reads the rows whose timestamp is greater than the cursor, in timestamp order,
`batch_rows` at a time. A batch always ends at the end of a timestamp: when the page limit falls
among rows sharing one timestamp, the batch is extended to all of them, so no row is split off
at the boundary (lost or read twice). Rows with a NULL timestamp are never read, and a row that
arrives later with a timestamp at or below the cursor is not seen: the timestamp must grow with
arrival time (an insertion time, not an event time that can be late). A quarantine reason
names a row of a batch by its place in the batch, counted from 1 (rows in timestamp order; the
batch's `source_uri` gives its timestamp range).

Values go to the database as bound parameters; the table and column names are quoted by
SQLAlchemy; a `query` is used as a subquery (``SELECT * FROM (<query>) AS src WHERE ...``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa

from driftloop.core import config, errors
from driftloop.core.types import JSON
from driftloop.data.sources import base

if TYPE_CHECKING:  # imported to read rows, not to build the source
    import pandas as pd


class SqlSource(base.Source):
    """Rows of `table` (``name`` or ``schema.name``) or of `query`, newer than the cursor.

    >>> source = SqlSource("postgresql://me:secret@db/prod", table="events", timestamp="at")
    >>> source.key
    'sql:postgresql+psycopg://me:***@db/prod:table:events'
    """

    kind: ClassVar[str] = "sql"

    def __init__(
        self,
        url: str,
        table: str | None = None,
        query: str | None = None,
        timestamp: str = "timestamp",
        batch_rows: int = 50_000,
    ) -> None:
        if (table is None) == (query is None):
            raise errors.ConfigError(
                "SqlSource needs exactly one of `table` or `query`; got "
                f"table={table!r}, query={query!r}"
            )
        if batch_rows < 1:
            raise errors.ConfigError(f"`batch_rows` of SqlSource must be >= 1; got {batch_rows}")
        self.url = url
        self.table = table
        self.query = query
        self.timestamp = timestamp
        self.batch_rows = batch_rows

    @classmethod
    def from_spec(cls, spec: config.SqlSourceSpec, base_dir: Path) -> SqlSource:
        return cls(
            spec.url,
            table=spec.table,
            query=spec.query,
            timestamp=spec.timestamp,
            batch_rows=spec.batch_rows,
        )

    @property
    def key(self) -> str:
        if self.table is not None:
            what = f"table:{self.table}"
        else:
            what = "query:" + hashlib.sha256((self.query or "").encode()).hexdigest()[:16]
        return f"sql:{_url(self.url).render_as_string(hide_password=True)}:{what}"

    def __repr__(self) -> str:
        url = sa.make_url(self.url).render_as_string(hide_password=True)
        return super().__repr__().replace(repr(self.url), repr(url), 1)

    def poll(self, cursor: JSON | None) -> Iterator[base.RawBatch]:
        """Yield batches newer than `cursor` = ``{"after": value, "type": ...}`` until caught up."""
        from driftloop.data import frames  # pandas

        after = _load_cursor(cursor)
        engine = sa.create_engine(_url(self.url))
        try:
            while True:
                frame = self._read(engine, after)
                if frame.empty:
                    return
                last = frame[self.timestamp].iloc[-1]
                if len(frame) >= self.batch_rows:  # the page may end inside a run of ties
                    frame = self._read(engine, after, through=_to_python(last))
                state = _dump_cursor(last)
                yield base.RawBatch(
                    source_uri=self._uri(after, last),
                    fingerprint=frames.fingerprint(frame),
                    frame=frame.reset_index(drop=True),
                    error=None,
                    cursor=state,
                )
                if len(frame) < self.batch_rows:
                    return
                after = _to_python(last)
        finally:
            engine.dispose()

    def _read(self, engine: sa.Engine, after: Any, through: Any = None) -> pd.DataFrame:
        import pandas as pd

        """Rows with after < timestamp (<= through), in timestamp order; a page unless `through`."""
        if self.table is not None:
            schema, _, name = self.table.rpartition(".")
            src: Any = sa.table(name, sa.column(self.timestamp), schema=schema or None)
        else:
            text = (self.query or "").strip().rstrip(";")
            src = sa.text(text).columns(sa.column(self.timestamp)).subquery("src")
        column = src.c[self.timestamp]
        stmt: sa.Select[Any] = sa.select(sa.literal_column("*")).select_from(src).order_by(column)
        if after is not None:
            stmt = stmt.where(column > sa.bindparam("after", after))
        if through is not None:
            stmt = stmt.where(column <= sa.bindparam("through", through))
        else:
            stmt = stmt.limit(self.batch_rows)
        try:
            with engine.connect() as conn:
                return pd.read_sql(stmt, conn)
        except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:
            raise self._error(exc) from exc

    def _error(self, exc: Exception) -> errors.DriftloopError:
        import pandas as pd

        cause = exc.__cause__ if isinstance(exc, pd.errors.DatabaseError) else exc
        reason = str(getattr(cause, "orig", None) or cause).strip().splitlines()[0]
        where = self.table if self.table is not None else "the query"
        message = f"cannot read {where} from {self.key.split(':', 1)[1]}: {reason}"
        if isinstance(cause, sa.exc.OperationalError | sa.exc.InterfaceError):
            return errors.TemporaryError(message + "; will retry", delay=30.0, source=self.key)
        return errors.PermanentError(
            message + f"; check source.table / source.query and that column {self.timestamp!r} "
            "exists",
            source=self.key,
        )

    def _uri(self, after: Any, last: Any) -> str:
        start = "" if after is None else _text(after)
        return f"{self.key}#{self.timestamp}=({start},{_text(last)}]"


def _url(url: str) -> sa.URL:
    """The SQLAlchemy URL, with a bare ``postgresql://`` read through psycopg 3."""
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _to_python(value: Any) -> Any:
    """A pandas / numpy scalar as the plain Python value a DB driver binds."""
    import pandas as pd

    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item"):
        return value.item()
    return value


def _text(value: Any) -> str:
    value = _to_python(value)
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _dump_cursor(last: Any) -> JSON:
    """The JSON cursor for the last timestamp read; keeps its type so it binds back the same."""
    value = _to_python(last)
    if isinstance(value, datetime):
        return {"after": value.isoformat(), "type": "datetime"}
    if isinstance(value, bool | int | float | str):
        return {"after": value, "type": type(value).__name__}
    return {"after": str(value), "type": "str"}


def _load_cursor(cursor: JSON | None) -> Any:
    """The value to read after, from a cursor written by `_dump_cursor` (None: from the start)."""
    if not cursor or cursor.get("after") is None:
        return None
    value = cursor["after"]
    if cursor.get("type") == "datetime":
        return datetime.fromisoformat(value)
    return value

