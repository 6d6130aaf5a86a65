"""The base of every spec model and the duration type, shared by `core.config` (the pipeline
spec) and `core.source_specs` (the `source:` section).

Durations are written ``90s``, ``15m``, ``12h``, ``7d``, ``2w`` (or a number of seconds).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> Any:
    """``"7d"`` -> 7 days; numbers are seconds; anything else is left to pydantic.

    >>> parse_duration("36h")
    datetime.timedelta(days=1, seconds=43200)
    """
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", value)
        if match:
            return timedelta(seconds=float(match[1]) * _UNITS[match[2]])
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class Spec(BaseModel):
    """Base of every spec model: unknown fields are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
