"""The MLflow side of `bench_store.py`; runs inside MLflow's own venv (see `peers.py`).

Reads the workload as JSON on stdin, times it against MLflow's SQLAlchemy store on a fresh
SQLite file per repeat, and prints one JSON line: seconds per repeat for the metric points
(`MlflowClient.log_batch`) and for the model versions (`create_model_version`).
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from pathlib import Path


def one_repeat(work: dict[str, int]) -> tuple[float, float]:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        client = MlflowClient(tracking_uri=url, registry_uri=url)
        experiment = client.create_experiment("bench", artifact_location=f"file://{tmp}/artifacts")
        run = client.create_run(experiment)
        run_id = run.info.run_id
        batches = build_batches(work)
        now_ms = int(time.time() * 1000)
        started = time.perf_counter()
        for batch in batches:
            client.log_batch(run_id, metrics=[
                Metric(key, value, now_ms, step) for key, value, step in batch])
        metric_seconds = time.perf_counter() - started

        started = time.perf_counter()
        client.create_registered_model("bench-model")
        for i in range(work["versions"]):
            client.create_model_version(
                "bench-model", source=f"file://{tmp}/models/{i}", run_id=run_id)
        version_seconds = time.perf_counter() - started
        client.set_terminated(run_id)
    return metric_seconds, version_seconds


def build_batches(work: dict[str, int]) -> list[list[tuple[str, float, int]]]:
    """`metrics` points over `keys` keys, cut into batches of `batch` (same as driftloop's)."""
    keys = [f"metric_{k}" for k in range(work["keys"])]
    points = [(keys[i % len(keys)], 1.0 / (i + 1), i // len(keys)) for i in range(work["metrics"])]
    return [points[i:i + work["batch"]] for i in range(0, len(points), work["batch"])]


def main() -> None:
    logging.disable(logging.WARNING)
    work = json.loads(sys.stdin.read())
    import mlflow

    metric_seconds, version_seconds = [], []
    for _ in range(work["repeats"]):
        m, v = one_repeat(work)
        metric_seconds.append(m)
        version_seconds.append(v)
    print(json.dumps({"version": mlflow.__version__, "metric_seconds": metric_seconds,
                      "version_seconds": version_seconds}))


if __name__ == "__main__":
    main()
