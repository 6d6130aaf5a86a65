"""Amounts in the data's own units: ``"10 batches"``, ``"480 rows"``, ``"3d"``, ``"25%"``.

Every count and duration of a policy (cooldown, volume, the performance window, the gate's
holdout, a training window) may be given in the unit that fits the data: batches (whatever a
batch is for this source: a file, a day, a poll), rows, a duration, or a share of the training
window. A bare number means rows, as the older `rows:` fields did. An `Amount` is measured
against whichever of those the caller has (`reached`), so a policy written in batches works on
a stream of one row a minute as on one of a million rows a day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, PlainSerializer

from driftloop.core import spec_base

Unit = Literal["rows", "batches", "seconds", "share"]

_SINGULAR = {"rows": "row", "batches": "batch"}
_PATTERN = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(rows?|batch(?:es)?|%)\s*")


@dataclass(frozen=True)
class Amount:
    """A quantity with its unit; `share` is a multiple of the training window (0.25: 25%).

    >>> Amount.parse("10 batches"), Amount.parse("1 batch").value, Amount.parse(480).unit
    (Amount(10 batches), 1.0, 'rows')
    >>> Amount.parse("3d"), Amount.parse("25%")
    (Amount(3d), Amount(25%))
    """

    value: float
    unit: Unit

    @classmethod
    def parse(cls, text: Any) -> Amount:
        """Read ``"N batches"``, ``"N rows"``, ``"N%"``, a duration (``"3d"``) or a number of
        rows; `ValueError` with the accepted forms otherwise."""
        if isinstance(text, Amount):
            return text
        if isinstance(text, int | float) and not isinstance(text, bool):
            return cls._checked(float(text), "rows", text)
        if isinstance(text, timedelta):
            return cls._checked(text.total_seconds(), "seconds", text)
        if isinstance(text, str):
            match = _PATTERN.fullmatch(text)
            if match:
                word = match[2]
                unit: Unit = "share" if word == "%" else "rows" if word.startswith("row") else (
                    "batches")
                value = float(match[1]) / 100 if unit == "share" else float(match[1])
                return cls._checked(value, unit, text)
            duration = spec_base.parse_duration(text)
            if isinstance(duration, timedelta):
                return cls._checked(duration.total_seconds(), "seconds", text)
        raise ValueError(
            f"{text!r} is not an amount; write batches ('10 batches'), rows ('480 rows' or 480), "
            "a duration ('3d', '12h') or a share of the training window ('25%')"
        )

    @classmethod
    def _checked(cls, value: float, unit: Unit, text: Any) -> Amount:
        if value < 0:
            raise ValueError(f"{text!r}: an amount must be >= 0")
        return cls(value, unit)

    @property
    def duration(self) -> timedelta:
        return timedelta(seconds=self.value)

    def reached(
        self,
        *,
        rows: float,
        batches: float,
        elapsed: timedelta | None,
        window_rows: float | None = None,
    ) -> bool:
        """Whether what was counted since some point reaches this amount. With no time to
        measure (`elapsed` None) a duration counts as reached; a share needs `window_rows`.

        >>> Amount.parse("2 batches").reached(rows=10, batches=1, elapsed=None)
        False
        >>> Amount.parse("1d").reached(rows=0, batches=0, elapsed=timedelta(days=2))
        True
        """
        if self.unit == "batches":
            return batches >= self.value
        if self.unit == "rows":
            return rows >= self.value
        if self.unit == "seconds":
            return elapsed is None or elapsed >= self.duration
        return window_rows is None or rows >= self.value * window_rows

    def __str__(self) -> str:
        if self.unit == "share":
            return f"{self.value * 100:g}%"
        if self.unit == "seconds":
            return _duration_text(self.value)
        word = self.unit if self.value != 1 else _SINGULAR[self.unit]
        return f"{self.value:g} {word}"

    def __repr__(self) -> str:
        return f"Amount({self})"


def _duration_text(seconds: float) -> str:
    """The largest unit that divides `seconds` exactly (``"3d"``, ``"90s"``)."""
    for suffix, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{suffix}"
    return f"{seconds:g}s"


AmountField = Annotated[Amount, BeforeValidator(Amount.parse), PlainSerializer(str)]
"""An `Amount` in a spec: read from text or a number, written back as text (round trip)."""
