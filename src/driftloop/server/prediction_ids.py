"""Prediction ids: UUID version 7 text (RFC 9562), time-ordered by the request's clock time.

The id is the prediction log's primary key. Random ids (version 4) land anywhere in that
index, so each logged row dirtied a page of its own and a batch wrote as many pages as rows;
ids that grow with time go in at the index's end, a few pages a batch (measured on SQLite
with 180 000 logged rows: 24 against 14 µs of CPU a row). An id is the request's time in
milliseconds (48 bits), then 74 random bits; ids of one millisecond follow no order.
(Under a simulated clock the ids follow its time.)

    >>> from datetime import UTC, datetime
    >>> import uuid
    >>> first, second = new_ids(datetime(2026, 1, 1, tzinfo=UTC), 2)
    >>> later = new_ids(datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC), 1)[0]
    >>> uuid.UUID(first).version, len(first), first != second, first < later and second < later
    (7, 36, True, True)
"""

from __future__ import annotations

import os
from datetime import datetime

_VERSION = 0x7 << 76
_VARIANT = 0x2 << 62
_RANDOM_A = 0xFFF << 64  # 12 random bits after the version
_RANDOM_B = (1 << 62) - 1  # 62 random bits after the variant


def new_ids(at: datetime, count: int) -> list[str]:
    """`count` fresh ids for predictions made at `at` (an aware datetime)."""
    stamp = max(0, int(at.timestamp() * 1000)) << 80 | _VERSION | _VARIANT  # 0 before 1970
    noise = os.urandom(10 * count)
    ids = []
    for start in range(0, 10 * count, 10):
        bits = int.from_bytes(noise[start:start + 10])
        text = "%032x" % (stamp | (bits << 2 & _RANDOM_A) | (bits & _RANDOM_B))
        ids.append(f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}")
    return ids
