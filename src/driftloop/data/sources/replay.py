"""A source that replays a historical frame as time passes on an injected clock.

Used by `driftloop backtest` and the demo: the frame is cut into batches at `ends` (times);
`poll` yields every batch whose end is at or before `clock.now()` and not yet behind the
cursor, so the controller's ordinary tick ingests history exactly as it would live data.
A quarantine reason names a row by its number in the whole replayed frame, counted from 1.
It is built in code, never from a spec, so it has no `kind` and is not registered.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftloop.core import clock as clocks
from driftloop.core import errors
from driftloop.core.types import JSON
from driftloop.data import frames, row_names
from driftloop.data.sources import base


class ReplaySource(base.Source):
    """Replay `frame` (time-ordered on `timestamp`) in batches ending at `ends`.

    >>> from datetime import UTC, datetime
    >>> times = pd.date_range("2024-01-01", periods=6, freq="12h", tz="UTC")
    >>> frame = pd.DataFrame({"t": times, "x": range(6)})
    >>> clock = clocks.FakeClock(datetime(2024, 1, 2, tzinfo=UTC))
    >>> source = ReplaySource(frame, "t", list(times[1::2]), clock)
    >>> [len(b.frame) for b in source.poll(None)]
    [2]
    """

    def __init__(
        self, frame: pd.DataFrame, timestamp: str, ends: Sequence[Any], clock: clocks.Clock
    ) -> None:
        self.frame = frame
        self.timestamp = timestamp
        self.ends = ends
        self.clock = clock
        times = frame[timestamp].to_numpy()
        ends_ = np.asarray(pd.DatetimeIndex(ends).to_numpy())
        self._cuts = np.searchsorted(times, ends_, side="right")

    @property
    def key(self) -> str:
        return f"replay:{self.timestamp}"

    def poll(self, cursor: JSON | None) -> Iterator[base.RawBatch]:
        done = int((cursor or {}).get("batches", 0))
        now = pd.Timestamp(self.clock.now())
        for index in range(done, len(self._cuts)):
            if pd.Timestamp(self.ends[index]) > now:
                return
            start = 0 if index == 0 else int(self._cuts[index - 1])
            part = self.frame.iloc[start : int(self._cuts[index])].reset_index(drop=True)
            yield base.RawBatch(
                source_uri=f"replay://{self.timestamp}/{index}",
                fingerprint=frames.fingerprint(part),
                frame=part,
                error=None,
                cursor={"batches": index + 1},
                row_names=row_names.RowNames(first=start + 1),
            )

    @classmethod
    def from_spec(cls, spec: Any, base_dir: Path) -> base.Source:
        raise errors.ConfigError("a replay source is built by the backtest, not from a spec")
