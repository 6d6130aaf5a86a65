"""Deployment windows and freeze periods of `rollout:`: when a new version may go live.

`rollout.windows` lists the local times a promotion may happen in (any of them; none listed:
always), `rollout.freeze` the periods it may not (even inside a window). Each has its IANA time
zone, so one spec can say "Mon-Fri 02:00-05:00 in Berlin" and "Sat,Sun 01:00-06:00 in
Auckland". `policy.deploy_windows` computes from these when the next promotion may happen.

    rollout:
      strategy: canary
      windows:
        - {days: Mon-Fri, hours: "02:00-05:00", timezone: Europe/Berlin}
      freeze:
        - {start: 2026-12-20, end: 2027-01-04, timezone: Europe/Berlin, reason: year end}
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import date, datetime, time, timedelta
from typing import Annotated

import pydantic
from pydantic import Field

from driftloop.core.spec_base import Spec as _Spec

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name like 'Europe/Berlin' or 'UTC'"
        ) from exc
    return value


Zone = Annotated[str, pydantic.AfterValidator(_zone)]


def parse_days(text: str) -> frozenset[int]:
    """Weekdays (Monday = 0) from ``Mon-Fri``, ``Sat,Sun``, ``Fri-Mon`` or ``*``.

    >>> sorted(parse_days("Mon-Fri")), sorted(parse_days("Fri-Mon")), len(parse_days("*"))
    ([0, 1, 2, 3, 4], [0, 4, 5, 6], 7)
    """
    text = text.strip().lower()
    if text in {"*", "daily", "every day"}:
        return frozenset(range(7))
    found: set[int] = set()
    for part in text.split(","):
        ends = [p.strip()[:3] for p in part.split("-")]
        if len(ends) > 2 or any(end not in DAYS for end in ends):
            raise ValueError(
                f"days {text!r}: write day names or ranges such as 'Mon-Fri' or 'Sat,Sun'"
            )
        first, last = DAYS.index(ends[0]), DAYS.index(ends[-1])
        found.update((first + k) % 7 for k in range((last - first) % 7 + 1))
    return frozenset(found)


def parse_hours(text: str) -> tuple[time, time]:
    """``"02:00-05:00"`` -> (start, end); an end at or before the start runs past midnight,
    ``24:00`` is the end of the day.

    >>> parse_hours("22:30-01:00")
    (datetime.time(22, 30), datetime.time(1, 0))
    """
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text)
    if match is None:
        raise ValueError(f"hours {text!r}: write 'HH:MM-HH:MM', e.g. '02:00-05:00'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise ValueError(f"hours {text!r}: not a time of day")
    start = time(h1, m1)
    end = time(0, 0) if h2 == 24 else time(h2, m2)
    if start == end and h2 != 24 and not (h1 == 0 and m1 == 0):
        raise ValueError(f"hours {text!r}: the window is empty; '00:00-24:00' is a whole day")
    return start, end


class DeployWindowSpec(_Spec):
    """Days and hours of local time (in `timezone`) in which a promotion may happen.

    >>> DeployWindowSpec(days="Mon-Fri", hours="02:00-05:00", timezone="Europe/Berlin").span
    (datetime.time(2, 0), datetime.time(5, 0))
    """

    days: str = Field(default="*", description="Weekdays: 'Mon-Fri', 'Sat,Sun', '*'")
    hours: str = Field(description="Local hours 'HH:MM-HH:MM' (past midnight if end <= start)")
    timezone: Zone = "UTC"

    @pydantic.field_validator("days")
    @classmethod
    def _days(cls, value: str) -> str:
        parse_days(value)
        return value

    @pydantic.field_validator("hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        parse_hours(value)
        return value

    @property
    def weekdays(self) -> frozenset[int]:
        return parse_days(self.days)

    @property
    def span(self) -> tuple[time, time]:
        return parse_hours(self.hours)

    def describe(self) -> str:
        return f"{self.days} {self.hours} {self.timezone}"


def _day_or_time(value: object) -> object:
    """A bare ``YYYY-MM-DD`` is a date (a whole day), not midnight.

    >>> _day_or_time("2026-12-24"), _day_or_time("2026-12-24T18:00")
    (datetime.date(2026, 12, 24), '2026-12-24T18:00')
    """
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        return date.fromisoformat(value.strip())
    return value


DayOrTime = Annotated[datetime | date, pydantic.BeforeValidator(_day_or_time)]


class FreezeSpec(_Spec):
    """A period without promotions: from `start` to `end` in `timezone` (a date alone is its
    midnight; an `end` date is inclusive: the freeze lasts to the end of that day)."""

    start: DayOrTime
    end: DayOrTime
    timezone: Zone = "UTC"
    reason: str = ""

    def bounds(self) -> tuple[datetime, datetime]:
        """Start and end as aware datetimes in `timezone` (naive values are local time)."""
        zone = zoneinfo.ZoneInfo(self.timezone)

        def aware(value: datetime | date, end: bool) -> datetime:
            if not isinstance(value, datetime):
                value = datetime.combine(value + timedelta(days=1 if end else 0), time())
            return value if value.tzinfo is not None else value.replace(tzinfo=zone)

        return aware(self.start, False), aware(self.end, True)

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> FreezeSpec:
        start, end = self.bounds()
        if end <= start:
            raise ValueError(f"freeze ends ({self.end}) before it starts ({self.start})")
        return self
