"""Cron schedules in an IANA time zone, correct across daylight-saving changes.

`CronSchedule` is used by the schedule trigger (`policy.triggers.ScheduleTrigger`) to ask
"did an occurrence fall in (anchor, now]?". croniter iterates over *local wall-clock* times
(naive), zoneinfo maps each to an instant. The daylight-saving rules follow cronie:

- a local time skipped by spring-forward (02:30 in Europe/Berlin on 2024-03-31) runs once,
  moved on by the jump (at 03:30 local); two local times that land on the same instant (02:00
  and 03:00 both become 03:00) run once;
- a local time repeated by fall-back (02:00 on 2024-10-27) runs once, in its first occurrence,
  unless the schedule runs every hour (its hour field is ``*``): then it follows real time and
  runs in both repeated hours, so an hourly job still runs once per elapsed hour.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from driftloop.core import errors

# No time zone moves its clocks by more than this; it bounds the look-around in local time.
_MAX_SHIFT = timedelta(hours=3)
_MAX_CANDIDATES = 10_000


class CronSchedule:
    """A cron expression read in the wall-clock time of `timezone`.

    >>> schedule = CronSchedule("30 2 * * *", "Europe/Berlin")
    >>> schedule.next_after(datetime(2024, 3, 30, 12, tzinfo=UTC)).isoformat()
    '2024-03-31T01:30:00+00:00'
    >>> CronSchedule("0 25 * * *")
    Traceback (most recent call last):
    ...
    driftloop.core.errors.ConfigError: schedule trigger: cron '0 25 * * *' is not valid: ...
    """

    def __init__(self, cron: str, timezone: str = "UTC") -> None:
        self.cron = cron
        self.timezone = timezone
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise errors.ConfigError(
                f"schedule trigger: time zone {timezone!r} (for cron {cron!r}) is not an IANA "
                "time zone; use a name such as 'UTC' or 'Europe/Berlin'"
            ) from exc
        try:
            expanded = croniter(cron).expanded
        except (CroniterError, ValueError, KeyError) as exc:
            raise errors.ConfigError(
                f"schedule trigger: cron {cron!r} is not valid: {exc}; write five fields "
                "'minute hour day-of-month month day-of-week', e.g. '0 2 * * *'"
            ) from exc
        hours = expanded[1]
        self._every_hour = hours == ["*"] or set(hours) == set(range(24))

    def __repr__(self) -> str:
        return f"CronSchedule(cron={self.cron!r}, timezone={self.timezone!r})"

    def next_after(self, after: datetime) -> datetime:
        """The first occurrence strictly after `after` (aware), as an aware UTC datetime."""
        after = after.astimezone(UTC)
        local = after.astimezone(self.zone).replace(tzinfo=None)
        quick = self._quick_next(after, local)
        if quick is not None:
            return quick
        try:
            candidates = croniter(self.cron, local - _MAX_SHIFT)
            best: datetime | None = None
            for _ in range(_MAX_CANDIDATES):
                naive: datetime = candidates.get_next(datetime)
                if best is not None and naive > best.astimezone(self.zone).replace(
                        tzinfo=None) + _MAX_SHIFT:
                    return best
                for instant in self._instants(naive):
                    if instant > after and (best is None or instant < best):
                        best = instant
        except CroniterError as exc:
            raise errors.ConfigError(
                f"schedule trigger: cron {self.cron!r} never occurs after {after.isoformat()}: "
                f"{exc}") from exc
        if best is None:
            raise errors.ConfigError(
                f"schedule trigger: cron {self.cron!r} has no occurrence after {after.isoformat()}")
        return best

    def between(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Every occurrence in (start, end], in time order, as aware UTC datetimes."""
        end = end.astimezone(UTC)
        when = self.next_after(start)
        while when <= end:
            yield when
            when = self.next_after(when)

    def _quick_next(self, after: datetime, local: datetime) -> datetime | None:
        """The common case: no offset change within `_MAX_SHIFT` of `after` or of the answer."""
        offsets = {(after + step).astimezone(self.zone).utcoffset()
                   for step in (-_MAX_SHIFT, timedelta(0), _MAX_SHIFT)}
        if len(offsets) != 1:
            return None
        try:
            naive: datetime = croniter(self.cron, local).get_next(datetime)
        except CroniterError:
            return None  # the general path reports it
        instant = naive.replace(tzinfo=self.zone).astimezone(UTC)
        if instant > after + _MAX_SHIFT:
            # Beyond the checked span: only trust it if no offset change lies between.
            if instant.astimezone(self.zone).utcoffset() not in offsets:
                return None
            if (instant - _MAX_SHIFT).astimezone(self.zone).utcoffset() not in offsets:
                return None
        return instant

    def _instants(self, naive: datetime) -> list[datetime]:
        """The instants a local wall-clock time stands for (0 or 1 extra in a DST change)."""
        first = naive.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        second = naive.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        if second > first and self._every_hour:
            return [first, second]  # a repeated hour of an hourly job: run in both
        return [first]
