"""The column types of the store's tables, the same on SQLite and PostgreSQL: JSON documents,
surrogate keys and aware UTC timestamps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from driftloop.core import clock


class Json(sa.types.TypeDecorator[Any]):
    """A JSON document column: JSONB on PostgreSQL, JSON text elsewhere.

    The same as ``sa.JSON().with_variant(postgresql.JSONB(), "postgresql")`` (the migrations'
    spelling), but the PostgreSQL dialect is imported only to talk to PostgreSQL: a SQLite
    store's process (a cron job's `driftloop tick`) never pays for it."""

    impl = sa.JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects import postgresql

            return dialect.type_descriptor(postgresql.JSONB())
        return dialect.type_descriptor(sa.JSON())


Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""A surrogate key: BIGINT, except INTEGER on SQLite so it aliases the rowid."""


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp that goes in and comes out as an aware UTC datetime.

    Naive input is taken to be UTC already. SQLite stores naive UTC text; PostgreSQL stores
    `timestamptz`.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        when = clock.as_utc(value)
        return when.replace(tzinfo=None) if dialect.name == "sqlite" else when

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else clock.as_utc(value)
