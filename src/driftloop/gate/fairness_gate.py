"""The gate's fairness rules: a challenger is refused if, on the holdout, a disparity breaks its
threshold (`fairness.thresholds`) or is worse than the champion's by more than
`fairness.gate.margin`, each judged with the gate's confidence as the metric is: the whole
bootstrap interval of the disparity lies beyond the threshold, the whole paired interval of the
worsening above the margin (on a small holdout a fair model's disparity is noisy, and a point
estimate would refuse it by chance).

The evidence stored in the gate report has, per sensitive column, both models' disparities
with a paired bootstrap interval, and each group's rows and favourable-prediction rate,
true and false positive rates with intervals (`gate.fairness`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from driftloop.core import fairness_spec
from driftloop.core.types import JSON
from driftloop.gate import fairness
from driftloop.gate import gate as gates

RATES = fairness.RATES


@dataclass(frozen=True)
class FairnessVerdict:
    """Passed or not, why, and the per-column evidence."""

    passed: bool
    reason: str
    evidence: JSON


def judge(challenger: Any, champion: Any | None, X: Any, y: Any, rows: pd.DataFrame,
          spec: fairness_spec.FairnessSpec, confidence: float = 0.95,
          seed: int = 0) -> FairnessVerdict:
    """Apply the fairness rules to `challenger` (and `champion`) on the holdout `X`, `y`;
    `rows` holds the holdout's sensitive columns."""
    y = np.asarray(y)
    new = np.asarray(challenger.predict(X))
    old = np.asarray(champion.predict(X)) if champion is not None else None
    positive = fairness.positive_label(spec, y, new)
    yb = fairness.binary(y, positive)
    models = {"challenger": fairness.binary(new, positive)}
    if old is not None:
        models["champion"] = fairness.binary(old, positive)
    evidence: dict[str, Any] = {"positive": positive, "rows": len(y), "columns": {}}
    refusals: list[str] = []
    judged = False
    for column in spec.sensitive:
        groups = fairness.groups_of(rows[column], column, spec)
        counts = groups.value_counts()
        big = [g for g, n in counts.items() if n >= spec.min_group_rows]
        small = {str(g): int(n) for g, n in counts.items() if n < spec.min_group_rows}
        if len(big) < 2:
            evidence["columns"][column] = {"judged": False, "insufficient": small,
                                           "groups": {str(g): int(n) for g, n in counts.items()}}
            continue
        judged = True
        mask = groups.isin(big).to_numpy()
        codes = pd.Categorical(groups[mask], categories=big).codes.astype(np.int64)
        found = _column(yb[mask], {k: v[mask] for k, v in models.items()}, codes, big, spec,
                        confidence, seed)
        found["insufficient"] = small
        evidence["columns"][column] = found
        refusals += [f"{column}: {text}" for text in found["refusals"]]
    if not judged:
        return FairnessVerdict(True, "fairness not judged: fewer than two groups with "
                               f"{spec.min_group_rows} holdout rows", evidence)
    if refusals:
        return FairnessVerdict(False, "fairness: " + "; ".join(refusals), evidence)
    return FairnessVerdict(True, "fairness: every disparity within its threshold and margin",
                           evidence)


def _column(y: Any, models: dict[str, Any], codes: Any, groups: list[str],
            spec: fairness_spec.FairnessSpec, confidence: float, seed: int) -> dict[str, Any]:
    """One sensitive column's evidence: disparities and group rates of each model with
    bootstrap intervals, and the rules each broke."""
    tail = (1.0 - confidence) / 2.0
    out: dict[str, Any] = {"judged": True, "groups": {}, "disparities": {}, "refusals": []}
    boot: dict[str, list[Any]] = {name: [] for name in models}
    for index in gates.resample_indices(len(y), spec.gate.bootstrap, seed):
        for rows in index:
            for name, p in models.items():
                boot[name].append(fairness.group_rates(y[rows], p[rows], codes[rows],
                                                       len(groups)))
    spreads: dict[str, dict[str, Any]] = {}
    for name, p in models.items():
        point = fairness.group_rates(y, p, codes, len(groups))
        samples = np.stack(boot[name])  # resamples x groups x rates
        with np.errstate(invalid="ignore"):
            low, high = np.nanquantile(samples, [tail, 1 - tail], axis=0)
        for g, group in enumerate(groups):
            entry = out["groups"].setdefault(str(group), {"rows": int((codes == g).sum())})
            entry[name] = {rate: _interval(point[g, r], low[g, r], high[g, r])
                           for r, rate in enumerate(RATES)}
        for disparity in spec.thresholds:
            spread = np.array([fairness.disparity_of(s, disparity) for s in samples])
            spreads.setdefault(disparity, {})[name] = spread
            lo, hi = _quantiles(spread, tail)
            out["disparities"].setdefault(disparity, {})[name] = _interval(
                fairness.disparity_of(point, disparity), lo, hi)
    for disparity, limit in spec.thresholds.items():
        entry = out["disparities"][disparity]
        entry["threshold"] = limit
        new = entry["challenger"]
        ratio = fairness_spec.is_ratio(disparity)
        beyond = new["ci_high"] if ratio else new["ci_low"]  # the interval's fairest end
        if beyond is not None and fairness.broken({disparity: beyond}, {disparity: limit}):
            out["refusals"].append(
                f"{disparity} {new['value']:.3g} (CI [{new['ci_low']:.3g}, "
                f"{new['ci_high']:.3g}]) is wholly {'below' if ratio else 'above'} {limit:g}")
            continue
        if "champion" not in entry:
            continue
        pair = spreads[disparity]
        worse = (pair["champion"] - pair["challenger"]) if ratio else (
            pair["challenger"] - pair["champion"])
        lo, hi = _quantiles(worse, tail)
        sign = -1.0 if ratio else 1.0
        moved = sign * ((new["value"] or 0.0) - (entry["champion"]["value"] or 0.0))
        entry["worse_by"] = _interval(moved, lo, hi)
        if lo > spec.gate.margin:
            out["refusals"].append(
                f"{disparity} {new['value']:.3g} is worse than the champion's "
                f"{entry['champion']['value']:.3g} by {moved:.3g} (CI [{lo:.3g}, {hi:.3g}]), "
                f"more than the margin {spec.gate.margin:g}")
    return out


def _quantiles(values: Any, tail: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return float("nan"), float("nan")
    low, high = np.quantile(finite, [tail, 1 - tail])
    return float(low), float(high)


def _interval(value: float, low: float, high: float) -> dict[str, float | None]:
    def plain(x: float) -> float | None:
        return float(x) if np.isfinite(x) else None

    return {"value": plain(value), "ci_low": plain(low), "ci_high": plain(high)}
