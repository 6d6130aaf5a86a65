"""Telling a store that cannot take writes now (its disk is full, the database is down or
unreachable) from any other failure.

The server's prediction log keeps rows in memory and reports the reason on /readyz; the
controller stops ingesting with that reason and retries (`errors.TemporaryError`). Both
resume by themselves: nothing here is permanent, and a transaction that failed on a full
disk was rolled back whole (SQLite and PostgreSQL both guarantee it), so nothing stored is
half-written.

    >>> storage_fault(OSError(28, "No space left on device"))
    'the disk is full'
    >>> storage_fault(ValueError("bad input")) is None
    True
"""

from __future__ import annotations

import errno

import sqlalchemy as sa

FULL = "the disk is full"
DOWN = "the database is unreachable"

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_FULL_TEXT = ("database or disk is full", "no space left on device", "could not extend file",
              "disk full", "out of disk space")
_DOWN_TEXT = ("connection refused", "could not connect", "server closed the connection",
              "connection is closed", "terminating connection", "the database system is",
              "unable to open database file", "connection timed out")


def storage_fault(exc: BaseException) -> str | None:
    """`FULL` or `DOWN` if `exc` (or an exception it was raised from) says the store cannot
    take writes now; None otherwise."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _FULL_ERRNOS:
            return FULL
        text = str(current).lower()
        if isinstance(current, sa.exc.DBAPIError | sa.exc.OperationalError) or _is_driver(current):
            if any(part in text for part in _FULL_TEXT):
                return FULL
            if any(part in text for part in _DOWN_TEXT) or getattr(
                    current, "connection_invalidated", False):
                return DOWN
        current = current.__cause__ or current.__context__
    return None


def _is_driver(exc: BaseException) -> bool:
    """A DB-API driver's error (sqlite3, psycopg), found by its module."""
    return type(exc).__module__.split(".")[0] in ("sqlite3", "psycopg", "_sqlite3")
