"""Data-drift report: each column of a batch tested against the reference profile.

`detect_drift` is called by the controller's tick (and the policy's drift trigger reads the
report it returns); the report is stored as the evidence of a drift decision (`to_json`), and
read back with `DriftReport.from_json`.

The rule, per `core.config.DriftSpec`:

- Each profiled column is tested with ``spec.per_column[name]`` if given, else the default of
  its type (``spec.numeric`` / ``spec.categorical``); columns in ``spec.ignore`` are skipped.
- KS and chi-square give p-values; they are adjusted together by ``spec.correction`` (Holm,
  Bonferroni, Benjamini-Hochberg via ``scipy.stats.false_discovery_control``, or none).
- Every test also gives an effect size with a threshold (``ColumnDrift.threshold`` of the spec,
  else `DEFAULT_THRESHOLDS`): KS the statistic D, chi-square Cramér's V, PSI itself, Wasserstein
  divided by the reference std (by 1 when the reference is constant), Jensen-Shannon distance.
- A column with a p-value drifted when the adjusted p-value < ``spec.alpha`` AND its effect is
  >= the threshold; PSI, Wasserstein and Jensen-Shannon (no p-value) drifted when the effect is
  >= the threshold.
- The dataset drifted when the share of drifted columns among the tested ones is >=
  ``spec.columns_share``.

Why the effect-size guard: with the sample sizes drift monitoring sees (10^5-10^6 rows) every
p-value is tiny for differences far too small to hurt a model, so significance alone would call
drift on every batch. The p-value answers "is this more than noise?", the effect size "is it
big enough to matter?"; a column drifts only when both say yes.

A column with no values in the batch (all missing) is reported untested (``test_ran=False``) and
is not counted; missing rates are the validation step's job.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

from driftloop.core import config, errors, finite, types
from driftloop.data import profile as profiles
from driftloop.drift import column_measures, stats

DEFAULT_THRESHOLDS: dict[str, float] = {
    "ks": 0.1,
    "chi2": 0.1,
    "psi": 0.2,
    "wasserstein": 0.1,
    "jensenshannon": 0.1,
}
"""Effect-size threshold of each test when the spec gives none."""

_NUMERIC_TESTS = {"ks", "psi", "wasserstein", "jensenshannon"}
_CATEGORICAL_TESTS = {"chi2", "psi", "jensenshannon"}


@dataclass(frozen=True)
class ColumnDrift:
    """The result for one column (its configuration twin is `core.config.ColumnDrift`)."""

    name: str
    kind: str
    test: str
    statistic: float | None
    p_value: float | None
    p_adjusted: float | None
    effect: float | None
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    test_ran: bool = True


@dataclass(frozen=True)
class DriftReport:
    """Per-column results and the dataset-level decision. Frozen; JSON round-trips.

    >>> report = DriftReport(columns=(), drifted_share=0.0, dataset_drift=False, alpha=0.05,
    ...                      correction="holm", columns_share=0.3)
    >>> DriftReport.from_json(report.to_json()) == report
    True
    """

    columns: tuple[ColumnDrift, ...]
    drifted_share: float
    dataset_drift: bool
    alpha: float
    correction: str
    columns_share: float

    @property
    def drifted(self) -> bool:
        """Whether the dataset drifted (`dataset_drift`)."""
        return self.dataset_drift

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the drifted columns."""
        return [column.name for column in self.columns if column.drifted]

    def to_frame(self) -> pd.DataFrame:
        """One row per column (index: the column's name), with `ColumnDrift`'s fields.

        >>> column = ColumnDrift("x", "numeric", "ks", 0.5, 0.01, 0.01, 0.5, 0.1, True, 10, 10)
        >>> report = DriftReport(columns=(column,), drifted_share=1.0, dataset_drift=True,
        ...                      alpha=0.05, correction="holm", columns_share=0.3)
        >>> frame = report.to_frame()
        >>> frame.index.tolist(), frame.loc["x", "test"], bool(frame.loc["x", "drifted"])
        (['x'], 'ks', True)
        """
        rows = [dataclasses.asdict(column) for column in self.columns]
        return pd.DataFrame(rows, columns=list(_COLUMN_FIELDS)).set_index("name")

    def to_json(self) -> types.JSON:
        """A JSON-safe dict (NaN and infinities become null)."""
        return {
            "columns": [
                {name: finite.or_none(getattr(column, name)) for name in _COLUMN_FIELDS}
                for column in self.columns
            ],
            "drifted_share": self.drifted_share,
            "dataset_drift": self.dataset_drift,
            "alpha": self.alpha,
            "correction": self.correction,
            "columns_share": self.columns_share,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DriftReport:
        """The report `to_json` wrote."""
        columns = tuple(ColumnDrift(**column) for column in data["columns"])
        fields = {key: value for key, value in data.items() if key != "columns"}
        return cls(columns=columns, **fields)


_COLUMN_FIELDS = tuple(field.name for field in dataclasses.fields(ColumnDrift))


def detect_drift(
    reference_profile: types.JSON, current: pd.DataFrame, spec: config.DriftSpec
) -> DriftReport:
    """Test every profiled, non-ignored column of `current` against `reference_profile`."""
    plan = _plan(reference_profile, spec)
    absent = [name for name in plan if name not in current.columns]
    if absent:
        raise errors.ValidationError(
            f"the batch lacks profiled column(s) {absent}; add them, or list them in drift.ignore.",
            reasons={name: ["missing from the batch"] for name in absent},
        )
    kinds = profiles.column_kinds(reference_profile)
    numeric = [name for name in plan if kinds[name] == "numeric"]
    categorical = [name for name in plan if kinds[name] == "categorical"]
    results: dict[str, column_measures.Measured] = {}
    if len(current) >= stats.PARALLEL_MIN_N and numeric and categorical:
        # large batches: count categories while the numeric tests sort and search
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            counted = pool.submit(
                column_measures.categorical, reference_profile, current, categorical, plan
            )
            results.update(column_measures.numeric(reference_profile, current, numeric, plan))
            results.update(counted.result())
    else:
        results.update(column_measures.numeric(reference_profile, current, numeric, plan))
        results.update(column_measures.categorical(reference_profile, current, categorical, plan))
    ordered = [_column(reference_profile, name, kinds[name], plan[name], results[name])
               for name in plan]
    adjusted = _adjust([c.p_value for c in ordered], spec.correction)
    final = tuple(_decide(c, p, spec.alpha) for c, p in zip(ordered, adjusted, strict=True))
    tested = [c for c in final if c.test_ran]
    share = sum(c.drifted for c in tested) / len(tested) if tested else 0.0
    return DriftReport(
        columns=final,
        drifted_share=share,
        dataset_drift=bool(tested) and share >= spec.columns_share,
        alpha=spec.alpha,
        correction=spec.correction,
        columns_share=spec.columns_share,
    )


def _plan(reference_profile: types.JSON, spec: config.DriftSpec) -> dict[str, config.ColumnDrift]:
    """Column -> its test configuration, in profile order, without ignored columns."""
    kinds = profiles.column_kinds(reference_profile)
    unknown = sorted(set(spec.per_column) - set(kinds))
    if unknown:
        raise errors.ConfigError(
            f"drift.per_column names column(s) {unknown} that the profile lacks "
            f"(it has {sorted(kinds)}); fix the names."
        )
    plan: dict[str, config.ColumnDrift] = {}
    for name, kind in kinds.items():
        if name in spec.ignore:
            continue
        default = spec.numeric if kind == "numeric" else spec.categorical
        chosen = spec.per_column.get(name, default)
        allowed = _NUMERIC_TESTS if kind == "numeric" else _CATEGORICAL_TESTS
        if chosen.test not in allowed:
            raise errors.ConfigError(
                f"drift test {chosen.test!r} does not apply to {kind} column {name!r}; "
                f"use one of {sorted(allowed)}."
            )
        plan[name] = chosen
    return plan


def _column(
    reference_profile: types.JSON,
    name: str,
    kind: str,
    chosen: config.ColumnDrift,
    measured: column_measures.Measured,
) -> ColumnDrift:
    statistic, pvalue, effect = measured.statistic, measured.pvalue, measured.effect
    n_current = measured.n_current
    ran = n_current > 0 and math.isfinite(effect)
    has_p = chosen.test in ("ks", "chi2")
    return ColumnDrift(
        name=name,
        kind=kind,
        test=chosen.test,
        statistic=float(statistic) if ran else None,
        p_value=float(pvalue) if ran and has_p else None,
        p_adjusted=None,
        effect=float(effect) if ran else None,
        threshold=chosen.threshold or DEFAULT_THRESHOLDS[chosen.test],
        drifted=False,
        n_reference=int(profiles.column_entry(reference_profile, name)["n"]),
        n_current=n_current,
        test_ran=ran,
    )


def _adjust(pvalues: list[float | None], correction: str) -> list[float | None]:
    """Adjusted p-values (same order); None stays None.

    >>> _adjust([0.25, None, 0.125], "holm")
    [0.25, None, 0.25]
    """
    where = [i for i, p in enumerate(pvalues) if p is not None]
    out: list[float | None] = list(pvalues)
    if not where or correction == "none":
        return out
    p = np.array([pvalues[i] for i in where], dtype=np.float64)
    m = p.size
    if correction == "bonferroni":
        adjusted = np.minimum(p * m, 1.0)
    elif correction == "holm":
        order = np.argsort(p, kind="stable")
        stepped = np.maximum.accumulate(np.minimum(p[order] * (m - np.arange(m)), 1.0))
        adjusted = np.empty(m)
        adjusted[order] = stepped
    elif correction == "fdr_bh":
        adjusted = scipy.stats.false_discovery_control(p, method="bh")
    else:
        raise errors.ConfigError(
            f"drift.correction must be holm, bonferroni, fdr_bh or none; got {correction!r}."
        )
    for i, value in zip(where, adjusted, strict=True):
        out[i] = float(value)
    return out


def _decide(column: ColumnDrift, p_adjusted: float | None, alpha: float) -> ColumnDrift:
    if not column.test_ran or column.effect is None:
        return column
    big_enough = column.effect >= column.threshold
    significant = p_adjusted is None or p_adjusted < alpha
    return dataclasses.replace(
        column, p_adjusted=p_adjusted, drifted=bool(big_enough and significant)
    )
