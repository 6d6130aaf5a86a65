"""Derive a pipeline's defaults from a sample of its data: `driftloop init --data FILE`.

A policy written in batches holds on data of any cadence; what the data still decides is the
task (classes or a number), the metric, and how many batches make a performance window that can
show a significant drop. `describe` measures the sample (rows per batch, batches per day,
classes, base rate); `spec_text` writes the spec with a comment on each derived value saying how
it was derived.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

import pandas as pd

MIN_WINDOW_ROWS = 200
"""The performance trigger looks at whole batches holding at least this many labelled rows: a
test of a rise in 0/1 errors on fewer rows sees only very large drops."""

MAX_CLASSES = 50
"""A target with at most this many distinct values that are not all fractional is a class."""


@dataclass(frozen=True)
class Cadence:
    """What a data sample says about its stream."""

    rows: int
    rows_per_batch: float
    batch_seconds: float | None
    task: str
    classes: int | None
    base_rate: float | None  # the share of the most frequent class

    @property
    def batches_per_day(self) -> float | None:
        return 86400 / self.batch_seconds if self.batch_seconds else None

    @property
    def window_batches(self) -> int:
        """Batches the performance window spans: at least MIN_WINDOW_ROWS rows."""
        return max(1, math.ceil(MIN_WINDOW_ROWS / max(self.rows_per_batch, 1)))


def describe(frame: pd.DataFrame, target: str, timestamp: str | None,
             every: timedelta | None = None) -> Cadence:
    """Measure a sample. Without `every` the sample is one batch (one file of the source).

    >>> frame = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=96, freq="30min"),
    ...                       "y": [0, 1, 1] * 32})
    >>> c = describe(frame, "y", "t", timedelta(days=1))
    >>> c.rows_per_batch, c.task, c.classes, round(c.base_rate, 2), c.window_batches
    (48.0, 'classification', 2, 0.67, 5)
    """
    if target not in frame.columns:
        close = [c for c in frame.columns if str(c).lower() == target.lower()]
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"the data has no target column {target!r}{hint} "
                         f"(columns: {', '.join(map(str, frame.columns))})")
    labels = frame[target].dropna()
    numeric = pd.api.types.is_numeric_dtype(labels) and not pd.api.types.is_bool_dtype(labels)
    fractional = numeric and bool((labels % 1 != 0).any())
    classes = int(labels.nunique())
    is_class = not fractional and classes <= MAX_CLASSES
    span = None
    if timestamp is not None and timestamp in frame.columns and len(frame) > 1:
        stamps = pd.to_datetime(frame[timestamp], utc=True)
        step = (stamps.max() - stamps.min()).total_seconds() / (len(frame) - 1)
        span = step * len(frame)
    per_batch = float(len(frame))
    seconds = span
    if every is not None and span:
        per_batch = len(frame) * every.total_seconds() / span
        seconds = every.total_seconds()
    share = float(labels.value_counts(normalize=True).max()) if is_class and len(labels) else None
    return Cadence(len(frame), per_batch, seconds, "classification" if is_class else "regression",
                   classes if is_class else None, share)


def spec_text(frame: pd.DataFrame, *, name: str, target: str, timestamp: str | None,
              every: timedelta | None = None, path: str = "data/*.csv") -> str:
    """A complete `driftloop.yaml` for this data, each derived value commented."""
    c = describe(frame, target, timestamp, every)
    cadence = f"{c.rows_per_batch:,.0f} rows a batch"
    if c.batches_per_day:
        cadence += f", {c.batches_per_day:.3g} batches a day"
    if c.task == "classification":
        kind = f"{c.classes} classes, the most frequent {c.base_rate:.0%} of rows"
        function, metric = "train:make_model", "accuracy"
    else:
        kind = "a number"
        function, metric = "train:make_regressor", "rmse"
    window = f"{c.window_batches} batch" + ("es" if c.window_batches > 1 else "")
    stamp = f"timestamp: {timestamp}\n" if timestamp else ""
    return f"""\
# A driftloop pipeline, derived from a sample of the data ({c.rows:,} rows): {cadence};
# the target is {kind}. Every count below is in batches, so it holds whatever a batch is.
name: {name}
store: sqlite:///driftloop.db
artifacts: ./artifacts
source:
  kind: files
  path: {path}                  # every new file is one batch
target: {target}
{stamp}task: {c.task}                 # {kind}

trainer:
  function: {function}
  window: auto                  # at each training: the best of 1, 4, 16, ... batches and all
                                # data on the newest labelled batch, refitted on all of it
  executor: local
  timeout: 30m

triggers:
  - kind: performance           # the live error significantly above the model's own earlier
    window: {window:<20}  # error (one-sided test, alpha 0.01); >= {MIN_WINDOW_ROWS} rows: {cadence}
  - kind: volume                # and once the new labelled rows are 1.5 times the rows the
    every: 150%                 # model was trained on (after a change: since the change):
                                # soon after one, ever more rarely on a stable stream
  - kind: volume                # and after 12 batches at the latest: drifts too slow for
    every: 12 batches           # the error test still reach the model
cooldown: 1 batch

gate:                           # a challenger must not be worse than the champion on the
  enabled: true                 # newest labelled batch; then it is refitted with that batch
  require: not_worse
  metric: {metric}
  holdout: {window}
"""
