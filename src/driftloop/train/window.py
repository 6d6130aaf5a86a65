"""Which labelled rows a training uses (`trainer.window` in the spec).

The controller calls `select_window` on the labelled rows it holds (in time order) before it
hands them to an executor.

- ``all``: every row;
- ``last_rows``: the newest `rows` rows;
- ``last_duration``: rows stamped within `duration` before `now` (needs a timestamp column);
- ``since_drift``: rows stamped after the last detected drift (all rows if none yet).

Timestamps without a time zone are taken to be UTC, like everywhere in driftloop.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from driftloop.core import clock, config, errors


def select_window(frame: pd.DataFrame, spec: config.WindowSpec, *, timestamp: str | None,
                  now: datetime, last_drift_at: datetime | None) -> pd.DataFrame:
    """The rows of `frame` (in time order) the window `spec` keeps.

    >>> frame = pd.DataFrame({"x": range(5)})
    >>> select_window(frame, config.WindowSpec(kind="last_rows", rows=2), timestamp=None,
    ...               now=datetime(2024, 1, 1), last_drift_at=None)["x"].tolist()
    [3, 4]
    """
    if spec.kind == "all":
        return frame
    if spec.kind == "last_rows":
        assert spec.rows is not None  # WindowSpec checks this when the spec loads
        return frame.iloc[-spec.rows:]
    if spec.kind == "last_duration":
        assert spec.duration is not None  # WindowSpec checks this when the spec loads
        stamps = _stamps(frame, timestamp, spec.kind)
        return frame[(stamps > pd.Timestamp(clock.as_utc(now) - spec.duration)).to_numpy()]
    if spec.kind == "since_drift":
        stamps = _stamps(frame, timestamp, spec.kind)
        if last_drift_at is None:
            return frame
        return frame[(stamps > pd.Timestamp(clock.as_utc(last_drift_at))).to_numpy()]
    raise errors.ConfigError(f"trainer.window: unknown kind {spec.kind!r}")


def _stamps(frame: pd.DataFrame, timestamp: str | None, kind: str) -> pd.Series:
    if timestamp is None:
        raise errors.ConfigError(
            f"trainer.window: kind {kind!r} needs the pipeline's `timestamp` column; set "
            "`timestamp:` in the spec or use kind 'last_rows'")
    if timestamp not in frame.columns:
        raise errors.ConfigError(
            f"trainer.window: timestamp column {timestamp!r} is not in the data; columns are "
            f"{', '.join(map(str, frame.columns))}")
    return pd.to_datetime(frame[timestamp], utc=True)
