"""Metadata-store throughput: driftloop's `MetadataStore` vs MLflow's tracking + registry store,
both on a SQLite file.

Workload (identical on both sides, see `peer_mlflow_store.build_batches`): 10 000 metric points
under one run, logged in batches of 1 000; then 1 000 model versions of one model, each linked
to that run. Every repeat starts from a fresh database; schema creation is not timed. MLflow
runs in its own venv (`peers.py`). Prints medians as a Rich table.

    python benchmarks/bench_store.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import peer_mlflow_store  # noqa: E402
import peers  # noqa: E402

from driftloop.store import metadata  # noqa: E402

WORK = {"metrics": 10_000, "batch": 1_000, "keys": 10, "versions": 1_000}
GOAL = 20.0


def driftloop_repeat(work: dict[str, int]) -> tuple[float, float]:
    """Seconds for the metric points and for the model versions, on a fresh SQLite file."""
    with tempfile.TemporaryDirectory() as tmp:
        store = metadata.MetadataStore.open(f"sqlite:///{Path(tmp) / 'meta.db'}")
        try:
            store.pipelines.ensure("bench", {"trainer": "sklearn"})
            run = store.runs.start("bench", trainer="sklearn", params={}, batch_ids=[])
            batches = peer_mlflow_store.build_batches(work)
            started = time.perf_counter()
            for batch in batches:
                store.runs.log_metrics(run.id, batch)
            metric_seconds = time.perf_counter() - started

            started = time.perf_counter()
            for i in range(work["versions"]):
                store.versions.add(
                    "bench", run_id=run.id, artifact_uri=f"file://{tmp}/models/{i}",
                    sha256="0" * 64, metrics={"accuracy": 0.9})
            version_seconds = time.perf_counter() - started
        finally:
            store.close()
    return metric_seconds, version_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats

    ours = [driftloop_repeat(WORK) for _ in range(repeats)]
    peer: dict[str, Any] = peers.run_peer(
        "mlflow", HERE / "peer_mlflow_store.py", {**WORK, "repeats": repeats})

    rows = {
        "metric points": (WORK["metrics"], [m for m, _ in ours], peer["metric_seconds"]),
        "model versions": (WORK["versions"], [v for _, v in ours], peer["version_seconds"]),
    }
    table = Table(title=f"Metadata store on SQLite: median of {repeats} fresh databases "
                        f"(MLflow {peer['version']})")
    for column in ("workload", "driftloop rows/s", "MLflow rows/s", "driftloop / MLflow"):
        table.add_column(column, justify="right" if column != "workload" else "left")
    for name, (count, our_seconds, their_seconds) in rows.items():
        our_rate = count / statistics.median(our_seconds)
        their_rate = count / statistics.median(their_seconds)
        ratio = our_rate / their_rate
        style = "green" if ratio >= GOAL else "red"
        table.add_row(f"{count:,} {name}", f"{our_rate:,.0f}", f"{their_rate:,.0f}",
                      f"[{style}]{ratio:,.1f}x[/{style}]")
    Console().print(table)


if __name__ == "__main__":
    main()
