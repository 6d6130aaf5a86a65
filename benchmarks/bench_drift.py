"""Benchmark: data-drift detection on 1 M reference x 1 M current rows, 20 numeric + 5 categorical.

Run by hand: ``python benchmarks/bench_drift.py [--rows N] [--evidently-runs K]``. Times, on the
same data (fixed seed; a few columns shifted):

(a) driftloop: `build_profile` with the FULL reference (``sample_size = rows``, so KS is exact),
    then `detect_drift` with the default spec (KS for numeric, chi-square for categorical);
(b) the naive approach: a per-column loop of ``scipy.stats.ks_2samp`` / ``chi2_contingency``;
(c) Evidently 0.7 ``Report([DataDriftPreset(num_method="ks", cat_method="chisquare")])`` in its
    own venv (`peers.py`), reading the data from Parquet files.

Prints medians of 3 runs (Evidently: ``--evidently-runs``), the ratios, whether driftloop's
p-values equal the scipy loop's, and where the per-column decisions differ.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers

from driftloop.core import config
from driftloop.data import profile as profiles
from driftloop.drift import report as reports

NUMERIC = [f"x{i:02d}" for i in range(20)]
CATEGORICAL = [f"c{i}" for i in range(5)]
ALPHA = 0.05


def make_data(rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current frames; x00-x02 shifted in mean, x03 in scale, x04 by a hair
    (0.01 std: significant at 1 M rows, far below any effect threshold), c0 re-weighted."""
    rng = np.random.default_rng(seed)
    ref: dict[str, Any] = {}
    cur: dict[str, Any] = {}
    for i, name in enumerate(NUMERIC):
        ref[name] = rng.normal(0.0, 1.0, rows) if i % 2 else rng.gamma(2.0, 1.0, rows)
        base = rng.normal(0.0, 1.0, rows) if i % 2 else rng.gamma(2.0, 1.0, rows)
        shift = {0: 0.5, 1: 0.4, 2: 0.6, 4: 0.01}.get(i, 0.0)
        cur[name] = base * (2.0 if i == 3 else 1.0) + shift
    for i, name in enumerate(CATEGORICAL):
        k = 4 + 3 * i
        labels = np.array([f"v{j}" for j in range(k)])
        weights = np.linspace(1.0, 2.0, k)
        ref[name] = labels[rng.choice(k, rows, p=weights / weights.sum())]
        drifted = weights[::-1] if i == 0 else weights
        cur[name] = labels[rng.choice(k, rows, p=drifted / drifted.sum())]
    return pd.DataFrame(ref), pd.DataFrame(cur)


def run_driftloop(ref: pd.DataFrame, cur: pd.DataFrame) -> tuple[float, float, reports.DriftReport]:
    kinds = {**dict.fromkeys(NUMERIC, "numeric"), **dict.fromkeys(CATEGORICAL, "categorical")}
    start = time.perf_counter()
    profile = profiles.build_profile(ref, columns=kinds, sample_size=len(ref))
    built = time.perf_counter()
    report = reports.detect_drift(profile, cur, config.DriftSpec(alpha=ALPHA))
    done = time.perf_counter()
    return built - start, done - built, report


def run_scipy_loop(ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, float]:
    """The naive approach: one scipy call per column."""
    pvalues: dict[str, float] = {}
    for name in NUMERIC:
        result = scipy.stats.ks_2samp(ref[name].to_numpy(), cur[name].to_numpy())
        pvalues[name] = float(result.pvalue)
    for name in CATEGORICAL:
        table = pd.concat([ref[name].value_counts(), cur[name].value_counts()], axis=1).fillna(0)
        result = scipy.stats.chi2_contingency(table.to_numpy().T, correction=False)
        pvalues[name] = float(result.pvalue)
    return pvalues


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--evidently-runs", type=int, default=3)
    args = parser.parse_args()

    ref, cur = make_data(args.rows)
    profile_times, detect_times, total_times, scipy_times = [], [], [], []
    report = None
    scipy_p: dict[str, float] = {}
    for _ in range(args.runs):
        built, detected, report = run_driftloop(ref, cur)
        profile_times.append(built)
        detect_times.append(detected)
        total_times.append(built + detected)
        start = time.perf_counter()
        scipy_p = run_scipy_loop(ref, cur)
        scipy_times.append(time.perf_counter() - start)
    assert report is not None

    with tempfile.TemporaryDirectory() as tmp:
        ref_path, cur_path = Path(tmp) / "reference.parquet", Path(tmp) / "current.parquet"
        ref.to_parquet(ref_path)
        cur.to_parquet(cur_path)
        evidently = peers.run_peer(
            "evidently",
            Path(__file__).resolve().parent / "peer_evidently_drift.py",
            {"reference": str(ref_path), "current": str(cur_path), "numeric": NUMERIC,
             "categorical": CATEGORICAL, "alpha": ALPHA, "runs": args.evidently_runs},
        )

    med = statistics.median
    ev_time = med(evidently["times"])  # type: ignore[arg-type]
    print(f"rows: {args.rows:,} reference x {args.rows:,} current; "
          f"{len(NUMERIC)} numeric + {len(CATEGORICAL)} categorical columns")
    print(f"driftloop profile (full reference): {med(profile_times):8.3f} s")
    print(f"driftloop detect_drift:             {med(detect_times):8.3f} s "
          f"(runs: {', '.join(f'{t:.3f}' for t in detect_times)}; the first starts the "
          "p-value worker processes)")
    print(f"driftloop profile + detect:         {med(total_times):8.3f} s")
    print(f"scipy per-column loop:              {med(scipy_times):8.3f} s")
    print(f"Evidently 0.7 DataDriftPreset:      {ev_time:8.3f} s "
          f"(median of {len(evidently['times'])} run(s))")  # type: ignore[arg-type]
    for label, ours in (("detect", med(detect_times)), ("profile+detect", med(total_times))):
        print(f"speed-up, {label:15s}: {ev_time / ours:7.1f}x Evidently, "
              f"{med(scipy_times) / ours:5.2f}x scipy loop")

    columns = {c.name: c for c in report.columns}
    same = all(np.isclose(columns[n].p_value, p, rtol=1e-9, atol=0) for n, p in scipy_p.items())
    print(f"driftloop p-values equal the scipy loop's (rtol 1e-9): {same}")
    ev_drift: dict[str, bool] = evidently["drifted"]  # type: ignore[assignment]
    ev_p: dict[str, float] = evidently["pvalues"]  # type: ignore[assignment]
    raw_agree = [n for n in columns if (scipy_p[n] < ALPHA) == ev_drift[n]]
    print(f"raw significance (p < {ALPHA}) agrees with Evidently on "
          f"{len(raw_agree)}/{len(columns)} columns")
    differ = [n for n in columns if columns[n].drifted != ev_drift[n]]
    agree = len(columns) - len(differ)
    print(f"drift decisions agree with Evidently on {agree}/{len(columns)} columns")
    for name in differ:
        c = columns[name]
        print(f"  {name}: driftloop drifted={c.drifted} (p_adj={c.p_adjusted:.3g}, "
              f"effect={c.effect:.4f} < threshold {c.threshold}); "
              f"Evidently drifted={ev_drift[name]} (p={ev_p[name]:.3g})")
    print(f"driftloop drifted columns: {report.drifted_columns}; dataset drift: "
          f"{report.dataset_drift} (share {report.drifted_share:.2f})")


if __name__ == "__main__":
    main()
