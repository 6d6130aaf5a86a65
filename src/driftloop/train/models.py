"""Built-in trainers, usable as `trainer.function` without writing a train.py, e.g.
``function: driftloop.train.models:hist_gradient_boosting``. The demo uses them."""

from __future__ import annotations

from typing import Any


def hist_gradient_boosting(
    max_iter: int = 100, learning_rate: float = 0.1, max_leaf_nodes: int = 31, random_state: int = 0
) -> Any:
    """Gradient-boosted trees (scikit-learn): strong on tabular data, no scaling needed.

    >>> hist_gradient_boosting(max_iter=50).get_params()["max_iter"]
    50
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=max_iter, learning_rate=learning_rate, max_leaf_nodes=max_leaf_nodes,
        early_stopping=False, random_state=random_state,
    )
