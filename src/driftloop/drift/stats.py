"""Two-sample tests and distances, vectorised across columns.

Called by `drift.report` (which feeds it a profile's reference and a current batch) and usable on
its own. Matrices are 2-D, one column per feature, NaN meaning missing (dropped per column).
Every function returns one value per column and equals its scipy counterpart on the same data:

- `chi2_counts`: ``scipy.stats.chi2_contingency(table, correction=False)`` on the 2×k table of
  reference and current counts. Yates' correction is never applied (scipy would apply it only
  for k = 2); categories seen on one side only are kept, categories seen on neither are dropped.
  Also returns Cramér's V, ``sqrt(chi2 / N)`` for a 2×k table.
- `psi`: population stability index ``sum((c - r) * ln(c / r))`` over bin proportions, a
  proportion of 0 replaced by `PSI_EPSILON` (1e-4) so empty bins stay finite.
- `jensenshannon`: ``scipy.spatial.distance.jensenshannon(ref, cur, base=2)`` per row of counts.
- `wasserstein`: ``scipy.stats.wasserstein_distance`` per column (the caller normalises it).

The Kolmogorov-Smirnov test is in `drift.ks_columns`; the column sorting it and `wasserstein`
share (`sorted_columns`, `sort_rows`) is here.
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.spatial.distance
import scipy.stats

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

PSI_EPSILON = 1e-4
"""Proportion used in place of an empty bin's 0 in `psi` (no renormalisation)."""

PARALLEL_MIN_N = 200_000
"""Columns this large (reference + current) use every core: their statistics in threads (the
sorts and searchsorted calls release the GIL), their p-values in worker processes (see
`ks_columns`). Small batches stay in one thread, where a pool would cost more than it saves."""

@dataclass(frozen=True)
class Chi2Result:
    """Per-column chi-square statistic, p-value, degrees of freedom and Cramér's V."""

    statistic: FloatArray
    pvalue: FloatArray
    dof: IntArray
    cramers_v: FloatArray


def sorted_columns(matrix: npt.ArrayLike) -> list[FloatArray]:
    """Each column of a 2-D matrix, sorted, without its NaNs; one ``np.sort`` call for all.

    >>> [c.tolist() for c in sorted_columns([[3.0, 1.0], [np.nan, 0.0], [1.0, 2.0]])]
    [[1.0, 3.0], [0.0, 1.0, 2.0]]
    """
    return sort_rows(_rows(matrix))


def sort_rows(rows: FloatArray) -> list[FloatArray]:
    """Sort a (features, rows) matrix in place along its rows; views of each row without NaNs."""
    valid = rows.shape[1] - np.isnan(rows).sum(axis=1)
    if rows.shape[0] > 1 and rows.shape[1] >= PARALLEL_MIN_N:
        halves = np.array_split(np.arange(rows.shape[0]), min(rows.shape[0], os.cpu_count() or 1))
        with concurrent.futures.ThreadPoolExecutor(len(halves)) as pool:  # sort releases the GIL
            list(pool.map(lambda part: rows[part[0] : part[-1] + 1].sort(axis=1), halves))
    else:
        rows.sort(axis=1)  # NaN sorts last
    return [rows[j, : valid[j]] for j in range(rows.shape[0])]


