"""The two-sample Kolmogorov-Smirnov test of many columns at once, equal to scipy's.

`ks_2samp` gives the statistic and p-value of ``scipy.stats.ks_2samp`` (two-sided, method
"auto": the exact distribution when ``max(n1, n2) <= 10000``, else ``scipy.stats.kstwo`` at
``round(n1*n2/(n1+n2))``; the exact p-value is scipy's (`ks_exact`: the public
``ks_2samp(method="exact")``, or the faster private routine behind it while the two agree), and
where scipy would warn and fall back to the asymptotic p-value this does the same without the
warning). NaN means missing (dropped per column).

How it is fast: all columns are sorted in one ``np.sort`` call; the KS statistic then needs one
``searchsorted`` of the current values into the reference per column (the fix-ups for ties are
vectorised), and the asymptotic p-values are one vectorised ``kstwo.sf`` call. The short loop
over columns only dispatches O(n log n) C calls; flattening all columns into one lexicographic
(complex) searchsorted was measured slower than that loop. Large columns use every core (see
`stats.PARALLEL_MIN_N`), so one slow p-value (scipy's Smirnov series at large n) overlaps with the
other columns' work.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ref, cur = rng.normal(size=(500, 3)), rng.normal(size=(400, 3)) + [0, 0, 1]
>>> result = ks_2samp(ref, cur)
>>> [bool(p < 0.01) for p in result.pvalue]
[False, False, True]
"""

from __future__ import annotations

import atexit
import concurrent.futures
import functools
import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.stats

from driftloop.drift import ks_exact, stats

FloatArray = stats.FloatArray
IntArray = stats.IntArray

EXACT_MAX_N = 10_000
"""Largest sample size for which KS uses the exact distribution (scipy's ``MAX_AUTO_N``)."""


@dataclass(frozen=True)
class TestResult:
    """Per-column statistic and p-value (NaN where a column had no values on one side)."""

    statistic: FloatArray
    pvalue: FloatArray


def ks_2samp(reference: npt.ArrayLike, current: npt.ArrayLike) -> TestResult:
    """Two-sided two-sample KS test of each column, equal to ``scipy.stats.ks_2samp``."""
    return ks_sorted(stats.sorted_columns(reference), stats.sorted_columns(current))


def ks_sorted(references: Sequence[FloatArray], currents: Sequence[FloatArray]) -> TestResult:
    """KS test on pre-sorted, NaN-free columns (`references[j]` against `currents[j]`)."""
    if len(references) != len(currents):
        raise ValueError(f"{len(references)} reference columns but {len(currents)} current ones.")
    n1 = np.array([r.size for r in references], dtype=np.int64)
    n2 = np.array([c.size for c in currents], dtype=np.int64)
    large = len(currents) > 1 and int((n1 + n2).max(initial=0)) >= stats.PARALLEL_MIN_N
    return _ks(references.__getitem__, n1, currents.__getitem__, large, range(len(currents)))


def ks_rows(
    reference: Callable[[int], FloatArray],
    n1: IntArray,
    rows: FloatArray,
    order: Sequence[int] | None = None,
) -> tuple[TestResult, list[FloatArray]]:
    """KS tests of the unsorted rows of a (columns, values) matrix, NaN meaning missing, against
    sorted, NaN-free references of sizes `n1`. The task of column j calls `reference(j)` (so a
    stored sample is decoded there, off the critical path) and sorts row j in place; large
    columns run their tasks in `order` (see `slow_first`) so a slow p-value starts as early as it
    can. Returns the result and the sorted, NaN-free rows (views)."""
    m = rows.shape[0]
    if len(n1) != m:
        raise ValueError(f"{len(n1)} reference columns but {m} current ones.")
    sorted_rows: list[FloatArray] = [rows[j, :0] for j in range(m)]

    def prepare(j: int) -> FloatArray:
        rows[j].sort()  # NaN sorts last, and searchsorted puts NaN after every number
        sorted_rows[j] = rows[j, : int(np.searchsorted(rows[j], np.nan))]
        return sorted_rows[j]

    large = m > 1 and rows.shape[1] + int(n1.max(initial=0)) >= stats.PARALLEL_MIN_N
    result = _ks(reference, n1, prepare, large, range(m) if order is None else order)
    return result, sorted_rows


SLOW_NDSQUARED = (4.0, 370.0)
"""``n * D**2`` range where scipy's `kstwo.sf` at large n runs its exact Smirnov series (it does
for [2.2, 370)); the lower end is raised because `slow_first` estimates D from a sample."""

_ORDER_SAMPLE = 200_000


