"""Type aliases shared across layers, in one place."""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

JSON: TypeAlias = dict[str, Any]
"""A JSON object as stored in the metadata store (evidence, metrics, params, profiles)."""

BatchStatus: TypeAlias = Literal["accepted", "quarantined", "requeued"]
"""``requeued``: quarantined, then accepted by `driftloop batches requeue` as a new batch."""
RunStatus: TypeAlias = Literal["running", "succeeded", "failed", "interrupted", "postponed"]
AliasName: TypeAlias = Literal["champion", "challenger", "shadow", "canary"]
Task: TypeAlias = Literal["classification", "regression"]

MAX_VERSION = 2**31 - 1
"""The largest model version number (or other counter a request names) the store can hold: a
PostgreSQL ``integer``. Requests are bounded by it, so a larger number is refused at the door."""

BATCH_COLUMN = "__batch__"
"""The column the controller tags accepted rows with: the id of the batch each came in."""
