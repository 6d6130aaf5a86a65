"""The `gate:` and `estimate:` sections of a pipeline spec: how a challenger is judged against
the champion, and how performance is estimated before labels arrive."""

from __future__ import annotations

from typing import Any, Literal

import pydantic
from pydantic import Field

from driftloop.core.amount import Amount, AmountField
from driftloop.core.spec_base import Spec


class GateSpec(Spec):
    """Challenger vs champion on the same recent labelled holdout. `require: better` promotes a
    challenger whose improvement's confidence interval lies above `min_improvement`; `not_worse`
    one that is not significantly worse (the interval reaches 0). `enabled: false` promotes every
    trained model (the report is still computed and stored)."""

    enabled: bool = True
    require: Literal["better", "not_worse"] = "better"

    metric: str = "accuracy"
    min_improvement: float = Field(default=0.0, ge=0)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    bootstrap: int = Field(default=1000, ge=100)
    holdout: AmountField = Field(
        default=Amount(2000, "rows"),
        description="The newest labelled data the models are compared on: batches, rows, a "
        "duration or a share of the training window (at most a fifth of the window)",
    )
    refit: bool = Field(
        default=True,
        description="A challenger that passed is refitted on its window including the holdout, "
        "so the newest rows are not lost to the comparison",
    )

    @pydantic.model_validator(mode="before")
    @classmethod
    def _holdout_rows(cls, data: Any) -> Any:
        """`holdout_rows: N` (older specs) is `holdout: N rows`."""
        if isinstance(data, dict) and "holdout_rows" in data:
            data = dict(data)
            if "holdout" in data:
                raise ValueError("give `holdout` or `holdout_rows`, not both")
            data["holdout"] = data.pop("holdout_rows")
        return data


class EstimateSpec(Spec):
    """Performance estimated before labels arrive (classifiers): each version's confidences are
    calibrated on held-out labelled rows at training time (`train.calibration`), and every
    batch the champion scores gets an estimated accuracy, used by a performance trigger while
    the batch's labels are missing. The held-out rows are the gate's holdout; with the gate off
    (or a holdout under 20 rows) and `rows` > 0, one extra fit on the window without `rows`
    rows spread evenly over it is calibrated on those (its CPU counts in the run's compute)."""

    method: Literal["isotonic", "sigmoid", "none"] = Field(
        default="isotonic", description="How confidences are calibrated; none: no estimate"
    )
    rows: int = Field(
        default=0, ge=0,
        description="Rows to hold out for calibration, spread over the window, when the gate "
        "holds none out (an extra fit); 0: calibrate only on the gate's holdout",
    )
