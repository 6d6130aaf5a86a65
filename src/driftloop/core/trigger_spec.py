"""The `triggers:` of a pipeline spec: what makes the policy retrain (a schedule, drift, a
drop in live performance, new data, data-quality signals, fairness, explanation shift, a
person)."""

from __future__ import annotations

from typing import Annotated, Literal

import pydantic
from pydantic import Field

from driftloop.core.amount import Amount, AmountField
from driftloop.core.spec_base import Spec


class ScheduleTrigger(Spec):
    kind: Literal["schedule"] = "schedule"
    cron: str
    timezone: str = "UTC"


class DriftTrigger(Spec):
    kind: Literal["drift"] = "drift"


class PerformanceTrigger(Spec):
    """Fires when the champion's live performance falls. With neither `floor` nor `drop` (the
    default) the test is relative: the live per-row error over `window` is significantly
    higher (one-sided Welch test at `alpha`) than the same model's error on the labelled
    batches it scored before. `floor` and `drop` add absolute limits on the live metric."""

    kind: Literal["performance"] = "performance"
    metric: str = "accuracy"
    floor: float | None = None
    drop: float | None = Field(
        default=None, gt=0, description="Fire when live metric < champion validation - drop"
    )
    window: AmountField = Field(
        default=Amount(1, "batches"),
        description="Live labelled data the test looks at: batches, rows or a duration",
    )
    alpha: float = Field(default=0.01, gt=0, lt=1, description="Significance of the drop")


class VolumeTrigger(Spec):
    kind: Literal["volume"] = "volume"
    rows: int | None = Field(
        default=None, gt=0,
        description="Fire after this many new labelled rows since the last training",
    )
    every: AmountField | None = Field(
        default=None,
        description="Fire after this much new labelled data: batches, rows, a duration, or a "
        "share of the training window",
    )

    @pydantic.model_validator(mode="after")
    def _one(self) -> VolumeTrigger:
        if (self.rows is None) == (self.every is None):
            raise ValueError("give `every` (e.g. every: 10 batches) or `rows`, not both")
        return self

    @property
    def amount(self) -> Amount:
        """`every`, or `rows` as an amount of rows."""
        return self.every if self.every is not None else Amount(float(self.rows or 0), "rows")


class FairnessTrigger(Spec):
    """Fires when a disparity of `fairness.thresholds` is broken on the newest labelled
    batches: on at least `batches` of the last `window` batches that had enough rows per group."""

    kind: Literal["fairness"] = "fairness"
    batches: int = Field(default=2, ge=1, description="Batches that must break a threshold")
    window: int = Field(default=3, ge=1, description="Of this many newest judged batches")


class ExplanationTrigger(Spec):
    """Fires when the champion, re-explained on a recent labelled batch (`explain.live`),
    relies on its features differently from when it was trained (`explain.shift`)."""

    kind: Literal["explanation"] = "explanation"


class ManualTrigger(Spec):
    kind: Literal["manual"] = "manual"


class QualityTrigger(Spec):
    """Fire when the batches new since the last decision carry data-quality signals (values
    beyond the first data's range, new categories, more missing values: `validation`) in at
    least `columns` columns, or on at least `share` of their rows."""

    kind: Literal["quality"] = "quality"
    columns: int = Field(default=2, ge=1, description="Columns with a signal that fire")
    share: float = Field(default=0.05, gt=0, le=1, description="Share of rows that fires")


TriggerSpec = Annotated[
    ScheduleTrigger
    | DriftTrigger
    | PerformanceTrigger
    | VolumeTrigger
    | ManualTrigger
    | QualityTrigger
    | FairnessTrigger
    | ExplanationTrigger,
    Field(discriminator="kind"),
]
