"""Benchmark: federated (FedAvg) vs per-region vs pooled training on Elec2 split into regions.

Run by hand: ``python benchmarks/bench_federated.py [--rounds 20]``.

Elec2 (bundled) is split into three "regions" by time of day, a non-IID split: night
(half hours 0-15), day (16-31) and evening (32-47) of the day (`period`). The model is a
standard-scaled `SGDClassifier(loss="log_loss")` on nswprice, nswdemand, vicprice, vicdemand,
transfer and period (`train.federated`). Two protocols:

* ``static``: each region's first 70 % of rows (in time) train, its last 30 % test;
* ``rolling``: every week is tested by models trained on the 4 weeks before it (Elec2 drifts,
  so a fixed split mostly measures the drift); accuracy is averaged over all test rows.

Per region and overall: per-region models (each region's own rows only), pooled (every
region's rows in one place: what data residency forbids), federated (FedAvg, `--rounds`
rounds of one local epoch, weighted by rows: only parameters leave a region). Then `uptime`.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from typing import Any

import numpy as np
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from driftloop.data import elec2
from driftloop.train import federated

FEATURES = ["nswprice", "nswdemand", "vicprice", "vicdemand", "transfer", "period"]
REGIONS = {"night": (0, 16), "day": (16, 32), "evening": (32, 48)}
WEEK = 7 * 48


def model() -> SGDClassifier:
    return SGDClassifier(loss="log_loss", alpha=1e-4, random_state=0)


def fit_central(x: Any, y: Any, epochs: int) -> Any:
    fitted = make_pipeline(StandardScaler(), model())
    scaled = fitted[0].fit_transform(x)
    rng = np.random.default_rng(0)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        fitted[1].partial_fit(scaled[order], y[order], classes=np.array([0, 1]))
    return fitted


def evaluate(train: dict[str, tuple[Any, Any]], test: dict[str, tuple[Any, Any]], rounds: int,
             ) -> dict[str, dict[str, tuple[int, int]]]:
    """(right, total) per method and region."""
    out: dict[str, dict[str, tuple[int, int]]] = {"per-region": {}, "pooled": {}, "federated": {}}
    pooled = fit_central(np.vstack([x for x, _ in train.values()]),
                         np.concatenate([y for _, y in train.values()]), rounds)
    fed = federated.federated_fit(model, list(train.values()), rounds=rounds)
    for name, (x, y) in test.items():
        own = fit_central(*train[name], rounds)
        for method, fitted in (("per-region", own), ("pooled", pooled), ("federated", fed)):
            out[method][name] = (int((fitted.predict(x) == y).sum()), len(y))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    started = time.perf_counter()
    data = elec2.load_elec2()
    data["week"] = np.arange(len(data)) // WEEK
    slot = (data["period"] * 47).round().astype(int)  # `period` is the half hour, 0..1
    regions = {name: data[(slot >= lo) & (slot < hi)] for name, (lo, hi) in REGIONS.items()}
    results: dict[str, dict[str, dict[str, tuple[int, int]]]] = {}
    static_train, static_test = {}, {}
    for name, part in regions.items():
        cut = int(len(part) * 0.7)
        x, y = part[FEATURES].to_numpy(float), part["class"].to_numpy()
        static_train[name], static_test[name] = (x[:cut], y[:cut]), (x[cut:], y[cut:])
    results["static"] = evaluate(static_train, static_test, args.rounds)
    rolling: dict[str, dict[str, list[int]]] = {}
    for week in range(4, int(data["week"].max()) + 1):
        train, test = {}, {}
        for name, part in regions.items():
            past = part[(part["week"] >= week - 4) & (part["week"] < week)]
            now = part[part["week"] == week]
            train[name] = (past[FEATURES].to_numpy(float), past["class"].to_numpy())
            test[name] = (now[FEATURES].to_numpy(float), now["class"].to_numpy())
        if min(len(t[1]) for t in test.values()) == 0:
            continue
        for method, per in evaluate(train, test, max(args.rounds // 4, 1)).items():
            for name, (right, total) in per.items():
                sums = rolling.setdefault(method, {}).setdefault(name, [0, 0])
                sums[0] += right
                sums[1] += total
    results["rolling"] = {m: {n: (s[0], s[1]) for n, s in per.items()}
                          for m, per in rolling.items()}
    print(f"Elec2 in 3 regions by time of day; SGD logistic regression; FedAvg {args.rounds} "
          "rounds (rolling: a quarter of them)")
    print(f"{'protocol':<9} {'method':<11} " + " ".join(f"{n:>8}" for n in REGIONS)
          + f" {'overall':>8}")
    for protocol, methods in results.items():
        for method, per in methods.items():
            cells = [per[n][0] / per[n][1] for n in REGIONS]
            overall = sum(per[n][0] for n in REGIONS) / sum(per[n][1] for n in REGIONS)
            print(f"{protocol:<9} {method:<11} " + " ".join(f"{c:>8.3f}" for c in cells)
                  + f" {overall:>8.3f}")
    print(f"wall {time.perf_counter() - started:.0f} s")
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
