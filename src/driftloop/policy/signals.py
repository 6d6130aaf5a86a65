"""What the policy decides on, and what each trigger answers.

The controller gathers a `Signals` snapshot at every tick (from the store, the drift report and
the live performance window) and hands it to `policy.Policy.decide`; each trigger turns it into
a `TriggerResult`. Both are frozen so that a decision can be recorded exactly as it was made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from driftloop.core.amount import Amount
from driftloop.core.types import JSON


@dataclass(frozen=True)
class Quality:
    """The data-quality signals of the batches new since the last decision (see
    `validation.checks`): the columns with a signal, the rows that carry one, all their rows.

    >>> Quality(("x",), rows=4, total_rows=40).share
    0.1
    """

    columns: tuple[str, ...] = ()
    rows: int = 0
    total_rows: int = 0

    @property
    def share(self) -> float:
        """The share of the new rows that carry a signal (0 without rows)."""
        return self.rows / self.total_rows if self.total_rows else 0.0


@dataclass(frozen=True)
class FairnessCheck:
    """The fairness report of one labelled batch scored by the champion: was it judged (two
    groups with enough rows) and which thresholds it broke."""

    batch_id: int | None
    judged: bool
    breaches: tuple[str, ...] = ()


@dataclass(frozen=True)
class Signals:
    """Everything the controller knows when it decides whether to retrain.

    `now` is aware UTC and comes from the injected clock, never from the wall clock.
    `drift` is a drift report's JSON (`dataset_drift`, `drifted_share`, `columns`).
    `live_metric` is the champion's metric on the last `live_rows` labelled rows it did not see
    in training (their per-row errors: `live_errors`); `reference_errors` are its per-row errors
    on the labelled batches it scored before those; `champion_metric` its validation score when
    it was trained. `batches_since_training` counts the batches with rows since the last
    training, `window_rows` the rows the champion was trained on (since the change, when it was
    trained after one: see `retrain.change_batch`). `quality` sums the
    data-quality signals of the new batches. `fairness` holds the champion's newest batch
    fairness checks, oldest first (only with a `fairness:` section); `explanation` its newest
    live explanation drift (`explain.live`).
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
    batches_since_training: int = 0
    window_rows: int | None = None
    manual: bool = False
    concept_drift: bool = False
    live_errors: tuple[float, ...] = ()
    reference_errors: tuple[float, ...] = ()
    quality: Quality = Quality()
    fairness: tuple[FairnessCheck, ...] = ()
    explanation: JSON | None = None

    def to_json(self) -> dict[str, Any]:
        """What a decision records of these signals (its evidence's ``signals``)."""
        return {
            "now": self.now.isoformat(),
            "has_champion": self.has_champion,
            "live_metric": self.live_metric,
            "live_rows": self.live_rows,
            "estimated_metric": self.estimated_metric,
            "estimated_rows": self.estimated_rows,
            "champion_metric": self.champion_metric,
            "new_labelled_rows": self.new_labelled_rows,
            "concept_drift": self.concept_drift,
            "manual": self.manual,
        }

    def since_training(self, amount: Amount) -> bool:
        """Whether the data (or time) since the last training reaches `amount`."""
        last = self.last_training_at
        return amount.reached(
            rows=self.new_labelled_rows,
            batches=self.batches_since_training,
            elapsed=None if last is None else self.now - last,
            window_rows=self.window_rows,
        )


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
