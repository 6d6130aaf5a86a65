"""Benchmark: what fairness monitoring costs per batch, and explained predictions' latency.

Run by hand: ``python benchmarks/bench_fairness.py [--batches N]``. Prints `uptime` first (the
machine is shared), then:

(a) per labelled batch, the fairness report alone (`gate.fairness.assess`: fairlearn
    MetricFrame and the four disparities) and stored (`record_fairness`), for batches of 500,
    1 000 and 5 000 rows and one or two sensitive columns; medians of 20 runs;
(b) the whole tick per batch on the injected-bias stream (`data.fairness_data`), with and
    without a `fairness:` section (a champion scores each batch; no retraining: triggers off);
(c) `POST /v1/predict` of one record against a LogisticRegression and a
    HistGradientBoosting champion, plain and with ``?explain=true`` (SHAP), p50 and p99 over
    400 requests each after 50 warm-up requests, on uvicorn on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from uvicorn_thread import serving as serve_in_thread

from driftloop.controller import project as projects
from driftloop.controller import responsible, tick
from driftloop.core import fairness_spec
from driftloop.data import fairness_data
from driftloop.gate import fairness
from driftloop.server import app as server_app
from driftloop.server import auth
from driftloop.store import serving

SPEC = """
name: bench
store: sqlite:///driftloop.db
artifacts: ./artifacts
source: {kind: files, path: data/*.csv}
target: y
trainer: {function: TRAINER, executor: inline}
triggers: [{kind: manual}]
gate: {enabled: false}
"""
FAIRNESS = "fairness: {sensitive: [g]}\n"


def project_with(root: Path, text: str,
                 first: pd.DataFrame) -> tuple[projects.Project, tick.Controller]:
    """A project whose first batch trained the champion, and the controller holding its lease."""
    (root / "data").mkdir(parents=True)
    (root / "driftloop.yaml").write_text(text)
    first.to_csv(root / "data" / "000.csv", index=False)
    project = projects.open_project(root / "driftloop.yaml")
    controller = tick.Controller(project)
    controller.tick()
    return project, controller


def assess_costs() -> None:
    print("(a) fairness report per labelled batch (median of 20, ms)")
    rng = np.random.default_rng(0)
    for rows in (500, 1000, 5000):
        frame = fairness_data.biased_stream(batches=1, rows=rows)[0].assign(
            h=rng.choice(["u", "v", "w"], rows))
        y, p = frame["y"].to_numpy(), (frame["x1"] + frame["x2"] > 0).astype(int).to_numpy()
        for columns in (["g"], ["g", "h"]):
            spec = fairness_spec.FairnessSpec(sensitive=columns)
            times = []
            for _ in range(20):
                started = time.perf_counter()
                fairness.assess(y, p, frame, spec)
                times.append(time.perf_counter() - started)
            print(f"  {rows:5} rows, {len(columns)} column(s): assess "
                  f"{1000 * float(np.median(times)):.1f} ms")
    with tempfile.TemporaryDirectory() as folder:
        frames = fairness_data.biased_stream(batches=1, rows=1000)
        project, _ = project_with(Path(folder), SPEC.replace(
            "TRAINER", "sklearn.linear_model:LogisticRegression") + FAIRNESS, frames[0])
        labelled = frames[0]
        predicted = (labelled["x1"] + labelled["x2"] > 0).astype(int).to_numpy()
        times = []
        for _ in range(20):
            started = time.perf_counter()
            responsible.record_fairness(project, None, 1, labelled, predicted)
            times.append(time.perf_counter() - started)
        print(f"  1000 rows, assessed and stored (SQLite): "
              f"{1000 * float(np.median(times)):.1f} ms")
        project.close()


def tick_costs(batches: int) -> None:
    print(f"(b) tick per batch on the injected-bias stream ({batches} batches of 1000 rows)")
    frames = fairness_data.biased_stream(batches=batches + 1, rows=1000)
    for label, extra in (("without fairness", ""), ("with fairness", FAIRNESS)):
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            project, controller = project_with(root, SPEC.replace(
                "TRAINER", "sklearn.linear_model:LogisticRegression") + extra, frames[0])
            times = []
            for index, frame in enumerate(frames[1:], start=1):
                frame.to_csv(root / "data" / f"{index:03}.csv", index=False)
                started = time.perf_counter()
                controller.tick()
                times.append(time.perf_counter() - started)
            print(f"  {label:17}: median {1000 * float(np.median(times)):.1f} ms per batch")
            project.close()


def latencies(client: httpx.Client, headers: dict[str, str],
              record: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """p50 and p99 (ms) of plain and explained requests, sent alternately (the same load)."""
    paths = {"plain": "/v1/predict", "explained": "/v1/predict?explain=true"}
    times: dict[str, list[float]] = {name: [] for name in paths}
    for count in range(450):
        for name, path in paths.items():
            started = time.perf_counter()
            answer = client.post(path, json={"record": record}, headers=headers)
            if count >= 50:  # warm-up
                times[name].append(time.perf_counter() - started)
            assert answer.status_code == 200, answer.text
    return {name: (1000 * float(np.percentile(values, 50)),
                   1000 * float(np.percentile(values, 99))) for name, values in times.items()}


def predict_costs() -> None:
    print("(c) POST /v1/predict, one record (ms, p50 / p99 of 400 each, sent alternately)")
    root = Path(tempfile.mkdtemp())
    (root / "hgb").mkdir()
    (root / "hgb" / "hgb.py").write_text(
        "from sklearn.ensemble import HistGradientBoostingClassifier\n\n\n"
        "def make_model():\n    return HistGradientBoostingClassifier(max_iter=50)\n")
    first = fairness_data.biased_stream(batches=1, rows=2000)[0]
    for trainer in ("sklearn.linear_model:LogisticRegression", "hgb:make_model"):
        folder = root / ("hgb" if trainer.startswith("hgb") else "linear")
        project, controller = project_with(folder, SPEC.replace("TRAINER", trainer) +
                                           FAIRNESS + "explain: {rows: 500}\n", first)
        controller.release()
        _, secret = auth.create_token(serving.ServingStore(project.store), "p", ["predict"],
                                      actor="bench")
        headers = {"Authorization": f"Bearer {secret}"}
        with serve_in_thread(server_app.create_app(project)) as url, \
                httpx.Client(base_url=url) as client:
            found = latencies(client, headers, {"x1": 0.3, "x2": -0.2})
        plain, explained = found["plain"], found["explained"]
        print(f"  {trainer:40} plain {plain[0]:.2f} / {plain[1]:.2f}   "
              f"explained {explained[0]:.2f} / {explained[1]:.2f}")
        project.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=15)
    args = parser.parse_args()
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    assess_costs()
    tick_costs(args.batches)
    predict_costs()


if __name__ == "__main__":
    main()
