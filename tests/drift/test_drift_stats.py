"""drift.stats against scipy on the same data: KS, chi-square, PSI, Wasserstein, Jensen-Shannon."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.spatial.distance
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from driftloop.drift import ks_columns, ks_exact, stats

RTOL = 1e-9


def _scipy_ks(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float] | None:
    """scipy's result, or None where scipy itself warns (exact computation failed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            result = scipy.stats.ks_2samp(ref, cur)
        except RuntimeWarning:
            return None
    return float(result.statistic), float(result.pvalue)


def _check_ks(ref: np.ndarray, cur: np.ndarray) -> None:
    ours = ks_columns.ks_2samp(ref, cur)
    for j in range(ref.shape[1]):
        r, c = ref[:, j], cur[:, j]
        expected = _scipy_ks(r[~np.isnan(r)], c[~np.isnan(c)])
        if expected is None:
            continue
        assert ours.statistic[j] == pytest.approx(expected[0], rel=1e-12, abs=0)
        assert ours.pvalue[j] == pytest.approx(expected[1], rel=RTOL, abs=0)


@settings(max_examples=150, deadline=None)
@given(
    n1=st.integers(1, 80), n2=st.integers(1, 80), m=st.integers(1, 4),
    levels=st.sampled_from([2, 3, 10, 0]), shift=st.floats(0, 2), seed=st.integers(0, 10**6),
)
def test_ks_equals_scipy_small_samples_with_ties(
    n1: int, n2: int, m: int, levels: int, shift: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    if levels:  # heavy ties
        ref = rng.integers(0, levels, (n1, m)).astype(float)
        cur = rng.integers(0, levels, (n2, m)).astype(float) + np.round(shift)
    else:
        ref = rng.normal(size=(n1, m))
        cur = rng.normal(shift, 1.0, size=(n2, m))
    _check_ks(ref, cur)


@pytest.mark.parametrize(
    ("n1", "n2"),
    [(3000, 2500), (10_000, 10_000), (10_000, 7), (12_000, 9_000), (50_000, 40_000),
     (200_000, 3_000)],
)
def test_ks_equals_scipy_exact_and_asymptotic_branches(n1: int, n2: int) -> None:
    rng = np.random.default_rng(n1 + n2)
    ref = rng.normal(size=(n1, 3))
    cur = rng.normal(size=(n2, 3)) + np.array([0.0, 0.02, 0.3])
    cur[:, 0] = np.round(cur[:, 0], 1)  # ties between samples
    ref[:, 0] = np.round(ref[:, 0], 1)
    _check_ks(ref, cur)


@pytest.mark.parametrize("private", [True, False])
def test_exact_p_values_equal_scipy_with_and_without_its_private_routine(
    private: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The public path (scipy's ks_2samp on the smallest data with the same statistic) is what
    runs once scipy drops or changes the private routine; both give scipy's answer."""
    assert ks_exact.private_agrees()  # the scipy installed here still has it
    if not private:
        monkeypatch.setattr(ks_exact, "PRIVATE", None)
    rng = np.random.default_rng(7)
    ref = rng.normal(size=(400, 4))
    cur = rng.normal(size=(350, 4)) + np.array([0.0, 0.1, 0.3, 1.0])
    ref[:, 0], cur[:, 0] = np.round(ref[:, 0]), np.round(cur[:, 0])
    _check_ks(ref, cur)
    for n1, n2 in ((1, 1), (1, 9), (13, 8), (250, 1000)):
        for i in range(0, n1 + 1, max(n1 // 5, 1)):
            for j in range(0, n2 + 1, max(n2 // 5, 1)):
                if i * n2 >= j * n1:
                    d, p = ks_exact.public_pvalue(n1, n2, i / n1 - j / n2)
                    assert d == pytest.approx(i / n1 - j / n2, abs=1e-15)
                    assert p is None or 0.0 <= p <= 1.0


def test_ks_drops_missing_values_per_column() -> None:
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(size=(400, 2)), rng.normal(0.3, 1.0, size=(300, 2))
    ref[::7, 0] = np.nan
    cur[::5, 1] = np.nan
    _check_ks(ref, cur)


def test_ks_column_without_values_is_nan() -> None:
    result = ks_columns.ks_2samp(np.ones((3, 1)), np.full((2, 1), np.nan))
    assert np.isnan(result.statistic[0]) and np.isnan(result.pvalue[0])


@settings(max_examples=100, deadline=None)
@given(
    k=st.integers(1, 8), m=st.integers(1, 3), seed=st.integers(0, 10**6),
    scale=st.sampled_from([1, 10, 1000, 10**6]),
)
def test_chi2_equals_chi2_contingency(k: int, m: int, seed: int, scale: int) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, scale, (m, k))
    cur = rng.integers(0, scale, (m, k))
    ref[:, 0] = 0  # a category seen in the current batch only
    if k > 2:
        cur[:, 1] = 0  # one seen in the reference only
        ref[:, -1] = cur[:, -1] = 0  # one seen on neither side: dropped
    ref[:, -1 if k == 1 else 1] += 1
    cur[:, 0] += 1
    result = stats.chi2_counts(ref, cur)
    for j in range(m):
        table = np.stack([ref[j], cur[j]])
        table = table[:, table.sum(axis=0) > 0]
        expected = scipy.stats.chi2_contingency(table, correction=False)
        assert result.statistic[j] == pytest.approx(expected.statistic, rel=1e-12, abs=1e-12)
        assert result.pvalue[j] == pytest.approx(expected.pvalue, rel=RTOL, abs=0)
        assert result.dof[j] == expected.dof
        if table.shape[1] > 1:
            v = scipy.stats.contingency.association(table, method="cramer")
            assert result.cramers_v[j] == pytest.approx(v, rel=1e-12, abs=1e-15)


def test_chi2_single_category_has_no_evidence() -> None:
    result = stats.chi2_counts([[5, 0]], [[7, 0]])
    assert (result.statistic[0], result.pvalue[0], result.dof[0]) == (0.0, 1.0, 0)


def test_psi_formula_and_epsilon() -> None:
    ref = np.array([[10, 30, 60, 0]])
    cur = np.array([[20, 30, 40, 10]])
    r = np.array([0.1, 0.3, 0.6, stats.PSI_EPSILON])
    c = np.array([0.2, 0.3, 0.4, 0.1])
    assert stats.psi(ref, cur)[0] == pytest.approx(np.sum((c - r) * np.log(c / r)), rel=1e-12)
    assert stats.psi(ref, ref)[0] == 0.0


@settings(max_examples=60, deadline=None)
@given(n1=st.integers(1, 300), n2=st.integers(1, 300), seed=st.integers(0, 10**6),
       ties=st.booleans())
def test_wasserstein_equals_scipy(n1: int, n2: int, seed: int, ties: bool) -> None:
    rng = np.random.default_rng(seed)
    u, v = rng.normal(size=n1), rng.gamma(2.0, 1.0, size=n2)
    if ties:
        u, v = np.round(u), np.round(v)
    ours = stats.wasserstein([np.sort(u)], [np.sort(v)])[0]
    assert ours == pytest.approx(scipy.stats.wasserstein_distance(u, v), rel=1e-12, abs=1e-15)


@settings(max_examples=60, deadline=None)
@given(k=st.integers(1, 12), seed=st.integers(0, 10**6))
def test_jensenshannon_equals_scipy(k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref, cur = rng.integers(0, 50, (3, k)), rng.integers(0, 50, (3, k))
    ref[:, 0] += 1
    cur[:, 0] += 1
    ours = stats.jensenshannon(ref, cur)
    for j in range(3):
        expected = scipy.spatial.distance.jensenshannon(ref[j], cur[j], base=2)
        assert ours[j] == pytest.approx(expected, rel=1e-12, abs=1e-12)
