"""The rows of a pipeline's accepted batches, read back from the artifact store once.

Training and evaluation both need "the labelled rows so far". The tick asks `History` for them;
it reads each batch's Parquet artifact (hash-verified) the first time and keeps the rows in
memory, so a long-running controller or a backtest does not re-read old batches. The store
stays the truth: a fresh `History` rebuilds the same rows from it.

`refresh()` reads only the batch records: a tick that finds nothing new reads no rows at all
(and imports no pandas); the rows are read the first time a reader needs them (`load`). A tick
mostly needs only the newest batch (to score it and test it for drift) and a few counts, so
new batches wait in `_tail` and join the one big frame only when all rows are asked for
(`rows()`, for training): a tick that does not train copies no old rows.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any

from driftloop.controller import project as projects
from driftloop.core import config, types
from driftloop.store import entities

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

BATCH_COLUMN = types.BATCH_COLUMN


def label_key(spec: config.PipelineSpec) -> str | None:
    """The column that ties a late label to its row: the row id, else the timestamp."""
    return spec.id or spec.timestamp


class History:
    """Accepted rows in batch order, each tagged with its batch id in `BATCH_COLUMN`.

    `refresh()` picks up batches accepted since the last call (one store query); `batches`,
    `batch_ids` and `len` answer from their records, the other readers (`rows`, `of`, `since`,
    `origins`, `labelled_after`) read the rows not read yet first (`load`), then answer from
    memory.
    """

    def __init__(self, project: projects.Project) -> None:
        self.project = project
        self._batches: list[entities.Batch] = []  # accepted batches, oldest first
        self._ids: list[int] = []  # their ids
        self.sizes: list[int] = [0]  # rows before each batch as recorded, then the total
        self._loaded = 0  # how many of `_batches` have their rows read
        self._starts: list[int] = [0]  # row offset of each batch read, then the total
        self._labelled: list[int] = [0]  # labelled rows before each batch, then the total
        self._frame: pd.DataFrame | None = None  # rows of all batches but the tail
        self._tail: list[pd.DataFrame] = []  # rows of the newest batches, one frame each
        self._pending: dict[int, pd.DataFrame] = {}
        self._origin: dict[Any, int] = {}  # row key → the batch that brought the row
        self._late: dict[int, npt.NDArray[np.int64]] = {}  # label batch → origin batch per row

    def add(self, batch: entities.Batch, rows: pd.DataFrame) -> None:
        """Hand over the rows of a batch just accepted (saves reading them back)."""
        self._pending[batch.id] = rows

    def refresh(self) -> None:
        """Take in the records of the batches accepted since the last call (not their rows)."""
        after = self._ids[-1] if self._ids else 0
        for batch in self.project.store.batches.list(
            self.project.name, status="accepted", after_id=after
        ):
            self._batches.append(batch)
            self._ids.append(batch.id)
            self.sizes.append(self.sizes[-1] + batch.rows)

    def load(self) -> None:
        """Read the rows of the batches taken in but not read yet."""
        target = self.project.spec.target
        for batch in self._batches[self._loaded :]:
            part = self.batch_rows(batch)
            labelled = int(part[target].notna().sum()) if target in part.columns else 0
            self._starts.append(self._starts[-1] + len(part))
            self._labelled.append(self._labelled[-1] + labelled)
            self._tail.append(part)
            self._index(batch.id, part)
        self._loaded = len(self._batches)
        self._pending.clear()

    def _index(self, batch_id: int, part: pd.DataFrame) -> None:
        """Remember which batch brought each row key; a batch whose keys were all seen before
        is one of late labels (see `late_labels.join_labels`), and `_late` maps its rows back."""
        key = label_key(self.project.spec)
        if key is None or key not in part.columns or part.empty:
            return
        # Dict look-ups per key: `Series.map(dict)` would copy the whole (growing) dict into
        # a Series on every batch, which made this quadratic over a long replay.
        keys = part[key].tolist()
        origins = [self._origin.get(k) for k in keys]
        if all(origin is not None for origin in origins):
            import numpy as np

            self._late[batch_id] = np.asarray(origins, dtype=np.int64)
        else:
            fresh = [k for k, origin in zip(keys, origins, strict=True) if origin is None]
            self._origin.update(dict.fromkeys(fresh, batch_id))

    def origins(self, batch_id: int) -> npt.NDArray[np.int64] | None:
        """For a batch of late labels, the batch each of its rows first arrived in."""
        self.load()
        return self._late.get(batch_id)

    def __len__(self) -> int:
        """How many rows there are (as the batch records say)."""
        return self.sizes[-1]

    def rows(self) -> pd.DataFrame:
        """Every accepted row so far, oldest first."""
        import pandas as pd

        self.load()
        if self._tail:
            parts = [] if self._frame is None else [self._frame]
            self._frame = pd.concat(parts + self._tail, ignore_index=True)
            self._tail = []
        return self._frame if self._frame is not None else pd.DataFrame()

    @property
    def accepted(self) -> list[entities.Batch]:
        """Every accepted batch, oldest first: the list itself, not a copy (do not change it)."""
        return self._batches

    def batches(self, after_id: int = 0) -> list[entities.Batch]:
        """The accepted batches with id > `after_id`, oldest first."""
        return self._batches[bisect.bisect_right(self._ids, after_id) :]

    def batch_ids(self, after_id: int = 0) -> list[int]:
        """Ids of the batches with id > `after_id` that have rows, oldest first."""
        first = bisect.bisect_right(self._ids, after_id)
        sizes = self.sizes
        return [self._ids[i] for i in range(first, len(self._ids)) if sizes[i + 1] > sizes[i]]

    def labelled_after(self, after_id: int) -> int:
        """How many rows of the batches with id > `after_id` have a target value."""
        self.load()
        return self._labelled[-1] - self._labelled[bisect.bisect_right(self._ids, after_id)]

    def of(self, batch_id: int) -> pd.DataFrame:
        """The rows of one accepted batch (tagged)."""
        self.load()
        i = bisect.bisect_left(self._ids, batch_id)
        first_in_tail = len(self._ids) - len(self._tail)
        if i >= first_in_tail:
            return self._tail[i - first_in_tail]
        return self.rows().iloc[self._starts[i] : self._starts[i + 1]]

    def since(self, after_id: int) -> pd.DataFrame:
        """The rows of the batches with id > `after_id`."""
        self.load()
        first = bisect.bisect_right(self._ids, after_id)
        if first == len(self._ids) - 1 and self._tail:
            return self._tail[-1]
        return self.rows().iloc[self._starts[first] :]

    def batch_rows(self, batch: entities.Batch) -> pd.DataFrame:
        """The rows of one accepted batch, tagged with its id; none for a batch whose file
        retention archived (no training window reaches it any more: `controller.retention_tick`)."""
        if batch.id in self._pending:
            frame = self._pending[batch.id]
        elif batch.archived_at is not None or batch.data_uri is None or not batch.data_sha256:
            import pandas as pd

            return pd.DataFrame()
        else:
            frame = self.project.artifacts.get_frame(batch.data_uri, batch.data_sha256)
        return frame.assign(**{BATCH_COLUMN: batch.id})