def slow_first(
    points: Sequence[FloatArray], below: Sequence[FloatArray], rows: FloatArray, n1: IntArray
) -> list[int]:
    """A task order for `ks_rows`: the columns whose p-value will be slow first (largest estimated
    ``n * D**2`` first), so that it starts before the other columns are sorted. D is estimated as
    the largest gap between `below[j]` (the reference's share below each of `points[j]`, e.g. a
    profile's bin edges) and the share of the first `_ORDER_SAMPLE` current values below them,
    at the points nearest the quartiles: milliseconds, and the order changes speed, never
    results.

    >>> rows = np.array([np.linspace(0, 1, 1000), np.linspace(0.05, 1.05, 1000)])
    >>> edges, shares = np.array([0.25, 0.5, 0.75]), np.array([0.25, 0.5, 0.75])
    >>> slow_first([edges, edges], [shares, shares], rows, np.array([20_000, 20_000]))
    [1, 0]
    """
    m = rows.shape[0]
    sample = rows[:, :_ORDER_SAMPLE]
    d = np.zeros(m)
    for j in range(m):
        valid = sample.shape[1] - int(np.count_nonzero(np.isnan(sample[j])))
        if not valid or not len(points[j]):
            continue
        nearest = np.unique(np.abs(below[j][:, None] - [0.25, 0.5, 0.75]).argmin(axis=0))
        for point, share in zip(points[j][nearest], below[j][nearest], strict=True):
            d[j] = max(d[j], abs(np.count_nonzero(sample[j] < point) / valid - share))
    nd2 = _effective_n(n1, np.full(m, rows.shape[1], dtype=np.int64)) * d**2
    slow = (nd2 >= SLOW_NDSQUARED[0]) & (nd2 < SLOW_NDSQUARED[1])
    return [int(j) for j in np.lexsort((-nd2, ~slow))]


def _ks(
    reference: Callable[[int], FloatArray],
    n1: IntArray,
    current: Callable[[int], FloatArray],
    large: bool,
    order: Iterable[int],
) -> TestResult:
    """The KS tests; `reference(j)` and `current(j)` give column j sorted and NaN-free (each
    called at most once). Large columns: one task per column (sort, statistic) in threads, and
    each asymptotic p-value goes to a worker process the moment its statistic is known."""
    m = len(n1)
    n2 = np.zeros(m, dtype=np.int64)

    def test(j: int) -> tuple[float, Callable[[], float] | None]:
        column = current(j)
        n2[j] = column.size
        if not (n1[j] and n2[j]):
            return float("nan"), None
        value = _ks_statistic(reference(j), column)
        if not large or max(n1[j], n2[j]) <= EXACT_MAX_N:
            return value, None
        return value, _pvalue_later(value, float(_effective_n(n1[[j]], n2[[j]])[0]))

    if large:
        # one core stays free for the worker process that computes the slow p-values
        with concurrent.futures.ThreadPoolExecutor(max(1, (os.cpu_count() or 1) - 1)) as pool:
            tasks = list(order)
            tested = dict(zip(tasks, pool.map(test, tasks), strict=True))
    else:
        tested = {j: test(j) for j in range(m)}
    d = np.array([tested[j][0] for j in range(m)], dtype=np.float64)
    early = [j for j in range(m) if tested[j][1] is not None]
    d[early] = np.nan  # their p-values come from the workers
    d, p = _ks_pvalues(d, n1, n2)
    for j in early:
        value, result = tested[j]
        assert result is not None
        d[j], p[j] = value, min(max(result(), 0.0), 1.0)
    return TestResult(d, p)


def _ks_statistic(a: FloatArray, b: FloatArray) -> float:
    """max |F_a - F_b| over the pooled points, with scipy's arithmetic (count/n - count/n).

    Only the current points need searching: on each interval [b[k], b[k+1]) the ECDF of `b` is
    constant, so F_a - F_b is smallest at b[k] (a-count ``<= b[k]``) and largest just before
    b[k+1] (a-count ``< b[k+1]``), which is the value at the last pooled point before b[k+1].
    In exact integers (times n1*n2) those are ``lo[k] = right[k]*n2 - (k+1)*n1`` and
    ``hi[k] = left[k]*n2 - k*n1``.

    Branch and bound: the counts are first found at every `_BLOCK`-th point only; since they
    rise with k, they bound `lo` and `hi` inside each block, and only the blocks whose bound
    reaches the best value found are searched in full. The result is exact; on 1 M points it
    searches a few percent of them.
    """
    n1, n2 = a.size, b.size
    ends = np.unique(np.concatenate((np.arange(0, n2, _BLOCK), [n2 - 1])))
    right_e, left_e = _counts(a, b, ends)
    lo_e = right_e * n2 - (ends + 1) * n1
    hi_e = left_e * n2 - ends * n1
    best = max(int(hi_e.max()), int(-lo_e.min()), 0)
    # bounds inside block (ends[i], ends[i+1]): k+1 <= ends[i+1], k >= ends[i] + 1
    lo_bound = right_e[:-1] * n2 - ends[1:] * n1
    hi_bound = right_e[1:] * n2 - (ends[:-1] + 1) * n1
    open_ = (ends[1:] - ends[:-1] > 1) & ((-lo_bound >= best) | (hi_bound >= best))
    starts, stops = ends[:-1][open_] + 1, ends[1:][open_]
    lengths = stops - starts
    inner = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    inner += np.arange(lengths.sum())
    right_i, left_i = _counts(a, b, inner)
    ks = np.concatenate((ends, inner))
    right = np.concatenate((right_e, right_i))
    left = np.concatenate((left_e, left_i))
    lo = right * n2 - (ks + 1) * n1
    hi = left * n2 - ks * n1
    best = max(int(hi.max()), int(-lo.min()), 0)
    if best == 0:
        return 0.0
    # the float value exactly as scipy computes it, at every point reaching the exact maximum
    min_s = -(right[lo == -best] / n1 - (ks[lo == -best] + 1) / n2)
    max_s = left[hi == best] / n1 - ks[hi == best] / n2
    return float(max(min_s.max(initial=0.0), max_s.max(initial=0.0)))


