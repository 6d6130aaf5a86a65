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
from driftloop.drift import stats

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
    results: dict[str, ColumnDrift] = {}
    if len(current) >= stats.PARALLEL_MIN_N and numeric and categorical:
        # large batches: count categories while the numeric tests sort and search
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            counted = pool.submit(
                _categorical_results, reference_profile, current, categorical, plan
            )
            results.update(_numeric_results(reference_profile, current, numeric, plan))
            results.update(counted.result())
    else:
        results.update(_numeric_results(reference_profile, current, numeric, plan))
        results.update(_categorical_results(reference_profile, current, categorical, plan))
    ordered = [results[name] for name in plan]
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


def _numeric_results(
    reference_profile: types.JSON,
    current: pd.DataFrame,
    names: list[str],
    plan: Mapping[str, config.ColumnDrift],
) -> dict[str, ColumnDrift]:
    if not names:
        return {}
    by_test: dict[str, list[int]] = {}
    for j, name in enumerate(names):
        by_test.setdefault(plan[name].test, []).append(j)
    ks_idx = by_test.get("ks", [])
    rest = [j for j in range(len(names)) if j not in ks_idx]
    # the KS columns first, so that their rows are one view of the matrix, not a copy
    layout = ks_idx + rest
    rows = np.empty((len(names), len(current)), dtype=np.float64)
    for i, j in enumerate(layout):
        rows[i] = current[names[j]].to_numpy(dtype=np.float64, na_value=np.nan)
    statistic = np.full(len(names), np.nan)
    pvalue = np.full(len(names), np.nan)
    effect = np.full(len(names), np.nan)
    currents: list[stats.FloatArray] = [rows[i] for i in np.argsort(layout)]
    if ks_idx:
        ks_names = [names[j] for j in ks_idx]
        ks_rows = rows[: len(ks_idx)]
        n1 = np.array([profiles.sample_size(reference_profile, n) for n in ks_names])
        edges = [profiles.bin_edges(reference_profile, n)[1:-1] for n in ks_names]
        counts = [profiles.bin_counts(reference_profile, n) for n in ks_names]
        below = [np.cumsum(c)[:-1] / max(int(c.sum()), 1) for c in counts]
        ks, ks_sorted = stats.ks_rows(
            lambda i: profiles.numeric_sample(reference_profile, ks_names[i]),
            n1,
            ks_rows,
            stats.slow_first(edges, below, ks_rows, n1),
        )
        statistic[ks_idx], pvalue[ks_idx], effect[ks_idx] = ks.statistic, ks.pvalue, ks.statistic
        for j, column in zip(ks_idx, ks_sorted, strict=True):
            currents[j] = column
    if rest:
        for j, column in zip(rest, stats.sort_rows(rows[len(ks_idx) :]), strict=True):
            currents[j] = column
    if "wasserstein" in by_test:
        idx = by_test["wasserstein"]
        refs = [profiles.numeric_sample(reference_profile, names[j]) for j in idx]
        raw = stats.wasserstein(refs, [currents[j] for j in idx])
        scale = np.array([_scale(reference_profile, names[j]) for j in idx])
        statistic[idx], effect[idx] = raw, raw / scale
    for test in ("psi", "jensenshannon"):
        if test not in by_test:
            continue
        idx = by_test[test]
        ref_counts, cur_counts = _numeric_bins(
            reference_profile, [names[j] for j in idx], [currents[j] for j in idx]
        )
        value = _binned_effect(test, ref_counts, cur_counts)
        statistic[idx], effect[idx] = value, value
    return {
        name: _column(
            reference_profile,
            name,
            "numeric",
            plan[name],
            statistic[j],
            pvalue[j],
            effect[j],
            currents[j].size,
        )
        for j, name in enumerate(names)
    }


def _scale(reference_profile: types.JSON, name: str) -> float:
    std = profiles.reference_std(reference_profile, name)
    return std if math.isfinite(std) and std > 0 else 1.0


def _numeric_bins(
    reference_profile: types.JSON, names: list[str], currents: list[stats.FloatArray]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(columns, bins) reference and current counts, zero-padded to a common width."""
    width = max(profiles.bin_counts(reference_profile, name).size for name in names)
    ref = np.zeros((len(names), width))
    cur = np.zeros((len(names), width))
    for j, (name, values) in enumerate(zip(names, currents, strict=True)):
        counts = profiles.bin_counts(reference_profile, name)
        ref[j, : counts.size] = counts
        edges = profiles.bin_edges(reference_profile, name)
        binned = profiles.binned_counts_sorted(values, edges)
        cur[j, : binned.size] = binned
    return ref, cur


def _binned_effect(
    test: str, ref: np.ndarray[Any, Any], cur: np.ndarray[Any, Any]
) -> stats.FloatArray:
    return stats.psi(ref, cur) if test == "psi" else stats.jensenshannon(ref, cur)


def _categorical_results(
    reference_profile: types.JSON,
    current: pd.DataFrame,
    names: list[str],
    plan: Mapping[str, config.ColumnDrift],
) -> dict[str, ColumnDrift]:
    if not names:
        return {}
    ref_maps = [profiles.category_counts(reference_profile, name) for name in names]
    cur_maps = [_category_counts(current[name]) for name in names]
    width = max(len(set(r) | set(c)) for r, c in zip(ref_maps, cur_maps, strict=True))
    ref = np.zeros((len(names), max(width, 1)))
    cur = np.zeros((len(names), max(width, 1)))
    for j, (r, c) in enumerate(zip(ref_maps, cur_maps, strict=True)):
        categories = list(r) + [key for key in c if key not in r]
        ref[j, : len(categories)] = [r.get(key, 0) for key in categories]
        cur[j, : len(categories)] = [c.get(key, 0) for key in categories]
    statistic = np.full(len(names), np.nan)
    pvalue = np.full(len(names), np.nan)
    effect = np.full(len(names), np.nan)
    by_test: dict[str, list[int]] = {}
    for j, name in enumerate(names):
        by_test.setdefault(plan[name].test, []).append(j)
    if "chi2" in by_test:
        idx = by_test["chi2"]
        chi2 = stats.chi2_counts(ref[idx], cur[idx])
        statistic[idx], pvalue[idx], effect[idx] = chi2.statistic, chi2.pvalue, chi2.cramers_v
    for test in ("psi", "jensenshannon"):
        if test in by_test:
            idx = by_test[test]
            value = _binned_effect(test, ref[idx], cur[idx])
            statistic[idx], effect[idx] = value, value
    n_current = cur.sum(axis=1)
    return {
        name: _column(
            reference_profile,
            name,
            "categorical",
            plan[name],
            statistic[j],
            pvalue[j],
            effect[j],
            int(n_current[j]),
        )
        for j, name in enumerate(names)
    }


def _category_counts(series: pd.Series[Any]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for value, count in series.value_counts(dropna=True, sort=False).items():
        key = str(value)
        merged[key] = merged.get(key, 0) + int(count)
    return merged


def _column(
    reference_profile: types.JSON,
    name: str,
    kind: str,
    chosen: config.ColumnDrift,
    statistic: float,
    pvalue: float,
    effect: float,
    n_current: int,
) -> ColumnDrift:
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
