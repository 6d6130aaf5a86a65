"""The trainer of this pipeline: driftloop calls make_model(**params) (make_regressor for a
numeric target) and fits what it returns on the feature columns (every column but the target
and the timestamp)."""

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline


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


def make_text_model(column: str = "text", max_features: int = 50_000) -> Pipeline:
    """For a column of free text in any language (`text:` in the spec): character n-grams
    (2-4, within words) weighted by TF-IDF, then a logistic regression. No tokenizer or word
    list, so it works the same for English, German, Russian or Japanese; other columns are
    dropped (add them to the ColumnTransformer to use them too)."""
    features = ColumnTransformer(
        [("text", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2,
                                  max_features=max_features, sublinear_tf=True), column)],
        remainder="drop",
    )
    return Pipeline([("features", features), ("model", LogisticRegression(max_iter=1000))])
