"""Explanations of a model version: what it relies on, globally and for one record.

- `global_explanation`: scikit-learn's `permutation_importance` (any model: the drop of the
  gate's metric when a column is shuffled) and, where the model allows, the mean |SHAP| value
  of each feature (the `shap` package, the `explain` extra), both on held-out rows.
- `contributions`: each feature's SHAP value for given records (per-prediction explanations).
- `shift`: how far two explanations' shares of importance moved apart (explanation drift).

SHAP explainers: `TreeExplainer` for tree ensembles (scikit-learn forests, gradient boosting
and single trees, LightGBM), `LinearExplainer` for linear models with `coef_`, given the
feature means of the held-out rows as background (so a server needs no rows to explain
with). Other models (pipelines, wrappers, river learners) have no explainer: `Unexplainable`
says why. For a classifier the values are of the favourable (last) class, in the model's
margin units (log-odds for logistic and boosted models, probability for forests).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from driftloop.core.types import JSON

TREE_MODULES = ("sklearn.ensemble", "sklearn.tree", "lightgbm")


class Unexplainable(Exception):
    """The model has no SHAP explainer here; the message says why."""


def explainer_kind(model: Any) -> str:
    """"tree" or "linear" for a model SHAP explains, else `Unexplainable`.

    >>> from sklearn.linear_model import LogisticRegression
    >>> explainer_kind(LogisticRegression())
    'linear'
    >>> explainer_kind(object())
    Traceback (most recent call last):
    ...
    driftloop.train.explain.Unexplainable: no SHAP explainer for object: ...
    """
    module = type(model).__module__
    if module.startswith(TREE_MODULES) and not type(model).__name__.startswith(
            ("AdaBoost", "Bagging", "Stacking", "Voting")):
        return "tree"
    if module.startswith("sklearn.linear_model"):
        return "linear"
    raise Unexplainable(
        f"no SHAP explainer for {type(model).__name__}: explained are tree ensembles "
        "(scikit-learn, LightGBM) and linear models given as the trainer's estimator itself "
        "(not inside a Pipeline or a wrapper)")


def build_explainer(model: Any, background: Mapping[str, float] | None) -> Any:
    """The SHAP explainer for `model`; a linear model needs `background` (feature means)."""
    kind = explainer_kind(model)
    try:
        import shap
    except ModuleNotFoundError as exc:
        raise Unexplainable("SHAP values need the shap package: pip install "
                            "'driftloop[explain]'") from exc
    if kind == "tree":
        return shap.TreeExplainer(model)
    if not background:
        raise Unexplainable("a linear model is explained against the feature means of its "
                            "held-out rows, and this version has none stored")
    means = pd.DataFrame([dict(background)])
    return shap.LinearExplainer(model, shap.maskers.Independent(means))


def contributions(explainer: Any, X: pd.DataFrame) -> np.ndarray[Any, Any]:
    """Each row's SHAP values (rows x features) of the favourable class."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # shap's own deprecation notices
        values = explainer(X).values
    values = np.asarray(values, dtype=float)
    return values[..., -1] if values.ndim == 3 else values


def global_explanation(model: Any, X: pd.DataFrame, y: Any, scoring: Any,
                       repeats: int = 5, seed: int = 0) -> JSON:
    """Permutation importance and mean |SHAP| per feature on the held-out rows `X`, `y`
    (`scoring`: a scikit-learn scorer name or callable; higher is better)."""
    from sklearn.inspection import permutation_importance

    result = permutation_importance(model, X, y, scoring=scoring, n_repeats=repeats,
                                    random_state=seed)
    columns = [str(c) for c in X.columns]
    report: dict[str, Any] = {
        "rows": len(X), "repeats": repeats,
        "permutation": {c: {"mean": float(m), "std": float(s)} for c, m, s in
                        zip(columns, result.importances_mean, result.importances_std,
                            strict=True)},
        "background": {c: float(v) for c, v in X.mean(numeric_only=True).items()},
    }
    try:
        explainer = build_explainer(model, report["background"])
        values = contributions(explainer, X)
    except Unexplainable as exc:
        report.update(shap=None, explainer=None, shap_note=str(exc))
        return report
    report.update(explainer=explainer_kind(model),
                  shap={c: float(v) for c, v in zip(columns, np.abs(values).mean(axis=0),
                                                    strict=True)})
    return report


def shares(explanation: JSON) -> dict[str, float]:
    """Each feature's share of the total importance (mean |SHAP| when there is one, else
    positive permutation importance), summing to 1.

    >>> shares({"shap": {"a": 3.0, "b": 1.0}})
    {'a': 0.75, 'b': 0.25}
    """
    raw = explanation.get("shap") or {
        k: max(v["mean"], 0.0) for k, v in (explanation.get("permutation") or {}).items()}
    total = sum(raw.values())
    return {k: (v / total if total > 0 else 0.0) for k, v in raw.items()}


def shift(before: JSON, after: JSON) -> tuple[float, dict[str, tuple[float, float]]]:
    """The total variation distance between two explanations' shares (0 = relies on the
    features in the same proportions, 1 = on disjoint ones), and each feature's shares.

    >>> shift({"shap": {"a": 1.0, "b": 1.0}}, {"shap": {"a": 3.0, "b": 1.0}})[0]
    0.25
    """
    old, new = shares(before), shares(after)
    features = sorted(set(old) | set(new))
    moved = {f: (old.get(f, 0.0), new.get(f, 0.0)) for f in features}
    return 0.5 * sum(abs(a - b) for a, b in moved.values()), moved
