"""The rows of a pipeline's accepted batches, read back from the artifact store once.

Training and evaluation both need "the labelled rows so far". The tick asks `History` for them;
it reads each batch's Parquet artifact (hash-verified) the first time and keeps an append-only
frame in memory, so a long-running controller or a backtest does not re-read old batches.
The store stays the truth: a fresh `History` rebuilds the same frame from it.
"""

from __future__ import annotations

import pandas as pd

from driftloop.controller import project as projects
from driftloop.store import entities

BATCH_COLUMN = "__batch__"


class History:
    """Accepted rows in batch order, each tagged with its batch id in `BATCH_COLUMN`."""

    def __init__(self, project: projects.Project) -> None:
        self.project = project
        self.frame_: pd.DataFrame | None = None
        self.last_batch_: int = 0
        self.pending_: dict[int, pd.DataFrame] = {}

    def add(self, batch: entities.Batch, rows: pd.DataFrame) -> None:
        """Hand over the rows of a batch just accepted (saves reading them back)."""
        self.pending_[batch.id] = rows

    def rows(self) -> pd.DataFrame:
        """Every accepted row so far, oldest first."""
        batches = self.project.store.list_batches(
            self.project.name, status="accepted", after_id=self.last_batch_
        )
        if batches:
            parts = [] if self.frame_ is None else [self.frame_]
            parts += [self.batch_rows(batch) for batch in batches]
            self.frame_ = pd.concat(parts, ignore_index=True)
            self.last_batch_ = batches[-1].id
            self.pending_.clear()
        return self.frame_ if self.frame_ is not None else pd.DataFrame()

    def batch_rows(self, batch: entities.Batch) -> pd.DataFrame:
        """The rows of one accepted batch, tagged with its id."""
        if batch.id in self.pending_:
            frame = self.pending_[batch.id]
        elif batch.data_uri is None or batch.data_sha256 is None:
            return pd.DataFrame()
        else:
            frame = self.project.artifacts.get_frame(batch.data_uri, batch.data_sha256)
        return frame.assign(**{BATCH_COLUMN: batch.id})
