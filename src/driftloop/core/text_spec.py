"""The `text:` section of a pipeline spec: free-text columns, checked and watched for drift.

Columns listed here are of type text: not categories, not ids. Each batch's text is profiled
(empty rate, length distribution, writing scripts, detected languages; `data.text_profile`),
checked (`validation.text_checks`: too many empty texts, lengths or scripts never seen) and
tested against the champion's training text (`drift.text`): language shares (chi-square),
out-of-vocabulary rate, and a classifier two-sample test on character n-grams.

    text:
      columns: [review]
      languages: [en, de, fr, es, it, ru, ja]   # optional: what the identifier picks from
"""

from __future__ import annotations

from pydantic import Field

from driftloop.core.spec_base import Spec as _Spec


class TextSpec(_Spec):
    """Free-text columns and the settings of their checks and drift tests.

    >>> TextSpec(columns=["review"]).alpha
    0.01
    """

    columns: list[str] = Field(min_length=1, description="The columns of type text")
    languages: list[str] | None = Field(
        default=None, description="ISO 639-1 codes the language identifier chooses among"
    )
    max_empty_rate: float = Field(
        default=0.5, ge=0, le=1, description="A batch with more empty texts has a quality signal"
    )
    alpha: float = Field(default=0.01, gt=0, lt=1, description="Significance of each test")
    min_rows: int = Field(default=50, ge=10, description="Texts each side needs for a test")
    max_rows: int = Field(default=2000, ge=50, description="Texts sampled each side at most")
    language_shift: float = Field(
        default=0.1, gt=0, le=1, description="Language-share change (total variation) that counts"
    )
    oov_increase: float = Field(
        default=0.05, gt=0, le=1, description="Rise of the out-of-vocabulary rate that counts"
    )
    min_auc: float = Field(
        default=0.55, gt=0.5, lt=1, description="Classifier AUC that counts (0.5: no difference)"
    )
    folds: int = Field(default=5, ge=2, le=20)
    seed: int = 0
