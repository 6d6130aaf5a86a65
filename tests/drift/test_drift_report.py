"""data.profile and drift.report: profile contents, per-column tests, corrections, JSON."""

from __future__ import annotations

import concurrent.futures
import json
import os

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from driftloop.core import config, errors
from driftloop.data import profile as profiles
from driftloop.drift import ks_columns
from driftloop.drift import report as reports

KINDS = {"a": "numeric", "b": "numeric", "c": "numeric", "k": "categorical"}


def _frames(n: int = 4000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({
        "a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.gamma(2.0, size=n),
        "k": rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2]),
    })
    cur = pd.DataFrame({
        "a": rng.normal(0.8, 1.0, size=n), "b": rng.normal(size=n), "c": rng.gamma(2.0, size=n),
        "k": rng.choice(["x", "y", "z", "new"], n, p=[0.2, 0.3, 0.2, 0.3]),
    })
    return ref, cur


def test_profile_keeps_summary_bins_and_exact_sample() -> None:
    ref, _ = _frames()
    ref.loc[::10, "a"] = np.nan
    profile = profiles.build_profile(ref, columns=KINDS, sample_size=5000, bins=10)
    entry = profile["columns"]["a"]
    valid = ref["a"].dropna().to_numpy()
    assert (entry["n"], entry["missing"]) == (valid.size, 400)
    assert entry["mean"] == pytest.approx(valid.mean())
    assert entry["std"] == pytest.approx(valid.std())
    assert (entry["min"], entry["max"]) == (valid.min(), valid.max())
    np.testing.assert_array_equal(profiles.numeric_sample(profile, "a"), np.sort(valid))
    assert profiles.bin_counts(profile, "a").sum() == valid.size
    assert len(profiles.bin_edges(profile, "a")) == 11
    assert profiles.category_counts(profile, "k") == ref["k"].value_counts().to_dict()
    json.dumps(profile)  # JSON-safe


def test_profile_sample_is_deterministic_and_bounded() -> None:
    ref, _ = _frames(n=3000)
    one = profiles.build_profile(ref, columns=KINDS, sample_size=500, seed=7)
    two = profiles.build_profile(ref, columns=KINDS, sample_size=500, seed=7)
    assert one == two
    sample = profiles.numeric_sample(one, "c")
    assert sample.size == 500 and np.all(np.diff(sample) >= 0)
    assert np.isin(sample, ref["c"].to_numpy()).all()


def test_wide_profile_stays_small() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 1000)), columns=[f"f{i}" for i in range(1000)])
    profile = profiles.build_profile(frame, columns=dict.fromkeys(frame.columns, "numeric"))
    assert len(json.dumps(profile)) < 6_000_000  # 200 values + 21 edges + 20 counts a column


def test_profile_rejects_bad_input() -> None:
    ref, _ = _frames(n=50)
    with pytest.raises(errors.ValidationError, match="not in the frame"):
        profiles.build_profile(ref, columns={"zz": "numeric"})
    with pytest.raises(errors.ConfigError, match="kind of column"):
        profiles.build_profile(ref, columns={"a": "text"})
    with pytest.raises(errors.ValidationError, match="declared numeric"):
        profiles.build_profile(ref, columns={"k": "numeric"})


def test_detect_drift_matches_scipy_and_flags_shifted_columns() -> None:
    ref, cur = _frames()
    profile = profiles.build_profile(ref, columns=KINDS, sample_size=10_000)
    report = reports.detect_drift(profile, cur, config.DriftSpec())
    by_name = {c.name: c for c in report.columns}
    for name in ("a", "b", "c"):
        expected = scipy.stats.ks_2samp(ref[name], cur[name])
        assert by_name[name].statistic == pytest.approx(expected.statistic, rel=1e-12)
        assert by_name[name].p_value == pytest.approx(expected.pvalue, rel=1e-9)
    table = pd.concat([ref["k"].value_counts(), cur["k"].value_counts()], axis=1).fillna(0)
    chi2 = scipy.stats.chi2_contingency(table.to_numpy().T, correction=False)
    assert by_name["k"].p_value == pytest.approx(chi2.pvalue, rel=1e-9, abs=1e-300)
    assert by_name["k"].effect == pytest.approx(
        scipy.stats.contingency.association(table.to_numpy().T.astype(int), method="cramer"))
    assert report.drifted_columns == ["a", "k"]
    assert report.drifted_share == 0.5 and report.dataset_drift


def test_effect_size_guards_large_samples() -> None:
    rng = np.random.default_rng(1)
    n = 200_000
    ref = pd.DataFrame({"a": rng.normal(size=n)})
    cur = pd.DataFrame({"a": rng.normal(0.03, 1.0, size=n)})  # significant, tiny
    profile = profiles.build_profile(ref, columns={"a": "numeric"}, sample_size=n)
    column = reports.detect_drift(profile, cur, config.DriftSpec()).columns[0]
    assert column.p_adjusted is not None and column.p_adjusted < 1e-6
    assert column.effect is not None and column.effect < 0.1 and not column.drifted
    spec = config.DriftSpec(numeric=config.ColumnDrift(test="ks", threshold=0.01))
    assert reports.detect_drift(profile, cur, spec).columns[0].drifted


