"""The clock, injected everywhere time matters (schedules, cooldowns, leases, backtests).

Production uses `SystemClock`; tests and `driftloop backtest` use `FakeClock`, which only moves
when told to. All times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Something that tells the time (aware, UTC)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock.

    >>> SystemClock().now().tzinfo is UTC
    True
    """

    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that moves only when told to; for tests and backtests.

    >>> clock = FakeClock(datetime(2024, 1, 1, tzinfo=UTC))
    >>> clock.advance(timedelta(hours=2)).isoformat()
    '2024-01-01T02:00:00+00:00'
    """

    def __init__(self, start: datetime) -> None:
        self.start = start
        self._now = as_utc(start)

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> datetime:
        self._now = as_utc(when)
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now = self._now + delta
        return self._now


def as_utc(when: datetime) -> datetime:
    """`when` as an aware UTC datetime; a naive one is taken to be UTC already."""
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)
