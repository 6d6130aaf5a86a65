"""The `rollout:` and `serving:` sections of a pipeline spec: how a model that passed the gate
goes live (replace, shadow, canary, A/B, in deploy windows) and how `driftloop serve` behaves."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field

from driftloop.core import deploy_window_spec
from driftloop.core.spec_base import Duration, Spec


class RolloutSpec(Spec):
    """How a model that passed the gate goes live, and when a live test promotes or rolls it back.

    `replace` moves the champion at once. The others put the new version under a test alias
    (`shadow`: scored on every request off the response path, never returned; `canary`: a
    `share` of traffic; `ab`: the `challenger` alias on a `share` of traffic) and the controller
    compares it with the champion on live labels: it promotes once `min_requests` and
    `min_labels` are reached and the lower end of the `confidence` interval of challenger −
    champion (positive = better) is above `-max_metric_drop`; it rolls back when the interval
    lies wholly below that, or at once when the error rate or p99 latency exceeds its limit.
    Assignment is sticky: a hash of the request's `key` (or of the record field named by `key`).

    >>> RolloutSpec(strategy="canary", share=0.1).test_alias
    'canary'
    """

    strategy: Literal["replace", "shadow", "canary", "ab"] = "replace"
    share: float = Field(default=0.1, gt=0, lt=1, description="Traffic share of the challenger")
    key: str | None = Field(
        default=None, description="Record field to assign by; default: the request's `key`"
    )
    min_requests: int = Field(default=500, ge=1)
    min_labels: int = Field(default=200, ge=1)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    max_p99_ms: float = Field(default=50.0, gt=0)
    max_metric_drop: float = Field(default=0.01, ge=0)
    windows: list[deploy_window_spec.DeployWindowSpec] = Field(
        default=[], description="Local days and hours a promotion may happen in (none: any time)"
    )
    freeze: list[deploy_window_spec.FreezeSpec] = Field(
        default=[], description="Periods without promotions, even inside a window"
    )

    @property
    def test_alias(self) -> str | None:
        """The alias a new version is tested under (None for `replace`)."""
        return {"shadow": "shadow", "canary": "canary", "ab": "challenger"}.get(self.strategy)


class ServingSpec(Spec):
    """How `driftloop serve` behaves."""

    anonymous_predict: bool = Field(default=False, description="Allow /v1/predict without a token")
    poll_interval: Duration = Field(
        default=timedelta(seconds=1), description="How often servers look for a new champion"
    )
    public_dashboard: bool = Field(
        default=False, description="Show the dashboard (/ui) without a token with the view role"
    )
    runtime: Literal["sklearn", "onnx"] = Field(
        default="sklearn",
        description="Score with onnxruntime where the version has an ONNX export that passed "
        "its parity check (driftloop models export VERSION --format onnx); else scikit-learn",
    )
