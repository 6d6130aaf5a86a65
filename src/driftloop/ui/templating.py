"""The Jinja2 environment of the pages and reports under `templates/`, with their filters.

Kept apart from `dashboard` so that a report can be rendered without the web stack (a drift
report from a notebook imports Jinja2, not FastAPI).

>>> templates.filters["num"](0.123456, 3), templates.filters["num"](float("nan"))
('0.123', '')
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import jinja2


def _when(at: datetime | None) -> str:
    return "" if at is None else f"{at:%Y-%m-%d %H:%M:%S}"


def _num(value: Any, digits: int = 4) -> str:
    """A number in `digits` significant digits; None and NaN as nothing; text as it is
    ("8 batches")."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.{digits}g}" if isinstance(value, int | float) else str(value)


templates = jinja2.Environment(
    loader=jinja2.PackageLoader("driftloop.ui", "templates"), autoescape=True,
    undefined=jinja2.StrictUndefined,
)
templates.filters["when"] = _when
templates.filters["num"] = _num