def _rows(matrix: npt.ArrayLike) -> FloatArray:
    """A fresh (features, rows) C-contiguous float64 copy of a (rows, features) matrix."""
    array = np.asarray(matrix, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D matrix (rows, columns); got shape {array.shape}.")
    return np.array(array.T, order="C", copy=True)


def chi2_counts(reference: npt.ArrayLike, current: npt.ArrayLike) -> Chi2Result:
    """Chi-square test of independence of each row's 2×k table [reference; current].

    `reference` and `current` are (columns, categories) count matrices, aligned by category and
    padded with zeros. Equals ``chi2_contingency(table, correction=False)`` on the table without
    its all-zero categories; a table with one category left has statistic 0 and p-value 1.

    >>> r = chi2_counts([[30, 10, 0]], [[20, 10, 5]])
    >>> float(round(r.statistic[0], 6)), int(r.dof[0])
    (6.696429, 2)
    """
    ref = np.atleast_2d(np.asarray(reference, dtype=np.float64))
    cur = np.atleast_2d(np.asarray(current, dtype=np.float64))
    if ref.shape != cur.shape:
        raise ValueError(f"count matrices differ in shape: {ref.shape} vs {cur.shape}.")
    observed = np.stack([ref, cur], axis=1)  # (columns, 2, k)
    row_sums = observed.sum(axis=2, keepdims=True)
    col_sums = observed.sum(axis=1, keepdims=True)
    total = row_sums.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = row_sums * col_sums / total
        terms = np.where(expected > 0, (observed - expected) ** 2 / expected, 0.0)
    statistic = terms.sum(axis=(1, 2))
    dof = np.maximum((col_sums[:, 0, :] > 0).sum(axis=1) - 1, 0).astype(np.int64)
    empty = (row_sums[:, :, 0] == 0).any(axis=1)
    statistic = np.where(dof == 0, 0.0, statistic)
    pvalue = np.where(dof == 0, 1.0, scipy.stats.chi2.sf(statistic, np.maximum(dof, 1)))
    n = total[:, 0, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        cramers_v = np.where(dof == 0, 0.0, np.sqrt(statistic / n))
    nan = np.full(statistic.shape, np.nan)
    return Chi2Result(
        statistic=np.where(empty, nan, statistic),
        pvalue=np.where(empty, nan, pvalue),
        dof=dof,
        cramers_v=np.where(empty, nan, cramers_v),
    )


def _proportions(counts: npt.ArrayLike) -> FloatArray:
    array = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        result: FloatArray = array / array.sum(axis=1, keepdims=True)
    return result


def psi(reference: npt.ArrayLike, current: npt.ArrayLike) -> FloatArray:
    """Population stability index of each row of bin counts; empty bins count as `PSI_EPSILON`.

    >>> float(psi([[50, 50]], [[50, 50]])[0]), float(round(psi([[90, 10]], [[50, 50]])[0], 4))
    (0.0, 0.8789)
    """
    r = _proportions(reference)
    c = _proportions(current)
    r = np.where(r == 0, PSI_EPSILON, r)
    c = np.where(c == 0, PSI_EPSILON, c)
    result: FloatArray = ((c - r) * np.log(c / r)).sum(axis=1)
    return result


def jensenshannon(reference: npt.ArrayLike, current: npt.ArrayLike) -> FloatArray:
    """Jensen-Shannon distance (base 2, in [0, 1]) between each row's binned distributions."""
    ref = np.atleast_2d(np.asarray(reference, dtype=np.float64))
    cur = np.atleast_2d(np.asarray(current, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        result: FloatArray = scipy.spatial.distance.jensenshannon(ref, cur, base=2, axis=1)
    return result


def wasserstein(references: Sequence[FloatArray], currents: Sequence[FloatArray]) -> FloatArray:
    """Wasserstein-1 distance of each sorted column pair (``scipy.stats.wasserstein_distance``).

    >>> float(wasserstein([np.array([0.0, 1.0])], [np.array([1.0, 2.0])])[0])
    1.0
    """
    out = np.full(len(references), np.nan)
    for j, (u, v) in enumerate(zip(references, currents, strict=True)):
        if u.size and v.size:
            pooled = np.concatenate((u, v))
            pooled.sort(kind="mergesort")
            deltas = np.diff(pooled)
            u_cdf = u.searchsorted(pooled[:-1], "right") / u.size
            v_cdf = v.searchsorted(pooled[:-1], "right") / v.size
            out[j] = np.sum(np.multiply(np.abs(u_cdf - v_cdf), deltas))
    return out