@pytest.mark.parametrize("correction", ["holm", "bonferroni", "fdr_bh", "none"])
def test_corrections(correction: str) -> None:
    ref, cur = _frames(n=300, seed=4)
    profile = profiles.build_profile(ref, columns=KINDS)
    report = reports.detect_drift(profile, cur, config.DriftSpec(correction=correction))
    raw = np.array([c.p_value for c in report.columns])
    adjusted = np.array([c.p_adjusted for c in report.columns])
    m = raw.size
    if correction == "bonferroni":
        expected = np.minimum(raw * m, 1)
    elif correction == "fdr_bh":
        expected = scipy.stats.false_discovery_control(raw)
    elif correction == "holm":
        order = np.argsort(raw)
        steps = np.maximum.accumulate(np.minimum(raw[order] * (m - np.arange(m)), 1))
        expected = np.empty(m)
        expected[order] = steps
    else:
        expected = raw
    np.testing.assert_allclose(adjusted, expected, rtol=1e-12)


def test_overrides_ignore_and_distance_tests() -> None:
    ref, cur = _frames()
    profile = profiles.build_profile(ref, columns=KINDS)
    spec = config.DriftSpec(
        ignore=["b"],
        per_column={
            "a": config.ColumnDrift(test="wasserstein"),
            "c": config.ColumnDrift(test="psi", threshold=0.5),
            "k": config.ColumnDrift(test="jensenshannon"),
        },
    )
    report = reports.detect_drift(profile, cur, spec)
    by_name = {c.name: c for c in report.columns}
    assert set(by_name) == {"a", "c", "k"}
    a = by_name["a"]
    raw = scipy.stats.wasserstein_distance(profiles.numeric_sample(profile, "a"), cur["a"])
    assert a.statistic == pytest.approx(raw, rel=1e-12)
    assert a.effect == pytest.approx(raw / ref["a"].std(ddof=0), rel=1e-9)
    assert a.p_value is None and a.drifted
    assert by_name["c"].threshold == 0.5 and not by_name["c"].drifted
    assert by_name["k"].drifted and by_name["k"].effect is not None


def test_wrong_test_for_type_and_unknown_column_are_config_errors() -> None:
    ref, cur = _frames(n=100)
    profile = profiles.build_profile(ref, columns=KINDS)
    with pytest.raises(errors.ConfigError, match="does not apply"):
        reports.detect_drift(profile, cur, config.DriftSpec(
            per_column={"k": config.ColumnDrift(test="ks")}))
    with pytest.raises(errors.ConfigError, match="lacks"):
        reports.detect_drift(profile, cur, config.DriftSpec(
            per_column={"zz": config.ColumnDrift(test="ks")}))
    with pytest.raises(errors.ValidationError, match="lacks profiled"):
        reports.detect_drift(profile, cur.drop(columns=["a"]), config.DriftSpec())


def test_all_missing_column_is_untested_and_report_round_trips() -> None:
    ref, cur = _frames(n=500)
    cur["b"] = np.nan
    profile = profiles.build_profile(ref, columns=KINDS)
    report = reports.detect_drift(profile, cur, config.DriftSpec())
    b = next(c for c in report.columns if c.name == "b")
    assert not b.test_ran and not b.drifted and b.p_value is None
    data = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert reports.DriftReport.from_json(data) == report
    with pytest.raises(AttributeError):
        report.dataset_drift = False  # type: ignore[misc]


def test_large_batches_equal_scipy_slow_p_value_first_and_a_broken_worker_pool_is_survived(
) -> None:
    """Above `stats.PARALLEL_MIN_N` the KS tests run as parallel tasks whose large-n p-values go
    to worker processes; the results equal scipy's whatever the task order, and a dead worker
    pool costs time, not results."""
    rng = np.random.default_rng(7)
    n = 120_000
    ref = pd.DataFrame({name: rng.normal(size=n) for name in "abcd"})
    cur = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(0.03, 1.0, n),
                        "c": rng.normal(1.0, 1.0, n), "d": rng.normal(size=n)})
    cur.loc[::9, "d"] = np.nan
    profile = profiles.build_profile(ref, columns=dict.fromkeys("abcd", "numeric"),
                                     sample_size=n)
    rows = cur.to_numpy().T.copy()
    edges = [profiles.bin_edges(profile, c)[1:-1] for c in "abcd"]
    below = [np.cumsum(profiles.bin_counts(profile, c))[:-1] / n for c in "abcd"]
    assert ks_columns.slow_first(edges, below, rows, np.full(4, n))[0] == 1  # b: n·D² ≈ 9

    def check() -> None:
        report = reports.detect_drift(profile, cur, config.DriftSpec())
        for column in report.columns:
            expected = scipy.stats.ks_2samp(ref[column.name], cur[column.name].dropna())
            assert column.statistic == pytest.approx(expected.statistic, rel=1e-12, abs=0)
            assert column.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=0)

    check()
    broken = ks_columns._pvalue_pool().submit(os._exit, 1)
    with pytest.raises(concurrent.futures.BrokenExecutor):
        broken.result(timeout=60)
    check()  # the pool is broken: computed in this process
    check()  # and a new pool serves the next call
