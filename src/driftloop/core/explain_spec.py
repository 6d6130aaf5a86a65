"""The `explain:` section of a pipeline spec: explain every trained version.

`core.config.PipelineSpec` holds it as `explain`; without it no explanation is computed at
training (a backtest retrains often). Per-prediction explanations (`?explain=true`) need no
section, only a model SHAP can explain.

    explain:
      rows: 1000          # held-out rows the explanation is computed on (the newest)
      repeats: 5          # shuffles per feature for permutation importance
      shift: 0.3          # explanation drift recorded as "shifted" above this distance
      gate: false         # true: the gate refuses a challenger whose explanation shifted
                          # from the champion's
      live: 1d            # re-explain the champion on a labelled batch at most this often;
                          # its drift from training is a signal (trigger kind `explanation`)
"""

from __future__ import annotations

from pydantic import Field

from driftloop.core.spec_base import Duration
from driftloop.core.spec_base import Spec as _Spec


class ExplainSpec(_Spec):
    """How each new version is explained, and when its explanation drift is a shift."""

    rows: int = Field(default=1000, ge=10, description="Held-out rows explained, newest")
    repeats: int = Field(default=5, ge=1, description="Shuffles per feature (permutation)")
    shift: float = Field(
        default=0.3, gt=0, le=1, description="Total variation distance between two versions' "
        "shares of importance above which their explanations have shifted")
    gate: bool = Field(
        default=False, description="Refuse a challenger whose explanation shifted from the "
        "champion's (it relies on its features differently)")
    live: Duration | None = Field(
        default=None, description="Re-explain the champion on a newly labelled batch at most "
        "this often (null: never), and record the drift from its training explanation")
