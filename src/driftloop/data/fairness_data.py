"""Data with a sensitive attribute: a real data set a package ships, and a synthetic stream
with bias injected at a known batch (so tests know the truth).

`arrests` is the Toronto arrests for marijuana possession data (Friendly; carData's `Arrests`,
5 226 rows: was the arrestee released with a summons, with skin colour, sex, age, year,
employment, citizenship and previous police checks). scikit-lego's wheel ships it as
``sklego/data/arrests.zip``; nothing is downloaded (the `fairness` extra installs it).

`biased_stream` draws batches of two features `x1`, `x2` and a group `g` (share `minority` of
"B"); the label is ``x1 + x2 + noise > 0`` for everyone. From batch `bias_at` on, group B's
`x1` is recorded 1.5 lower than it is (a measurement bias: its labels still follow the true
value), so a model that learned before sees B's rows as worse and selects them less often:
the champion's demographic parity difference jumps from sampling noise (about 0.03 at 1 000
rows a batch) to about 0.3.

    >>> frames = biased_stream(batches=3, rows=200, bias_at=2)
    >>> [len(f) for f in frames], list(frames[0].columns)
    ([200, 200, 200], ['x1', 'x2', 'g', 'y'])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftloop.core import errors

if TYPE_CHECKING:
    import pandas as pd

BIAS_SHIFT = 1.5
"""How much lower group B's `x1` is recorded from the injection on."""


def arrests() -> pd.DataFrame:
    """The arrests data as scikit-lego ships it: `released` (Yes/No) is the label, `colour`
    (White/Black), `sex` and `age` the sensitive attributes."""
    try:
        from sklego import datasets
    except ModuleNotFoundError as exc:
        raise errors.ConfigError("the arrests data ships with scikit-lego: pip install "
                                 "'driftloop[fairness]'") from exc
    frame: pd.DataFrame = datasets.load_arrests(as_frame=True)
    return frame


def biased_stream(batches: int = 30, rows: int = 1000, bias_at: int = 15, minority: float = 0.3,
                  seed: int = 0) -> list[pd.DataFrame]:
    """`batches` frames of `rows` rows; from batch index `bias_at` (0-based) on, group B's
    `x1` is recorded `BIAS_SHIFT` lower than the value its label follows."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frames = []
    for index in range(batches):
        x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
        group = np.where(rng.random(rows) < minority, "B", "A")
        label = (x1 + x2 + rng.normal(scale=0.5, size=rows) > 0).astype(int)
        seen = x1 - BIAS_SHIFT * ((group == "B") & (index >= bias_at))
        frames.append(pd.DataFrame({"x1": seen, "x2": x2, "g": group, "y": label}))
    return frames
