"""Numbers made safe for JSON and SQL: NaN and infinities become None (``null``, ``NULL``),
since neither JSON nor SQLite keeps them, and numpy floats become plain floats."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any


def or_none(value: Any) -> Any:
    """`value` with every non-finite float as None, in nested dicts, lists and tuples (those
    become lists); other values as they are.

    Examples
    --------
    >>> or_none(float("nan")) is None
    True
    >>> or_none({"a": [1.0, float("nan")], "b": {"c": float("inf")}, "d": 3})
    {'a': [1.0, None], 'b': {'c': None}, 'd': 3}
    """
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, Mapping):
        return {str(key): or_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [or_none(item) for item in value]
    return value
