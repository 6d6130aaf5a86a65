"""`RowNames`: how a quarantine reason names a batch's rows, so the user can find them.

A source says it with each `sources.base.RawBatch` (its `row_names`); the controller's ingest
hands it to `validation.checks.check_batch`, which finds offending rows by position (0 = the
batch's first row) and names them with it:

- a CSV file: its line, the header being line 1, so the first data row is line 2
  (``"lines 6, 11, 14"``);
- a Parquet file, a query result, a replayed frame: the row counted from 1 (``"row 3"``);
- a stream: the event's message id (``"events 1700000000000-0, 1700000000001-0"``).

The quarantine record names the file, query or stream (the batch's `source_uri`), so a reason
does not repeat it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RowNames:
    """Rows named ``f"{noun} {first + position}"``, or ``f"{noun} {ids[position]}"`` when the
    source has a name for each row (`ids`, one per row, in row order).

    >>> RowNames("line", first=2).name([4, 9, 12])
    'lines 6, 11, 14'
    >>> RowNames().name([2], more=0), RowNames().name([0, 1], more=3)
    ('row 3', 'rows 1, 2 and 3 more')
    >>> RowNames("event", ids=("1-0", "2-0")).one(1)
    'event 2-0'
    """

    noun: str = "row"
    first: int = 1
    ids: tuple[str, ...] = ()

    def one(self, position: int) -> str:
        """The row at `position`: ``"line 6"``."""
        return f"{self.noun} {self._label(position)}"

    def name(self, positions: Sequence[int], more: int = 0) -> str:
        """The rows at `positions`, then how many more were not listed: ``"lines 6, 11"``."""
        noun = self.noun if len(positions) + more == 1 else f"{self.noun}s"
        shown = ", ".join(self._label(position) for position in positions)
        return f"{noun} {shown}" + (f" and {more} more" if more else "")

    def take(self, positions: Sequence[int]) -> RowNames:
        """The names of the rows at `positions`, as the rows of a batch cut down to them
        (a stream batch minus events recorded before; numbered rows are never cut, so
        numbered names are kept as they are).

        >>> RowNames("event", ids=("1-0", "2-0", "3-0")).take([1]).ids
        ('2-0',)
        """
        if not self.ids:
            return self
        return RowNames(self.noun, self.first, tuple(self.ids[p] for p in positions))

    def _label(self, position: int) -> str:
        return self.ids[position] if self.ids else str(self.first + position)
