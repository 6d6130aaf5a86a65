"""Binned shares of each column, reference against current: what a drift report draws as one
small histogram per column instead of shipping rows.

Numeric columns use the reference profile's quantile bins (the same bins PSI and
Jensen-Shannon use), categorical columns the `max_categories` most frequent categories (by
reference plus current count) and one "other" bucket. Shares are rounded to 4 digits, so a
column costs a few hundred bytes of JSON whatever the number of rows.

Called by `driftloop report` (`cli.report_command`) before `ui.drift_report` renders.

    >>> import pandas as pd
    >>> from driftloop.data import profile as profiles
    >>> reference = profiles.build_profile(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}),
    ...                                    columns={"x": "numeric"}, bins=2)
    >>> found = column_histograms(reference, pd.DataFrame({"x": [4.0, 5.0]}), ["x"])["x"]
    >>> found.reference, found.current
    ((0.5, 0.5), (0.0, 1.0))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from driftloop.core import types
from driftloop.data import profile as profiles

MAX_CATEGORIES = 12


@dataclass(frozen=True)
class Histogram:
    """Shares per bin (each side sums to 1, or is all 0 without values) and the bin names."""

    bins: tuple[str, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]


def column_histograms(
    reference_profile: types.JSON, current: pd.DataFrame, names: Sequence[str],
    max_categories: int = MAX_CATEGORIES,
) -> dict[str, Histogram]:
    """The histogram of every column of `names` the profile and `current` both have."""
    kinds = profiles.column_kinds(reference_profile)
    out: dict[str, Histogram] = {}
    for name in names:
        if name not in kinds or name not in current.columns:
            continue
        if kinds[name] == "numeric":
            out[name] = _numeric(reference_profile, current[name], name)
        else:
            out[name] = _categorical(reference_profile, current[name], name, max_categories)
    return out


def _numeric(reference_profile: types.JSON, values: pd.Series[float], name: str) -> Histogram:
    edges = profiles.bin_edges(reference_profile, name)
    ref = profiles.bin_counts(reference_profile, name).astype(np.float64)
    finite = values.to_numpy(dtype=np.float64, na_value=np.nan)
    cur = profiles.binned_counts_sorted(np.sort(finite[~np.isnan(finite)]), edges)
    cur = cur[: ref.size].astype(np.float64)
    labels = tuple(f"{edges[i]:.4g}" for i in range(ref.size))
    return Histogram(labels, _shares(ref), _shares(cur))


def _categorical(
    reference_profile: types.JSON, values: pd.Series[object], name: str, limit: int,
) -> Histogram:
    ref = profiles.category_counts(reference_profile, name)
    cur: dict[str, int] = {}
    for value, count in values.value_counts(dropna=True, sort=False).items():
        cur[str(value)] = cur.get(str(value), 0) + int(count)
    ranked = sorted(set(ref) | set(cur), key=lambda c: (-(ref.get(c, 0) + cur.get(c, 0)), c))
    kept, rest = ranked[:limit], ranked[limit:]
    ref_counts = [ref.get(c, 0) for c in kept]
    cur_counts = [cur.get(c, 0) for c in kept]
    if rest:
        kept.append("other")
        ref_counts.append(sum(ref.get(c, 0) for c in rest))
        cur_counts.append(sum(cur.get(c, 0) for c in rest))
    return Histogram(tuple(kept), _shares(np.asarray(ref_counts, dtype=np.float64)),
                     _shares(np.asarray(cur_counts, dtype=np.float64)))


def _shares(counts: npt.NDArray[Any]) -> tuple[float, ...]:
    total = counts.sum()
    if total <= 0:
        return tuple(0.0 for _ in counts)
    return tuple(round(float(c) / float(total), 4) for c in counts)
