"""Cron schedules across daylight-saving changes, and the schedule trigger on an injected clock."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from driftloop.core import errors
from driftloop.policy import schedule, signals, triggers

DST_DAYS = [
    ("Europe/Berlin", date(2024, 3, 31)),  # spring forward 02:00 -> 03:00
    ("Europe/Berlin", date(2024, 10, 27)),  # fall back 03:00 -> 02:00
    ("America/New_York", date(2024, 3, 10)),
    ("America/New_York", date(2024, 11, 3)),
]


def _local_midnight(zone: str, day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def _local_days(instants: list[datetime], zone: str) -> Counter[date]:
    return Counter(when.astimezone(ZoneInfo(zone)).date() for when in instants)


@pytest.mark.parametrize("cron", ["0 2 * * *", "30 2 * * *"])
@pytest.mark.parametrize(("zone", "day"), DST_DAYS)
def test_daily_cron_fires_once_per_local_day_across_dst(cron: str, zone: str, day: date) -> None:
    start = _local_midnight(zone, day - timedelta(days=3))
    end = _local_midnight(zone, day + timedelta(days=4))
    fired = list(schedule.CronSchedule(cron, zone).between(start, end))
    per_day = _local_days(fired, zone)
    assert sorted(per_day) == [day + timedelta(days=k) for k in range(-3, 4)]
    assert set(per_day.values()) == {1}
    assert fired == sorted(set(fired))


def test_skipped_local_time_runs_once_after_the_jump() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    cron = schedule.CronSchedule("30 2 * * *", "Europe/Berlin")
    when = cron.next_after(datetime(2024, 3, 30, 12, tzinfo=UTC))
    assert when == datetime(2024, 3, 31, 1, 30, tzinfo=UTC)
    assert when.astimezone(berlin).strftime("%H:%M %Z") == "03:30 CEST"
    daily = schedule.CronSchedule("0 2 * * *", "Europe/Berlin")
    assert daily.next_after(datetime(2024, 3, 30, 12, tzinfo=UTC)).astimezone(berlin).hour == 3


def test_repeated_local_time_runs_in_its_first_occurrence_only() -> None:
    cron = schedule.CronSchedule("30 2 * * *", "Europe/Berlin")
    first = cron.next_after(datetime(2024, 10, 26, 12, tzinfo=UTC))
    assert first == datetime(2024, 10, 27, 0, 30, tzinfo=UTC)  # 02:30 CEST
    # Once it ran, the second 02:30 (CET, an hour later) is not another run.
    assert cron.next_after(first) == datetime(2024, 10, 28, 1, 30, tzinfo=UTC)
    ny = schedule.CronSchedule("30 1 * * *", "America/New_York")
    assert ny.next_after(datetime(2024, 11, 3, 4, tzinfo=UTC)) == datetime(
        2024, 11, 3, 5, 30, tzinfo=UTC)  # 01:30 EDT


@pytest.mark.parametrize(("zone", "day", "hours"), [
    ("Europe/Berlin", date(2024, 3, 31), 23),
    ("Europe/Berlin", date(2024, 10, 27), 25),
    ("America/New_York", date(2024, 3, 10), 23),
    ("America/New_York", date(2024, 11, 3), 25),
    ("UTC", date(2024, 3, 31), 24),
])
def test_hourly_cron_fires_every_real_hour(zone: str, day: date, hours: int) -> None:
    start = _local_midnight(zone, day) - timedelta(seconds=1)
    end = _local_midnight(zone, day + timedelta(days=1)) - timedelta(seconds=1)
    fired = list(schedule.CronSchedule("0 * * * *", zone).between(start, end))
    assert len(fired) == hours
    gaps = {later - earlier for earlier, later in itertools.pairwise(fired)}
    assert gaps == {timedelta(hours=1)}


@pytest.mark.parametrize(("zone", "day"), DST_DAYS)
def test_quarter_hourly_cron_keeps_real_time_spacing(zone: str, day: date) -> None:
    start = _local_midnight(zone, day)
    end = _local_midnight(zone, day + timedelta(days=1))
    fired = list(schedule.CronSchedule("*/15 * * * *", zone).between(start, end))
    gaps = {later - earlier for earlier, later in itertools.pairwise(fired)}
    assert gaps == {timedelta(minutes=15)}
    assert len(fired) == (end - start) // timedelta(minutes=15)


def test_matches_croniter_away_from_dst() -> None:
    """Outside transitions the schedule is exactly croniter's in the local zone."""
    zone = ZoneInfo("America/New_York")
    cron = "15 9 * * 1-5"
    start = datetime(2024, 6, 1, tzinfo=zone)
    reference = croniter(cron, start)
    expected = [reference.get_next(datetime).astimezone(UTC) for _ in range(40)]
    got = list(schedule.CronSchedule(cron, "America/New_York").between(start, expected[-1]))
    assert got == expected


