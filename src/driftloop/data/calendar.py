"""The model's input frame: the spec's feature columns plus the calendar features derived from
the timestamp (`PipelineSpec.calendar`), in the pipeline's time zone.

`model_input` is the one place a model's inputs are assembled from rows: training and the
controller's scoring call it on stored batches, the server on the frame it built from a
request, so a derived column cannot differ between training and serving. `input_columns` are
the raw columns it needs (the server checks records for them).

Holiday flags come from the optional `holidays` package, which ships its calendars and works
offline; without it the `holiday` feature is left out (`holiday_note` says why).

    >>> import pandas as pd
    >>> from driftloop.core import config, errors
    >>> spec = config.PipelineSpec.model_validate({
    ...     "name": "p", "source": {"kind": "files", "path": "*.csv"}, "target": "y",
    ...     "timestamp": "t", "timezone": "Australia/Sydney", "trainer": {"function": "m:f"},
    ...     "calendar": {"features": ["hour", "day_of_week", "month"]}})
    >>> rows = pd.DataFrame({"t": pd.to_datetime(["1996-05-07 14:30"], utc=True), "x": [1.0],
    ...                      "y": [0]})
    >>> model_input(spec, rows).to_dict("records")
    [{'x': 1.0, 't_hour': 0, 't_day_of_week': 2, 't_month': 5}]
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from driftloop.core import config, errors

if TYPE_CHECKING:  # pandas: imported when rows are derived, not when the module is
    import pandas as pd


def input_columns(spec: config.PipelineSpec, columns: Iterable[str]) -> list[str]:
    """The raw columns a model of `spec` reads: its features, and the timestamp when calendar
    features are derived from it."""
    features = spec.feature_columns([c for c in columns if not c.startswith("__")])
    if spec.calendar is not None and spec.timestamp is not None and spec.timestamp not in features:
        features.append(spec.timestamp)
    return features


def derived_columns(spec: config.PipelineSpec) -> list[str]:
    """The names of the calendar columns, ``<timestamp>_<feature>`` (e.g. ``time_hour``)."""
    if spec.calendar is None or spec.timestamp is None:
        return []
    return [f"{spec.timestamp}_{feature}" for feature in _kept(spec)]


def model_columns(spec: config.PipelineSpec, columns: Iterable[str]) -> list[str]:
    """The columns a model of `spec` is fit on, of a frame with raw `columns`: the feature
    columns, then the calendar ones."""
    features = spec.feature_columns([c for c in columns if not c.startswith("__")])
    return features + [name for name in derived_columns(spec) if name not in features]


def with_calendar(spec: config.PipelineSpec, rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` with the calendar columns added (`rows` itself when there are none)."""
    import pandas as pd

    if spec.calendar is None or spec.timestamp is None:
        return rows
    local = pd.to_datetime(rows[spec.timestamp], utc=True).dt.tz_convert(spec.timezone)
    derived: dict[str, Any] = {}
    for name, feature in zip(derived_columns(spec), _kept(spec), strict=True):
        if feature == "hour":
            derived[name] = local.dt.hour
        elif feature == "day_of_week":
            derived[name] = local.dt.day_of_week
        elif feature == "month":
            derived[name] = local.dt.month
        else:
            derived[name] = _holidays(spec, local)
    return rows.assign(**derived)


def model_input(spec: config.PipelineSpec, rows: pd.DataFrame) -> pd.DataFrame:
    """The frame a model of `spec` is trained on and scores: the feature columns of `rows`,
    then the calendar columns. Without calendar features, `rows[features]` as it always was."""

    return with_calendar(spec, rows)[model_columns(spec, rows.columns)]


def holiday_note(spec: config.PipelineSpec) -> str | None:
    """Why the `holiday` feature is left out, or None when it is derived."""
    if spec.calendar is None or "holiday" not in spec.calendar.features:
        return None
    if spec.calendar.country is None:
        return "calendar: no holiday flag: set `calendar.country` (an ISO code, e.g. AU)"
    if not _have_holidays():
        return ("calendar: no holiday flag: the `holidays` package is not installed "
                "(pip install driftloop[calendar])")
    return None


def _kept(spec: config.PipelineSpec) -> list[str]:
    assert spec.calendar is not None  # callers checked
    return [f for f in spec.calendar.features if f != "holiday" or holiday_note(spec) is None]


@functools.cache
def _have_holidays() -> bool:
    return importlib.util.find_spec("holidays") is not None


def _holidays(spec: config.PipelineSpec, local: pd.Series) -> pd.Series:
    """1 on the public holidays of the spec's country (and subdivision), else 0."""

    assert spec.calendar is not None and spec.calendar.country is not None  # callers checked
    country, subdivision = spec.calendar.country, spec.calendar.subdivision
    days = local.dt.date
    found = {day for year in {day.year for day in days}
             for day in _holiday_dates(country, subdivision, year)}
    return days.isin(found).astype("int64")


@functools.cache
def _holiday_dates(country: str, subdivision: str | None, year: int) -> frozenset[Any]:
    """The public holidays of one year (cached: the server asks on every request)."""
    import holidays

    try:
        return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year))
    except NotImplementedError as exc:
        raise errors.ConfigError(
            f"calendar.country {country!r} / subdivision {subdivision!r}: the holidays "
            f"package does not know it ({exc}); use an ISO 3166 code like 'AU'"
        ) from exc
