"""What the policy decides on, and what each trigger answers.

The controller gathers a `Signals` snapshot at every tick (from the store, the drift report and
the live performance window) and hands it to `policy.Policy.decide`; each trigger turns it into
a `TriggerResult`. Both are frozen so that a decision can be recorded exactly as it was made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from driftloop.core.types import JSON


@dataclass(frozen=True)
class Signals:
    """Everything the controller knows when it decides whether to retrain.

    `now` is aware UTC and comes from the injected clock, never from the wall clock.
    `drift` is a drift report's JSON (`dataset_drift`, `drifted_share`, `columns`).
    `live_metric` is the champion's metric on the last `live_rows` labelled rows it did not see
    in training; `champion_metric` its validation score when it was trained.
    `estimated_metric` is the champion's accuracy estimated from its calibrated confidences
    (CBPE) over the `estimated_rows` rows of its newest scored batches that had no labels (those
    after its newest labelled evaluation); None when there are none or it has no calibrator.

    >>> from datetime import UTC
    >>> Signals(now=datetime(2024, 1, 1, tzinfo=UTC)).has_champion
    True
    """

    now: datetime
    has_champion: bool = True
    last_training_at: datetime | None = None
    last_decision_at: datetime | None = None
    drift: JSON | None = None
    live_metric: float | None = None
    live_rows: int = 0
    estimated_metric: float | None = None
    estimated_rows: int = 0
    champion_metric: float | None = None
    new_labelled_rows: int = 0
    manual: bool = False
    concept_drift: bool = False


@dataclass(frozen=True)
class TriggerResult:
    """One trigger's answer: did it fire, a sentence saying why, and the numbers behind it.

    >>> TriggerResult("volume", True, "1200 rows >= 1000", {"rows": 1200}).to_json()
    {'kind': 'volume', 'fired': True, 'reason': '1200 rows >= 1000', 'evidence': {'rows': 1200}}
    """

    kind: str
    fired: bool
    reason: str
    evidence: JSON = field(default_factory=dict)

    def to_json(self) -> JSON:
        return {"kind": self.kind, "fired": self.fired, "reason": self.reason,
                "evidence": dict(self.evidence)}


def iso(when: datetime | None) -> Any:
    """A datetime as ISO text for evidence JSON (None stays None)."""
    return None if when is None else when.isoformat()
