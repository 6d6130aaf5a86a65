"""Which live model answers which record: the rollout strategy of the spec, applied per request.

`POST /v1/predict` calls `Router.route`. With `replace` and `shadow` the champion answers
everything (the shadow is scored later by `server.shadow`). With `canary` / `ab` a record goes
to the test alias (``canary`` / ``challenger``) when a hash of its sticky key falls below
`share`, else to the champion. The key is the request's `key`, or, when the spec's
`rollout.key` names a record field, that field of each record. The hash is salted with the
version under test, so each rollout draws a fresh, still sticky, sample of keys; a record
without a key gets a random assignment (one draw per request).

    >>> in_canary = [is_assigned(f"user-{i}", "v2", 0.25) for i in range(10_000)]
    >>> round(sum(in_canary) / len(in_canary), 2)
    0.25
    >>> is_assigned("user-7", "v2", 0.25) == is_assigned("user-7", "v2", 0.25)
    True
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any

from driftloop.core import config
from driftloop.server import live_models

_SCALE = float(2**64)


def is_assigned(key: str, salt: str, share: float) -> bool:
    """True if `key` falls in the challenger's `share` (deterministic for a key and salt)."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE < share


class Router:
    """Splits a request's records between the champion and the alias under test."""

    def __init__(self, rollout: config.RolloutSpec) -> None:
        self.rollout = rollout
        self._split = rollout.strategy in {"canary", "ab"}
        self._alias = rollout.test_alias

    def route(
        self, holder: live_models.ModelHolder, champion: live_models.LiveModel,
        records: Sequence[Any], key: str | None,
    ) -> list[tuple[live_models.LiveModel, list[int]]]:
        """(live model, record indices) groups covering every record, champion first."""
        every = list(range(len(records)))
        test = holder.get(self._alias) if self._split and self._alias else None
        if test is None:
            return [(champion, every)]
        salt, share, field = f"v{test.number}", self.rollout.share, self.rollout.key
        if field is None:
            chosen = (is_assigned(key, salt, share) if key is not None
                      else random.random() < share)
            return [(test, every)] if chosen else [(champion, every)]
        draw = random.random() < share  # for records without the field
        mine: list[int] = []
        theirs: list[int] = []
        for index, record in enumerate(records):
            value = record.get(field) if isinstance(record, dict) else None
            chosen = draw if value is None else is_assigned(str(value), salt, share)
            (theirs if chosen else mine).append(index)
        return [(live, indices) for live, indices in ((champion, mine), (test, theirs))
                if indices]
