"""Group fairness of a classifier's predictions: per-group metrics and disparities (fairlearn),
and the gate's fairness rules with bootstrap intervals.

`assess` is what the controller stores for every labelled batch when the spec has a
`fairness:` section, and what the gate computes for both models on its holdout. Labels are
turned into 0/1 against the favourable label first, so every fairlearn figure (selection rate,
true and false positive rates, demographic parity and equalized odds) means "favourable".
A group with fewer than `min_group_rows` rows is reported as "insufficient data" with its
count and left out of the disparities: a verdict is drawn only between groups with enough rows.

The gate's bootstrap resamples rows (paired, the same indices for both models) and recomputes
the per-group rates with numpy's `bincount` (one pass per resample instead of one fairlearn
`MetricFrame`, ~100x faster); the point figures are fairlearn's, and a test checks the two agree.
One `MetricFrame` per sensitive column is nearly all of the cost per batch
(`benchmarks/bench_fairness.py`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from driftloop.core import fairness_spec
from driftloop.core.types import JSON

Array = np.ndarray[Any, Any]
OTHER = "other"
"""The group of values not declared (or beyond `max_groups`)."""
RATES = ("selection_rate", "true_positive_rate", "false_positive_rate")
"""The per-group rates every disparity is made of."""


def positive_label(spec: fairness_spec.FairnessSpec, *labels: Any) -> str:
    """The favourable label as text: `spec.positive`, else the larger of the labels seen."""
    if spec.positive is not None:
        return str(spec.positive)
    seen = sorted({str(v) for values in labels for v in np.asarray(values).tolist()})
    return seen[-1] if seen else "1"


def binary(values: Any, positive: str) -> Array:
    """1 where `values` is the favourable label, else 0."""
    flags: Array = (np.asarray(values).astype(str) == positive).astype(np.int64)
    return flags


def groups_of(values: pd.Series, column: str, spec: fairness_spec.FairnessSpec) -> pd.Series:
    """Each row's group: its value if declared (or among the `max_groups` most frequent of
    `values` when none are declared), else "other"; missing values are "other" too."""
    text = values.astype("string").fillna(OTHER)
    declared = spec.groups.get(column)
    if declared is None:
        declared = text.value_counts().index[: spec.max_groups].tolist()
    kept = text.where(text.isin([str(v) for v in declared]), OTHER)
    return kept.astype(str).reset_index(drop=True)


@dataclass(frozen=True)
class _Rates:
    """fairlearn's per-group metrics and disparities over the groups with enough rows."""

    by_group: dict[str, dict[str, float | None]]
    disparities: dict[str, float | None]


def _rates(y: Array, p: Array, groups: pd.Series, metrics: Sequence[str]) -> _Rates:
    """One fairlearn `MetricFrame` with every metric needed; the disparities are its
    between-groups differences and ratios, as fairlearn's `demographic_parity_*` and
    `equalized_odds_*` functions compute them (one frame instead of six: ~5x faster)."""
    from fairlearn import metrics as fm
    from sklearn.metrics import accuracy_score

    functions = {"accuracy": accuracy_score, "selection_rate": fm.selection_rate,
                 "true_positive_rate": fm.true_positive_rate,
                 "false_positive_rate": fm.false_positive_rate}
    needed = [*dict.fromkeys([*metrics, *RATES])]
    with warnings.catch_warnings():  # a group without positives (or negatives): rate 0, warned
        warnings.simplefilter("ignore")
        frame = fm.MetricFrame(metrics={name: functions[name] for name in needed}, y_true=y,
                               y_pred=p, sensitive_features=groups)
        difference = frame.difference(method="between_groups")
        ratio = frame.ratio(method="between_groups")
    odds = ("true_positive_rate", "false_positive_rate")
    disparities = {
        "demographic_parity_difference": difference["selection_rate"],
        "demographic_parity_ratio": ratio["selection_rate"],
        "equalized_odds_difference": max(difference[name] for name in odds),
        "equalized_odds_ratio": min(ratio[name] for name in odds),
    }
    table = frame.by_group
    by_group = {str(g): {m: _plain(table.loc[g, m]) for m in metrics} for g in table.index}
    return _Rates(by_group, {k: _plain(v) for k, v in disparities.items()})


