"""The trainer of this pipeline: driftloop calls make_model(**params) (make_regressor for a
numeric target) and fits what it returns on the feature columns (every column but the target
and the timestamp)."""

from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor


def make_model(max_iter: int = 50, learning_rate: float = 0.2) -> HistGradientBoostingClassifier:
    """Gradient-boosted trees: fast, strong on tabular data, no feature scaling needed."""
    return HistGradientBoostingClassifier(
        max_iter=max_iter, learning_rate=learning_rate, random_state=0
    )


def make_regressor(max_iter: int = 50, learning_rate: float = 0.2) -> HistGradientBoostingRegressor:
    """The same for a numeric target (`task: regression`)."""
    return HistGradientBoostingRegressor(
        max_iter=max_iter, learning_rate=learning_rate, random_state=0
    )
