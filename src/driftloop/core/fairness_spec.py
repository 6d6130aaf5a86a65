"""The `fairness:` section of a pipeline spec, and `trainer.fairness_mitigation`.

`core.config.PipelineSpec` holds the section as `fairness` and `TrainerSpec` the mitigation;
with no `fairness:` section nothing about fairness is computed (no cost per batch).

    fairness:
      sensitive: [colour, sex]        # columns of the batches; kept, never model inputs ...
      model_inputs: [sex]             # ... unless named here
      groups: {colour: [White, Black]}  # declared groups; other values count as "other"
      positive: "Yes"                 # the favourable label (selection rate, TPR, FPR)
      thresholds: {demographic_parity_difference: 0.1, equalized_odds_ratio: 0.8}
      min_group_rows: 30              # fewer rows in a group: "insufficient data"
      gate: {enabled: true, margin: 0.02}

Differences are "at most" limits (0 is parity), ratios "at least" limits (1 is parity).
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic
from pydantic import Field

from driftloop.core.spec_base import Spec as _Spec

GroupMetric = Literal["accuracy", "selection_rate", "true_positive_rate", "false_positive_rate"]
Disparity = Literal[
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
]


def is_ratio(disparity: str) -> bool:
    """Ratios are limits from below (1 = parity); differences from above (0 = parity).

    >>> is_ratio("equalized_odds_ratio"), is_ratio("demographic_parity_difference")
    (True, False)
    """
    return disparity.endswith("_ratio")


class FairnessGateSpec(_Spec):
    """The gate's fairness rules: a challenger is refused if a disparity on the holdout breaks
    its threshold, or is worse than the champion's by more than `margin`."""

    enabled: bool = True
    margin: float = Field(default=0.02, ge=0, description="Allowed worsening vs the champion")
    bootstrap: int = Field(default=200, ge=50, description="Resamples of each group's interval")


class FairnessSpec(_Spec):
    """Sensitive features, the per-group metrics and the disparity limits."""

    sensitive: list[str] = Field(min_length=1, description="Columns that define the groups")
    model_inputs: list[str] = Field(
        default=[], description="Sensitive columns the model may also use as features")
    groups: dict[str, list[str]] = Field(
        default={}, description="Declared groups per column; others count as 'other'")
    max_groups: int = Field(
        default=8, ge=2, description="Undeclared columns: the most frequent values kept, the "
        "rest 'other' (bounds the metrics' label cardinality)")
    positive: str | int | bool | None = Field(
        default=None, description="The favourable label; default: the larger class")
    metrics: list[GroupMetric] = Field(default=[
        "accuracy", "selection_rate", "true_positive_rate", "false_positive_rate"])
    thresholds: dict[Disparity, float] = Field(
        default={"demographic_parity_difference": 0.1},
        description="Limits: differences at most, ratios at least")
    min_group_rows: int = Field(default=30, ge=1)
    gate: FairnessGateSpec = FairnessGateSpec()

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> FairnessSpec:
        for name in (*self.model_inputs, *self.groups):
            if name not in self.sensitive:
                raise ValueError(f"{name!r} is not one of the sensitive columns {self.sensitive}")
        for disparity, limit in self.thresholds.items():
            if not 0 <= limit <= 1:
                raise ValueError(f"`{disparity}` threshold must be in [0, 1]; got {limit}")
        return self

    def excluded(self) -> set[str]:
        """The sensitive columns that are never model inputs."""
        return set(self.sensitive) - set(self.model_inputs)


class MitigationSpec(_Spec):
    """How a trainer is made fairer on `feature` (one of `fairness.sensitive`).

    `reweight` and `oversample` change the training rows (pre-processing),
    `exponentiated_gradient` trains under `constraint` (fairlearn reductions, in-processing),
    `threshold_optimizer` sets per-group thresholds on the model's scores (fairlearn
    post-processing; it reads `feature` at prediction time, so the column must be a model
    input).
    """

    method: Literal["reweight", "oversample", "exponentiated_gradient", "threshold_optimizer"]
    feature: str
    constraint: Literal["demographic_parity", "equalized_odds"] = "demographic_parity"
    seed: int = 0


def check(fairness: FairnessSpec | None, mitigation: MitigationSpec | None, task: str,
          features: list[str] | None) -> None:
    """Checks across sections (raised as ValueError, which pydantic reports with its line)."""
    if fairness is not None and task != "classification":
        raise ValueError("`fairness` needs task classification (binary)")
    if fairness is not None and features is not None:
        inputs = fairness.excluded() & set(features)
        if inputs:
            raise ValueError(f"`features` lists sensitive columns {sorted(inputs)}; name them in "
                             "fairness.model_inputs to let the model use them")
    if mitigation is None:
        return
    if fairness is None or mitigation.feature not in fairness.sensitive:
        raise ValueError(f"trainer.fairness_mitigation.feature {mitigation.feature!r} must be "
                         "one of fairness.sensitive")
    if (mitigation.method == "threshold_optimizer"
            and mitigation.feature not in fairness.model_inputs):
        raise ValueError("threshold_optimizer reads the sensitive column when it predicts: add "
                         f"{mitigation.feature!r} to fairness.model_inputs")


def describe(spec: Any) -> str:
    """One line for logs and reports.

    >>> describe(FairnessSpec(sensitive=["sex"]))
    'fairness on sex: demographic_parity_difference <= 0.1'
    """
    limits = ", ".join(f"{name} {'>=' if is_ratio(name) else '<='} {limit:g}"
                       for name, limit in spec.thresholds.items())
    return f"fairness on {', '.join(spec.sensitive)}: {limits}"
