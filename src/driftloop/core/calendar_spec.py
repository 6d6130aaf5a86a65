"""The `calendar:` section of a pipeline spec: model inputs derived from the timestamp (hour,
day of week, month, public holiday), and the pipeline's time zone."""

from __future__ import annotations

from typing import Any, Literal

from driftloop.core.spec_base import Spec

CalendarFeature = Literal["hour", "day_of_week", "month", "holiday"]


class CalendarSpec(Spec):
    """Model inputs derived from the `timestamp` column, in the pipeline's `timezone`: hour,
    day of week (Monday 0), month, and 1 on public holidays of `country` (ISO code, with an
    optional `subdivision`, e.g. AU / NSW). Holidays come from the optional `holidays` package
    (``pip install driftloop[calendar]``), which works offline; without it, or without a
    `country`, there is no holiday column (`driftloop check` says so). Derived at training,
    in the controller's scoring and in the server from the same function
    (`data.calendar.model_input`), so they cannot differ. Written ``calendar: true`` for all."""

    features: list[CalendarFeature] = ["hour", "day_of_week", "month", "holiday"]
    country: str | None = None
    subdivision: str | None = None


def from_flag(value: Any) -> Any:
    """`calendar: true` is every calendar feature; `false` none.

    >>> from_flag(True), from_flag(False)
    ({}, None)
    """
    if value is True:
        return {}
    return None if value is False else value