_BLOCK = 64


def _counts(
    a: FloatArray, b: FloatArray, ks: npt.NDArray[np.intp]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """a-counts ``<= b[k]`` and ``< b[k]`` for the (sorted) indices `ks`."""
    keys = b[ks]
    right = np.searchsorted(a, keys, side="right").astype(np.int64)
    left = right.copy()
    # b[k] equal to some reference value: its a-count "< b[k]" is smaller than "<= b[k]".
    hit = right > 0
    hit[hit] = a[right[hit] - 1] == keys[hit]
    if hit.any():
        left[hit] = np.searchsorted(a, keys[hit], side="left")
    return right, left


def _ks_pvalues(d: FloatArray, n1: IntArray, n2: IntArray) -> tuple[FloatArray, FloatArray]:
    """scipy's method="auto" p-values; exact statistics are rounded as scipy rounds them."""
    d = d.copy()
    p = np.full(d.shape, np.nan)
    asymp = ~np.isnan(d)
    for j in np.flatnonzero(asymp & (np.maximum(n1, n2) <= EXACT_MAX_N)):
        d[j], prob = ks_exact.pvalue(int(n1[j]), int(n2[j]), float(d[j]))
        if prob is not None:
            p[j], asymp[j] = prob, False
    if asymp.any():
        en = _effective_n(n1[asymp], n2[asymp])
        if en.size > 1 and en.max() >= stats.PARALLEL_MIN_N // 2:
            pairs = list(zip(d[asymp], en, strict=True))
            waiting = [_pvalue_later(x, n) for x, n in pairs]
            p[asymp] = [result() for result in waiting]
        else:
            p[asymp] = scipy.stats.kstwo.sf(d[asymp], en)
    return d, np.clip(p, 0.0, 1.0)


def _effective_n(n1: IntArray, n2: IntArray) -> FloatArray:
    """``round(n1*n2/(n1+n2))`` computed as scipy computes it (larger sample first)."""
    big = np.maximum(n1, n2).astype(np.float64)
    small = np.minimum(n1, n2).astype(np.float64)
    return np.round(big * small / (big + small))


def _kstwo_sf(d: float, n: float) -> float:
    return float(scipy.stats.kstwo.sf(d, n))


def _pvalue_later(d: float, en: float) -> Callable[[], float]:
    """`_kstwo_sf(d, en)` started in a worker process (see `_pvalue_pool`); call the result to
    wait for it. Computed here instead if the pool is broken, at submission or while waiting (a
    worker was killed, or the calling script lacks ``if __name__ == "__main__"`` and re-ran
    itself in the worker)."""
    try:
        future: concurrent.futures.Future[float] | None = _pvalue_pool().submit(_kstwo_sf, d, en)
    except concurrent.futures.BrokenExecutor:
        future = None

    def result() -> float:
        if future is not None:
            try:
                return future.result()
            except concurrent.futures.BrokenExecutor:
                pass
        _pvalue_pool.cache_clear()
        return _kstwo_sf(d, en)

    return result


@functools.cache
def _pvalue_pool() -> concurrent.futures.ProcessPoolExecutor:
    """Worker processes for large-n KS p-values. At large n scipy's `kstwo.sf` is a Python
    series that holds the GIL for up to a second per column, so threads cannot overlap it;
    processes can (the arguments and the result are two floats). Started once, on first use,
    from a fork server that has scipy loaded."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["scipy.stats"])
    pool = concurrent.futures.ProcessPoolExecutor(os.cpu_count() or 1, mp_context=context)
    atexit.register(pool.shutdown)  # before the interpreter tears its modules down
    return pool