@pytest.mark.parametrize(("cron", "zone", "day"), [
    (cron, zone, day) for cron in ["0 2 * * *", "30 2 * * *"] for zone, day in DST_DAYS
])
def test_trigger_on_a_ticking_clock_fires_once_per_day(cron: str, zone: str, day: date) -> None:
    """Tick every 5 minutes over the change; train whenever the trigger fires."""
    trigger = triggers.ScheduleTrigger(cron, zone)
    now = _local_midnight(zone, day - timedelta(days=1))
    end = _local_midnight(zone, day + timedelta(days=2))
    last_training: datetime | None = None
    last_decision: datetime | None = None
    fired: list[datetime] = []
    while now < end:
        result = trigger.evaluate(signals.Signals(
            now=now, last_training_at=last_training, last_decision_at=last_decision))
        if result.fired:
            fired.append(now)
            last_training = now
        last_decision = now
        now += timedelta(minutes=5)
    assert set(_local_days(fired, zone).values()) == {1}
    assert len(fired) == 3


def test_trigger_window_is_anchor_exclusive_now_inclusive() -> None:
    trigger = triggers.ScheduleTrigger("0 2 * * *", "UTC")
    due = datetime(2024, 5, 2, 2, tzinfo=UTC)
    at_due = trigger.evaluate(signals.Signals(now=due, last_training_at=due - timedelta(days=1)))
    assert at_due.fired
    assert at_due.evidence["occurrence"] == due.isoformat()
    assert not trigger.evaluate(signals.Signals(now=due + timedelta(hours=1),
                                                last_training_at=due)).fired
    before = trigger.evaluate(signals.Signals(now=due - timedelta(seconds=1),
                                              last_training_at=due - timedelta(days=1)))
    assert not before.fired
    assert "next due" in before.reason


def test_trigger_anchors_on_last_decision_when_never_trained() -> None:
    trigger = triggers.ScheduleTrigger("0 * * * *")
    now = datetime(2024, 5, 2, 10, 1, tzinfo=UTC)
    assert not trigger.evaluate(signals.Signals(now=now)).fired  # no anchor yet
    assert trigger.evaluate(signals.Signals(now=now, last_decision_at=now - timedelta(
        minutes=5))).fired
    assert not trigger.evaluate(signals.Signals(now=now, last_decision_at=now - timedelta(
        seconds=30))).fired


@pytest.mark.parametrize("cron", ["0 25 * * *", "every day", "0 2 * *", "* * * * * * * *"])
def test_invalid_cron_is_a_config_error_naming_it(cron: str) -> None:
    with pytest.raises(errors.ConfigError, match="is not valid") as info:
        triggers.ScheduleTrigger(cron, "UTC")
    assert repr(cron) in str(info.value)


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "CEST+99", "../etc/passwd", ""])
def test_invalid_time_zone_is_a_config_error(zone: str) -> None:
    with pytest.raises(errors.ConfigError, match="IANA time zone") as info:
        schedule.CronSchedule("0 2 * * *", zone)
    assert "'0 2 * * *'" in str(info.value)
