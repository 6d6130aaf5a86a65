"""When a promotion may happen: inside a deployment window and outside every freeze.

`DeployCalendar.opens_at(now)` answers "when may a version go live?": `now` if it may now,
else the first later instant. A window's openings are cron occurrences in its time zone
(`policy.schedule.CronSchedule`, the schedule trigger's code); whether an instant is inside a
window is read from the local wall clock. So a window whose opening spring-forward skips opens
at the jump if the new local time lies inside it (02:30-04:00 opens at 03:00 that night; a
window of 02:00-03:00 does not happen), and during a fall-back repeated hour a window is open
in both occurrences. A window whose end is at or before its start runs past midnight and
belongs to the day it starts on.

    >>> from driftloop.core.deploy_window_spec import DeployWindowSpec
    >>> calendar = DeployCalendar([DeployWindowSpec(
    ...     days="Mon-Fri", hours="02:00-05:00", timezone="Europe/Berlin")], [])
    >>> saturday = datetime(2026, 3, 28, 12, tzinfo=UTC)
    >>> calendar.opens_at(saturday).isoformat()  # Monday 02:00 in Berlin, summer time
    '2026-03-30T00:00:00+00:00'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from driftloop.core import errors
from driftloop.core.deploy_window_spec import DeployWindowSpec, FreezeSpec
from driftloop.policy import schedule

_MAX_STEPS = 2000


class DeployCalendar:
    """Deployment `windows` (none: always open) and `freezes`."""

    def __init__(self, windows: Sequence[DeployWindowSpec], freezes: Sequence[FreezeSpec]) -> None:
        self.windows = list(windows)
        self.freezes = list(freezes)
        self._openings = [_openings(w) for w in self.windows]
        self._frozen = [f.bounds() for f in self.freezes]

    def __repr__(self) -> str:
        return f"DeployCalendar(windows={self.windows!r}, freezes={self.freezes!r})"

    @property
    def always(self) -> bool:
        """True when nothing restricts promotions."""
        return not self.windows and not self.freezes

    def in_window(self, when: datetime) -> bool:
        """Whether `when` lies inside some window (True when there are none)."""
        return not self.windows or any(_inside(w, when) for w in self.windows)

    def freeze_at(self, when: datetime) -> FreezeSpec | None:
        """The freeze `when` falls in, if any."""
        for spec, (start, end) in zip(self.freezes, self._frozen, strict=True):
            if start <= when < end:
                return spec
        return None

    def opens_at(self, now: datetime) -> datetime:
        """`now` if a promotion may happen now, else the first instant after it that may."""
        when = now.astimezone(UTC)
        for _ in range(_MAX_STEPS):
            freeze = self.freeze_at(when)
            if freeze is not None:
                when = freeze.bounds()[1].astimezone(UTC)
                continue
            if self.in_window(when):
                return when
            after = min(o.next_after(when) for o in self._openings)
            # a clock change before it may open a window in the middle (spring-forward lands
            # inside its hours), and a fall-back repeats an opening the cron runs only once
            when = min([after, *(_change(w.timezone, when, after) for w in self.windows),
                        *(t for w in self.windows for t in _repeated(w, when))])
        raise errors.ConfigError(
            f"rollout: no deployment window opens outside the freezes after {now.isoformat()}; "
            "check rollout.windows and rollout.freeze"
        )

    def why_closed(self, now: datetime) -> str:
        """A sentence naming the freeze or the windows that keep `now` closed ("" if open)."""
        freeze = self.freeze_at(now)
        if freeze is not None:
            start, end = freeze.bounds()
            return (f"in the freeze {start:%Y-%m-%d %H:%M} - {end:%Y-%m-%d %H:%M} "
                    f"{freeze.timezone}" + (f" ({freeze.reason})" if freeze.reason else ""))
        if not self.in_window(now):
            return "outside the deployment windows " + "; ".join(
                w.describe() for w in self.windows)
        return ""


def local_text(when: datetime, windows: Sequence[DeployWindowSpec]) -> str:
    """`when` in the first window's time zone (UTC without windows), for a decision's reason.

    >>> local_text(datetime(2026, 3, 30, tzinfo=UTC), [DeployWindowSpec(hours="02:00-05:00",
    ...            timezone="Asia/Kolkata")])
    '2026-03-30 05:30 IST (Asia/Kolkata)'
    """
    name = windows[0].timezone if windows else "UTC"
    local = when.astimezone(ZoneInfo(name))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({name})"


def _openings(window: DeployWindowSpec) -> schedule.CronSchedule:
    """The window's openings as a cron schedule in its time zone (cron: Sunday = 0)."""
    start, _ = window.span
    days = ",".join(str((day + 1) % 7) for day in sorted(window.weekdays))
    return schedule.CronSchedule(f"{start.minute} {start.hour} * * {days}", window.timezone)


def _change(zone: str, start: datetime, end: datetime) -> datetime:
    """The first instant in (start, end] at which `zone`'s UTC offset changes, else `end`."""
    tz = ZoneInfo(zone)
    low, high = math.floor(start.timestamp()), math.ceil(end.timestamp())
    before = datetime.fromtimestamp(low, UTC).astimezone(tz).utcoffset()
    if datetime.fromtimestamp(high, UTC).astimezone(tz).utcoffset() == before:
        return end
    while high - low > 1:  # the first second with the new offset
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, UTC).astimezone(tz).utcoffset() == before:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def _repeated(window: DeployWindowSpec, when: datetime) -> list[datetime]:
    """The second occurrences (fall-back) of the window's opening time near `when`, after it."""
    tz = ZoneInfo(window.timezone)
    day = when.astimezone(tz).date()
    start, _ = window.span
    found = []
    for shift in (-1, 0, 1):
        naive = datetime.combine(day + timedelta(days=shift), start)
        first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
        second = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
        if second > first and second > when:
            found.append(second)
    return found


def _inside(window: DeployWindowSpec, when: datetime) -> bool:
    local = when.astimezone(ZoneInfo(window.timezone))
    start, end = window.span
    now, day = local.time().replace(tzinfo=None), local.weekday()
    if start == end:  # the whole day
        return day in window.weekdays
    if start < end:
        return day in window.weekdays and start <= now < end
    # past midnight: the evening part belongs to today, the morning part to yesterday
    return (day in window.weekdays and now >= start) or (
        (day - 1) % 7 in window.weekdays and now < end)
