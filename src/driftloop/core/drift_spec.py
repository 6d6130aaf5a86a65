"""The `drift:` section of a pipeline spec: the data drift test per column type, per-column
overrides and the decision rule; the concept drift detector over the live error stream."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from driftloop.core.spec_base import Spec


class ColumnDrift(Spec):
    """The drift test for one column (or the default for a column type)."""

    test: Literal["ks", "chi2", "psi", "wasserstein", "jensenshannon"]
    threshold: float | None = Field(
        default=None, gt=0, description="Effect-size threshold; test default if unset"
    )


class ConceptDriftSpec(Spec):
    """A streaming detector (river) over the champion's per-row error once labels arrive."""

    detector: Literal["adwin", "page_hinkley", "none"] = "adwin"
    params: dict[str, Any] = {}


class DriftSpec(Spec):
    """Data drift: a default test per column type, per-column overrides, and the decision rule;
    concept drift: a detector over the live error stream."""

    numeric: ColumnDrift = ColumnDrift(test="ks")
    categorical: ColumnDrift = ColumnDrift(test="chi2")
    per_column: dict[str, ColumnDrift] = {}
    alpha: float = Field(default=0.05, gt=0, lt=1)
    correction: Literal["holm", "bonferroni", "fdr_bh", "none"] = "holm"
    columns_share: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description="Share of drifted columns that means the dataset drifted",
    )
    ignore: list[str] = []
    concept: ConceptDriftSpec = ConceptDriftSpec()
