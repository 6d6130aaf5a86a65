"""The drift tests of a batch's columns against the reference profile, many columns per call:
numeric columns (KS, Wasserstein, and PSI or Jensen-Shannon over the profile's bins) and
categorical ones (chi-square, and PSI or Jensen-Shannon over category counts). What they
measure is decided on by `drift.report`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from driftloop.core import config, types
from driftloop.data import profile as profiles
from driftloop.drift import ks_columns, stats

FloatArray = stats.FloatArray


@dataclass(frozen=True)
class Measured:
    """What the test of one column measured (NaN where it has no such value), and how many of
    the batch's values it saw."""

    statistic: float
    pvalue: float
    effect: float
    n_current: int


def numeric(
    reference_profile: types.JSON,
    current: pd.DataFrame,
    names: list[str],
    plan: Mapping[str, config.ColumnDrift],
) -> dict[str, Measured]:
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
    currents: list[FloatArray] = [rows[i] for i in np.argsort(layout)]
    if ks_idx:
        ks_names = [names[j] for j in ks_idx]
        ks_rows = rows[: len(ks_idx)]
        n1 = np.array([profiles.sample_size(reference_profile, n) for n in ks_names])
        edges = [profiles.bin_edges(reference_profile, n)[1:-1] for n in ks_names]
        counts = [profiles.bin_counts(reference_profile, n) for n in ks_names]
        below = [np.cumsum(c)[:-1] / max(int(c.sum()), 1) for c in counts]
        ks, ks_sorted = ks_columns.ks_rows(
            lambda i: profiles.numeric_sample(reference_profile, ks_names[i]),
            n1,
            ks_rows,
            ks_columns.slow_first(edges, below, ks_rows, n1),
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
        name: Measured(statistic[j], pvalue[j], effect[j], currents[j].size)
        for j, name in enumerate(names)
    }


def _scale(reference_profile: types.JSON, name: str) -> float:
    std = profiles.reference_std(reference_profile, name)
    return std if math.isfinite(std) and std > 0 else 1.0


def _numeric_bins(
    reference_profile: types.JSON, names: list[str], currents: list[FloatArray]
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
) -> FloatArray:
    return stats.psi(ref, cur) if test == "psi" else stats.jensenshannon(ref, cur)


def categorical(
    reference_profile: types.JSON,
    current: pd.DataFrame,
    names: list[str],
    plan: Mapping[str, config.ColumnDrift],
) -> dict[str, Measured]:
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
        name: Measured(statistic[j], pvalue[j], effect[j], int(n_current[j]))
        for j, name in enumerate(names)
    }


def _category_counts(series: pd.Series[Any]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for value, count in series.value_counts(dropna=True, sort=False).items():
        key = str(value)
        merged[key] = merged.get(key, 0) + int(count)
    return merged