def assess(y_true: Any, y_pred: Any, rows: pd.DataFrame,
           spec: fairness_spec.FairnessSpec) -> JSON:
    """The fairness report of predictions `y_pred` for labels `y_true` on `rows` (which hold
    the sensitive columns): per sensitive column its groups (rows, metrics, or "insufficient
    data"), its disparities and the thresholds they break.

    >>> spec = fairness_spec.FairnessSpec(sensitive=["g"], min_group_rows=2)
    >>> rows = pd.DataFrame({"g": ["a", "a", "b", "b", "c"]})
    >>> report = assess([1, 0, 1, 0, 1], [1, 1, 1, 0, 1], rows, spec)
    >>> report["columns"]["g"]["disparities"]["demographic_parity_difference"]
    0.5
    >>> report["columns"]["g"]["groups"]["c"], report["breaches"]
    ({'rows': 1, 'status': 'insufficient data'}, ['g: demographic_parity_difference 0.5 > 0.1'])
    """
    positive = positive_label(spec, y_true, y_pred)
    y, p = binary(y_true, positive), binary(y_pred, positive)
    columns: dict[str, JSON] = {}
    breaches: list[str] = []
    for column in spec.sensitive:
        groups = groups_of(rows[column], column, spec)
        counts = groups.value_counts()
        big = counts[counts >= spec.min_group_rows].index
        report: dict[str, Any] = {
            "groups": {str(g): {"rows": int(n), "status": "insufficient data"}
                       for g, n in counts.items() if g not in big},
            "judged": len(big) >= 2, "disparities": {}, "breaches": []}
        if len(big):
            mask = groups.isin(big).to_numpy()
            rates = _rates(y[mask], p[mask], groups[mask], spec.metrics)
            for group, values in rates.by_group.items():
                report["groups"][group] = {"rows": int(counts[group]), **values}
            if report["judged"]:
                report["disparities"] = rates.disparities
                report["breaches"] = broken(rates.disparities, spec.thresholds)
        columns[column] = report
        breaches += [f"{column}: {text}" for text in report["breaches"]]
    return {"positive": positive, "rows": len(y), "columns": columns, "breaches": breaches,
            "judged": any(c["judged"] for c in columns.values())}


def broken(disparities: Mapping[str, float | None], thresholds: Mapping[Any, float]) -> list[str]:
    """The thresholds `disparities` break, as text ("name value > limit").

    >>> broken({"demographic_parity_ratio": 0.7}, {"demographic_parity_ratio": 0.8})
    ['demographic_parity_ratio 0.7 < 0.8']
    """
    out = []
    for name, limit in thresholds.items():
        value = disparities.get(name)
        if value is None:
            continue
        if fairness_spec.is_ratio(name) and value < limit:
            out.append(f"{name} {value:.3g} < {limit:g}")
        elif not fairness_spec.is_ratio(name) and value > limit:
            out.append(f"{name} {value:.3g} > {limit:g}")
    return out


def worst(report: JSON) -> float | None:
    """The largest demographic parity difference over the judged columns (a headline number)."""
    values = [c["disparities"].get("demographic_parity_difference")
              for c in report["columns"].values() if c["judged"]]
    values = [v for v in values if v is not None]
    return max(values) if values else None


def group_rates(y: Array, p: Array, codes: Array, n_groups: int) -> Array:
    """Selection rate, TPR and FPR of each group (rows of the result) with numpy: the same
    figures as fairlearn's, for the bootstrap (NaN where a group has no such rows)."""
    rows = np.bincount(codes, minlength=n_groups).astype(float)
    positives = np.bincount(codes, weights=y, minlength=n_groups)
    selected = np.bincount(codes, weights=p, minlength=n_groups)
    true_pos = np.bincount(codes, weights=p * y, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack([selected / rows, true_pos / positives,
                         (selected - true_pos) / (rows - positives)], axis=1)


def disparity_of(rates: Array, name: str) -> float:
    """A disparity from `group_rates` output (NaN rates are skipped, as fairlearn's 0/0)."""
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ratio = fairness_spec.is_ratio(name)
        columns = [0] if name.startswith("demographic") else [1, 2]
        values = []
        for column in columns:
            col = rates[:, column]
            low, high = np.nanmin(col), np.nanmax(col)
            values.append(low / high if ratio and high > 0 else (1.0 if ratio else high - low))
        return float(min(values) if ratio else max(values))


def _plain(value: Any) -> float | None:
    number = float(value)
    return number if np.isfinite(number) else None
