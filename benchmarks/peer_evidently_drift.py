"""Evidently 0.7 side of `bench_drift.py`: a `DataDriftPreset` report on the same data.

Run by `bench_drift.py` through `peers.run_peer("evidently", ...)` in Evidently's own venv
(it needs pandas < 3). Reads a JSON payload on stdin: ``reference`` and ``current`` Parquet
paths, ``numeric`` and ``categorical`` column names, ``alpha``, ``runs``. Uses KS for numeric
and chi-square for categorical columns (Evidently's ``"ks"`` / ``"chisquare"`` stat tests; a
column drifts when its p-value < alpha). Prints one JSON line: the wall time of each run
(`Report.run` only, data already in memory) and each column's p-value and decision.
"""

from __future__ import annotations

import json
import sys
import time

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset


def main() -> None:
    payload = json.loads(sys.stdin.read())
    reference = pd.read_parquet(payload["reference"])
    current = pd.read_parquet(payload["current"])
    definition = DataDefinition(
        numerical_columns=payload["numeric"], categorical_columns=payload["categorical"]
    )
    times: list[float] = []
    values: dict[str, float] = {}
    for _ in range(int(payload["runs"])):
        start = time.perf_counter()
        report = Report([DataDriftPreset(num_method="ks", cat_method="chisquare",
                                         threshold=payload["alpha"])])
        snapshot = report.run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )
        times.append(time.perf_counter() - start)
        for metric in snapshot.dict()["metrics"]:
            config = metric["config"]
            if config.get("type") == "evidently:metric_v2:ValueDrift":
                values[config["column"]] = float(metric["value"])
    drifted = {name: value < payload["alpha"] for name, value in values.items()}
    print(json.dumps({"times": times, "pvalues": values, "drifted": drifted}))


if __name__ == "__main__":
    main()
