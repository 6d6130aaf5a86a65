"""The exact two-sided p-value of the two-sample KS test, as scipy computes it.

`drift.ks_columns.ks_2samp` asks it for samples of at most 10 000 values (scipy's method "auto").
The p-value depends only on the sample sizes and the statistic D, so the public way to get it
is ``scipy.stats.ks_2samp(method="exact")`` on the smallest data with that D (`public_pvalue`,
`two_samples`). That costs a sort and scipy's checks on top of the computation (measured
3.8 ms against 1.8 ms for n1 = n2 = 5000), so scipy's private routine behind it is called
instead while it answers as the public one does (`private_agrees`, checked once per process);
should scipy drop or change it, the public path takes over.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import scipy.stats

FloatArray = npt.NDArray[np.float64]


def pvalue(n1: int, n2: int, d: float) -> tuple[float, float | None]:
    """The statistic rounded to the grid it lives on (a multiple of 1/lcm(n1, n2)) and its
    exact two-sided p-value, or None where scipy's exact method fails (it then warns and
    answers the asymptotic value, which the caller computes in one vectorised call). Through
    scipy's private routine while `private_agrees`, else `public_pvalue`.

    >>> pvalue(30, 45, 0.4) == public_pvalue(30, 45, 0.4)
    True
    """
    lcm = math.lcm(n1, n2)
    h = round(d * lcm)
    rounded = h / lcm
    if h == 0:
        return rounded, 1.0
    if PRIVATE is not None and private_agrees():
        ok, _, prob = PRIVATE(n1, n2, math.gcd(n1, n2), rounded, "two-sided")
        return rounded, float(prob) if ok else None
    return public_pvalue(n1, n2, rounded)


def public_pvalue(n1: int, n2: int, d: float) -> tuple[float, float | None]:
    """`pvalue` through ``scipy.stats.ks_2samp`` only: i of n1 and j of n2 values at 0,
    the rest at 1, where i/n1 - j/n2 = D (`grid_point`).

    >>> d, p = public_pvalue(30, 45, 0.4)
    >>> found = scipy.stats.ks_2samp(*two_samples(30, 45, d), method="exact")
    >>> d, float(found.statistic) == d, p == float(found.pvalue)
    (0.4, True, True)
    """
    rounded = round(d * math.lcm(n1, n2)) / math.lcm(n1, n2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = scipy.stats.ks_2samp(*two_samples(n1, n2, rounded), method="exact")
    if any(issubclass(w.category, RuntimeWarning) for w in caught):
        return rounded, None
    return rounded, float(result.pvalue)


PRIVATE: Callable[..., tuple[bool, float, float]] | None = getattr(
    getattr(scipy.stats, "_stats_py", None), "_attempt_exact_2kssamp", None)


@functools.cache
def private_agrees() -> bool:
    """Whether scipy still has its private exact routine and it answers as `public_pvalue`
    on a few cases (equal and unequal sizes, a tiny and a large p-value)."""
    if PRIVATE is None:
        return False
    try:
        for n1, n2, d in ((30, 45, 0.4), (40, 40, 0.125), (7, 300, 0.9)):
            rounded, expected = public_pvalue(n1, n2, d)
            ok, _, prob = PRIVATE(n1, n2, math.gcd(n1, n2), rounded, "two-sided")
            if not ok or expected is None or float(prob) != expected:
                return False
    except (TypeError, ValueError):  # another signature or behaviour
        return False
    return True


def two_samples(n1: int, n2: int, d: float) -> tuple[FloatArray, FloatArray]:
    """Two samples of sizes n1 and n2 whose two-sample KS statistic is `d`."""
    i, j = grid_point(n1, n2, round(d * math.lcm(n1, n2)))
    a = np.zeros(n1)
    a[i:] = 1.0
    b = np.zeros(n2)
    b[j:] = 1.0
    return a, b


def grid_point(n1: int, n2: int, h: int) -> tuple[int, int]:
    """(i, j) with 0 <= i <= n1, 0 <= j <= n2 and i/n1 - j/n2 = h/lcm(n1, n2), for an h that
    two samples of these sizes can reach (every statistic of `drift.ks_columns.ks_2samp` is one).

    >>> grid_point(4, 6, 5)  # 3/4 - 2/6 = 5/12
    (3, 2)
    """
    g = math.gcd(n1, n2)
    step1, step2 = n1 // g, n2 // g
    # i * step2 ≡ h (mod step1): one residue class of i, of which the largest <= n1 is taken
    base = h * pow(step2, -1, step1) % step1 if step1 > 1 else 0
    i = base + (n1 - base) // step1 * step1
    j = (i * step2 - h) // step1
    if not (0 <= j <= n2):
        raise ValueError(f"no KS grid point {h}/{math.lcm(n1, n2)} for sizes {n1}, {n2}")
    return i, j
