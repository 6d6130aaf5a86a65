"""Drift of a free-text column: three tests of current text against reference text.

* **language shares**: chi-square on the counts of detected languages (`data.text_profile`;
  languages seen fewer than 5 times on both sides pooled as ``other``), drift when significant
  and the shares moved by at least `language_shift` (total variation distance);
* **vocabulary**: the out-of-vocabulary rate of each current text against the words of one half
  of the reference, compared (one-sided Mann-Whitney) with that of the other half (which gives
  the rate expected without drift); drift when significant and the mean rate rose by at least
  `oov_increase`;
* **classifier two-sample test**: logistic regression on character n-gram TF-IDF
  (`char_wb`, 2-4; no tokenizer, so any language or script) learns to tell current from
  reference text; its out-of-fold scores give a cross-validated AUC, significant when the
  Mann-Whitney test of the scores of the two sides says so; drift when significant and the AUC
  is at least `min_auc`. The n-grams with the largest weights each way are the evidence.

Each test runs at `alpha / 3` (Bonferroni over the three); the column drifted if any fired.
Each side is sampled down to `max_rows` texts (fixed seed) and a test needs `min_rows` each.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from driftloop.core import text_spec, types
from driftloop.data import text_profile


@dataclass(frozen=True)
class TextTest:
    """One test's outcome on one column."""

    name: str
    statistic: float | None
    p_value: float | None
    effect: float | None
    drifted: bool
    evidence: types.JSON = field(default_factory=dict)


@dataclass(frozen=True)
class TextDrift:
    """The three tests on one text column."""

    column: str
    n_reference: int
    n_current: int
    tests: tuple[TextTest, ...]

    @property
    def drifted(self) -> bool:
        return any(test.drifted for test in self.tests)

    def to_json(self) -> types.JSON:
        return {
            "column": self.column, "drifted": self.drifted, "n_reference": self.n_reference,
            "n_current": self.n_current,
            "tests": [{"name": t.name, "statistic": t.statistic, "p_value": t.p_value,
                       "effect": t.effect, "drifted": t.drifted, "evidence": t.evidence}
                      for t in self.tests],
        }


def detect_text_drift(
    column: str, reference: Sequence[str], current: Sequence[str], spec: text_spec.TextSpec,
) -> TextDrift:
    """Test `current` texts against `reference` texts of `column` (see the module docstring)."""
    rng = random.Random(spec.seed)
    ref = _sample(reference, spec.max_rows, rng)
    cur = _sample(current, spec.max_rows, rng)
    if min(len(ref), len(cur)) < spec.min_rows:
        return TextDrift(column, len(ref), len(cur), ())
    alpha = spec.alpha / 3
    tests = (
        language_test(ref, cur, spec, alpha),
        vocabulary_test(ref, cur, spec, alpha, rng),
        classifier_test(ref, cur, spec, alpha),
    )
    return TextDrift(column, len(ref), len(cur), tests)


def language_test(
    reference: Sequence[str], current: Sequence[str], spec: text_spec.TextSpec, alpha: float,
) -> TextTest:
    """Chi-square on detected-language counts; effect: total variation distance of shares."""
    import numpy as np
    from scipy import stats

    ref = Counter(text_profile.languages_of(reference, spec.languages))
    cur = Counter(text_profile.languages_of(current, spec.languages))
    names = sorted(set(ref) | set(cur), key=lambda k: -(ref[k] + cur[k]))
    common = [k for k in names if ref[k] + cur[k] >= 5]
    other = (len(reference) - sum(ref[k] for k in common),
             len(current) - sum(cur[k] for k in common))
    table = np.array([(ref[k], cur[k]) for k in common] + ([other] if sum(other) else []),
                     dtype=float).T
    shares = table / table.sum(axis=1, keepdims=True)
    tvd = float(0.5 * np.abs(shares[0] - shares[1]).sum())
    evidence = {"reference": dict(ref.most_common(8)), "current": dict(cur.most_common(8))}
    if table.shape[1] < 2:
        return TextTest("languages", None, 1.0, tvd, False, evidence)
    statistic, p_value, _, _ = stats.chi2_contingency(table)
    drifted = bool(p_value < alpha and tvd >= spec.language_shift)
    return TextTest("languages", float(statistic), float(p_value), tvd, drifted, evidence)


def vocabulary_test(
    reference: Sequence[str], current: Sequence[str], spec: text_spec.TextSpec, alpha: float,
    rng: random.Random,
) -> TextTest:
    """Per-text out-of-vocabulary rates of current text vs the held-out half of the reference."""
    import numpy as np
    from scipy import stats

    order = list(range(len(reference)))
    rng.shuffle(order)
    half = len(order) // 2
    vocabulary = {w for i in order[:half] for w in text_profile.tokens(reference[i])}
    held = _oov_rates([reference[i] for i in order[half:]], vocabulary)
    now = _oov_rates(current, vocabulary)
    if len(held) < 2 or len(now) < 2:
        return TextTest("vocabulary", None, None, None, False, {"note": "too few words"})
    rise = float(np.mean(now) - np.mean(held))
    test = stats.mannwhitneyu(now, held, alternative="greater")
    evidence = {"oov_reference": float(np.mean(held)), "oov_current": float(np.mean(now)),
                "vocabulary": len(vocabulary)}
    drifted = bool(test.pvalue < alpha and rise >= spec.oov_increase)
    return TextTest("vocabulary", float(test.statistic), float(test.pvalue), rise, drifted,
                    evidence)


def classifier_test(
    reference: Sequence[str], current: Sequence[str], spec: text_spec.TextSpec, alpha: float,
) -> TextTest:
    """Cross-validated AUC of a char n-gram classifier telling current from reference text."""
    import numpy as np
    from scipy import stats
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline

    texts = list(reference) + list(current)
    y = np.r_[np.zeros(len(reference)), np.ones(len(current))]

    def model() -> Any:
        return make_pipeline(
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2,
                            max_features=50_000, sublinear_tf=True),
            LogisticRegression(C=1.0, max_iter=1000, class_weight="balanced"),
        )

    folds = StratifiedKFold(spec.folds, shuffle=True, random_state=spec.seed)
    scores = cross_val_predict(model(), texts, y, cv=folds, method="decision_function")
    auc = float(roc_auc_score(y, scores))
    test = stats.mannwhitneyu(scores[y == 1], scores[y == 0], alternative="greater")
    drifted = bool(test.pvalue < alpha and auc >= spec.min_auc)
    evidence: dict[str, Any] = {"auc": auc, "folds": spec.folds}
    if drifted:  # what tells them apart: the strongest n-grams each way
        fitted = model().fit(texts, y)
        vectorizer, classifier = fitted.steps[0][1], fitted.steps[1][1]
        names = vectorizer.get_feature_names_out()
        weights = classifier.coef_[0]
        order = np.argsort(weights)
        evidence["current_ngrams"] = [str(names[i]) for i in order[::-1][:8]]
        evidence["reference_ngrams"] = [str(names[i]) for i in order[:8]]
    return TextTest("classifier", float(test.statistic), float(test.pvalue), auc, drifted,
                    evidence)


def _oov_rates(texts: Sequence[str], vocabulary: set[str]) -> list[float]:
    rates = []
    for text in texts:
        words = text_profile.tokens(text)
        if words:
            rates.append(sum(w not in vocabulary for w in words) / len(words))
    return rates


def _sample(texts: Sequence[str], size: int, rng: random.Random) -> list[str]:
    items = list(texts)
    return items if len(items) <= size else rng.sample(items, size)
