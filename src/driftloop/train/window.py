"""Which labelled rows a training uses (`trainer.window` in the spec).

The controller calls `select_window` on the labelled rows it holds (in time order, each tagged
with its batch in `types.BATCH_COLUMN`) before it hands them to an executor.

- ``all``: every row;
- ``last``: the newest `size` — batches, rows or a duration;
- ``last_rows`` / ``last_duration``: the newest `rows` rows / rows stamped within `duration`
  before `now` (older spellings of ``last``);
- ``since_drift``: rows stamped after the last detected drift (all rows if none yet);
- ``auto``: every row here; the controller then tries `candidates` (`auto_candidates`) and
  keeps the one that scores best on the newest rows.

Timestamps without a time zone are taken to be UTC, like everywhere in driftloop.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from driftloop.core import clock, config, errors, types
from driftloop.core.amount import Amount


def select_window(frame: pd.DataFrame, spec: config.WindowSpec, *, timestamp: str | None,
                  now: datetime, last_drift_at: datetime | None) -> pd.DataFrame:
    """The rows of `frame` (in time order) the window `spec` keeps.

    >>> frame = pd.DataFrame({"x": range(5)})
    >>> select_window(frame, config.WindowSpec(kind="last_rows", rows=2), timestamp=None,
    ...               now=datetime(2024, 1, 1), last_drift_at=None)["x"].tolist()
    [3, 4]
    """
    if spec.kind in {"all", "auto"}:
        return frame
    if spec.kind == "last":
        assert spec.size is not None  # WindowSpec checks this when the spec loads
        return newest(frame, spec.size, timestamp=timestamp, now=now)
    if spec.kind == "last_rows":
        assert spec.rows is not None  # WindowSpec checks this when the spec loads
        return frame.iloc[-spec.rows:]
    if spec.kind == "last_duration":
        assert spec.duration is not None  # WindowSpec checks this when the spec loads
        return newest(frame, Amount(spec.duration.total_seconds(), "seconds"),
                      timestamp=timestamp, now=now)
    if spec.kind == "since_drift":
        stamps = _stamps(frame, timestamp, spec.kind)
        if last_drift_at is None:
            return frame
        return frame[(stamps > pd.Timestamp(clock.as_utc(last_drift_at))).to_numpy()]
    raise errors.ConfigError(f"trainer.window: unknown kind {spec.kind!r}")


def newest(frame: pd.DataFrame, size: Amount, *, timestamp: str | None,
           now: datetime) -> pd.DataFrame:
    """The newest `size` of `frame`: its last rows, batches (by `types.BATCH_COLUMN`), the rows
    stamped within a duration before `now`, or a share of its rows.

    >>> frame = pd.DataFrame({"x": range(6), types.BATCH_COLUMN: [1, 1, 2, 2, 3, 3]})
    >>> newest(frame, Amount(2, "batches"), timestamp=None, now=datetime(2024, 1, 1))["x"].tolist()
    [2, 3, 4, 5]
    >>> len(newest(frame, Amount(0.5, "share"), timestamp=None, now=datetime(2024, 1, 1)))
    3
    """
    if size.unit == "rows":
        return frame.iloc[len(frame) - min(int(size.value), len(frame)):]
    if size.unit == "share":
        rows = round(size.value * len(frame))
        return frame.iloc[len(frame) - min(rows, len(frame)):]
    if size.unit == "batches":
        batches = _batches(frame)
        distinct = np.unique(batches)
        if len(distinct) <= size.value:
            return frame
        return frame[batches >= distinct[-int(size.value)]]
    stamps = _stamps(frame, timestamp, "last")
    return frame[(stamps > pd.Timestamp(clock.as_utc(now) - size.duration)).to_numpy()]


RATIO = 4
"""Each default `auto` candidate is this many times the one before: a coarser ladder fits
fewer windows, and the finer one's extra candidates mostly added chances to pick a window on
the holdout's noise (the comparison on the policy streams: docs/performance.md)."""


def auto_candidates(frame: pd.DataFrame, spec: config.WindowSpec) -> list[Amount]:
    """The windows `auto` tries on `frame`: the spec's `candidates`, or 1, 4, 16, ... batches
    while fewer than all of them, then all (as many batches as there are).

    >>> frame = pd.DataFrame({types.BATCH_COLUMN: range(1, 21)})
    >>> [str(a) for a in auto_candidates(frame, config.WindowSpec(kind="auto"))]
    ['1 batch', '4 batches', '16 batches', '20 batches']
    """
    if spec.candidates is not None:
        return list(spec.candidates)
    count = len(np.unique(_batches(frame)))
    sizes, size = [], 1
    while size < count:
        sizes.append(size)
        size *= RATIO
    return [Amount(float(n), "batches") for n in [*sizes, max(count, 1)]]


def _batches(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
    if types.BATCH_COLUMN not in frame.columns:
        raise errors.ConfigError("a window in batches needs rows tagged with their batch")
    ids: np.ndarray[Any, Any] = frame[types.BATCH_COLUMN].to_numpy()
    return ids


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
