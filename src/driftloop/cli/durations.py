"""Options that name a duration take one: ``90s``, ``5m``, ``12h``, ``1d``, ``2w``, or a bare
number of seconds (``0.5``), the same forms as durations in the spec (`core.spec_base`)."""

from __future__ import annotations

from datetime import timedelta

from driftloop.cli import console
from driftloop.core import spec_base

HELP = "a duration: 90s, 5m, 12h, 1d, or seconds"


def parse(value: str, option: str) -> timedelta:
    """`value` of `option` as a duration; a clean error exit if it is none.

    >>> parse("5m", "--every"), parse("0.5", "--every")
    (datetime.timedelta(seconds=300), datetime.timedelta(microseconds=500000))
    """
    try:
        seconds = float(value)
    except ValueError:
        parsed = spec_base.parse_duration(value)
    else:
        parsed = timedelta(seconds=seconds) if seconds >= 0 else None
    if not isinstance(parsed, timedelta):
        console.fail(f"{option}: {value!r} is not a duration such as 90s, 5m, 12h, 1d or 30")
    return parsed
