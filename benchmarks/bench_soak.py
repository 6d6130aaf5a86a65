"""Benchmark: a pipeline soaked at accelerated time, to show that retention keeps it flat.

Run by hand: ``python benchmarks/bench_soak.py [--predictions N] [--batches B] [--days D]``.
The issue's size is 2 million predictions and 500 batches; both are parameters.

One process runs the real server app (uvicorn on 127.0.0.1, in a thread) and the controller
on one fake clock over a SQLite file and a local artifact folder. For each of `batches` slots
of simulated time it sends `predictions / batches` predictions (``POST /v1/predict``, `records`
per request), then their labels (``POST /v1/feedback``, `LABELS_PER_CALL` per request), and
runs one tick (which ingests one batch of a synthetic stream, trains once a simulated day, and
applies one retention slice).

Retention: a 1-day label horizon, per-minute stats merged into hours after 1 day and dropped
after 3, batch files beyond the 10-batch training window archived, evaluations, decisions and
old versions' profiles archived after 1 day (`history`), a day's archived files merged.

Per simulated day it prints the database size (the file after a WAL checkpoint, the bytes of
its pages in use, and the file with its WAL), the prediction rows stored, the
archived files, the p99 of a predict request, the p50 and p99 of a tick and of the retention
slice within it (ms), the p50 of the CPU time the tick's thread used (ms: less sensitive to the
machine's other load than wall time), and the load average. At the end the
labelled predictions of the first day are read back from the archive, compared with what was
sent, and replayed in a backtest next to the same rows as sent: both must give the same score.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import sqlalchemy as sa
import uvicorn

from driftloop.controller import backtest, policy_replay, tick
from driftloop.controller import project as projects
from driftloop.core import clock as clocks
from driftloop.core import config
from driftloop.data.sources import replay
from driftloop.server import app as apps
from driftloop.server import auth
from driftloop.store import archive, artifacts, metadata, serving

START = datetime(2024, 1, 1, tzinfo=UTC)
LABELS_PER_CALL = 2000
FEATURES = ["x0", "x1", "x2", "x3"]
SPEC = """
name: soak
source: {kind: files, path: unused/*.csv}
target: y
timestamp: t
trainer:
  function: sklearn.linear_model:LogisticRegression
  executor: inline
  window: {kind: last, size: 10 batches}
triggers: [{kind: schedule, cron: "0 0 * * *"}]
gate: {enabled: false}
retention:
  label_horizon: 1d
  minute_stats: 1d
  hourly_stats: 3d
  batches: 10 batches
  history: 1d
  archives: null
"""


def stream(rng: np.random.Generator, rows: int, start: datetime, end: datetime) -> pd.DataFrame:
    """A slowly drifting linear concept: y = [w(t) . x > 0], w turning over the run."""
    x = rng.normal(size=(rows, len(FEATURES)))
    turn = np.linspace(0, 1.0, rows)
    w = np.stack([np.cos(turn), np.sin(turn), 0.5 * np.ones(rows), -0.3 * np.ones(rows)], 1)
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["y"] = ((x * w).sum(1) + 0.3 * rng.normal(size=rows) > 0).astype(int)
    frame["t"] = pd.Timestamp(start) + (end - start) * np.arange(rows) / rows
    return frame


def serve(app: Any) -> tuple[str, Any, threading.Thread]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", server, thread


def db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def p99(values: list[float]) -> float:
    return float(np.percentile(values, 99)) if values else float("nan")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="driftloop-soak-"))
    spec = config.parse_spec(SPEC)
    step = timedelta(days=args.days) / args.batches
    per_slot = args.predictions // args.batches
    rng = np.random.default_rng(7)
    data = stream(rng, args.batches * args.batch_rows, START, START + timedelta(days=args.days))
    ends = [pd.Timestamp(START + (k + 1) * step) for k in range(args.batches)]
    clock = clocks.FakeClock(START)
    db = root / "soak.db"
    store = metadata.MetadataStore.open(f"sqlite:///{db}", clock=clock)
    store.pipelines.ensure(spec.name, spec.model_dump(mode="json"))
    project = projects.Project(spec=spec, base_dir=root, store=store,
                               artifacts=artifacts.ArtifactStore(str(root / "artifacts")),
                               source=replay.ReplaySource(data, "t", ends, clock), clock=clock)
    secret = auth.create_token(serving.ServingStore(store), "labeller", ["feedback"],
                               actor="bench")[1]
    controller = tick.Controller(project, holder="soak")
    sweep_ms: list[float] = []
    sweep = controller.retention.step

    def timed_sweep() -> Any:  # the retention slice's share of each tick
        began = time.perf_counter()
        try:
            return sweep()
        finally:
            sweep_ms.append((time.perf_counter() - began) * 1000)

    controller.retention.step = timed_sweep  # type: ignore[method-assign]
    clock.set(ends[0].to_pydatetime())
    controller.tick()  # the first batch: the schema and v1
    app = apps.create_app(project, anonymous_predict=True, poll_interval=0.2)
    url, server, thread = serve(app)
    log = app.state.driftloop.log
    print(f"soak: {args.predictions:,} predictions, {args.batches} batches over {args.days} "
          f"simulated days ({per_slot} predictions and 1 batch per {step}), "
          f"{args.records} records per request; {os.cpu_count()} CPUs; store {db}")
    print(f"{'day':>4} {'db MB':>8} {'used MB':>8} {'+WAL MB':>8} {'pred rows':>10} "
          f"{'archived':>9} {'predict p99 ms':>15} "
          f"{'tick p50 ms':>12} {'tick p99 ms':>12} {'tick CPU p50':>13} {'retention p50':>13} "
          f"{'retention p99':>13}  load")
    sent_first_day: list[dict[str, Any]] = []
    predict_ms: list[float] = []
    tick_ms: list[float] = []
    tick_cpu_ms: list[float] = []  # the tick's own CPU: what other load on the machine leaves
    started = time.perf_counter()
    day = 0
    headers = {"Authorization": f"Bearer {secret}"}
    owed: list[dict[str, Any]] = []  # labels not sent yet
    with httpx.Client(base_url=url, timeout=60) as client:
        for k in range(1, args.batches):
            slot = START + k * step
            inputs = rng.normal(size=(per_slot, len(FEATURES)))
            labels = (inputs[:, 0] + inputs[:, 1] > 0).astype(int)
            for first in range(0, per_slot, args.records):
                clock.set(slot + step * first / per_slot)
                records = [dict(zip(FEATURES, map(float, row), strict=True))
                           for row in inputs[first:first + args.records]]
                began = time.perf_counter()
                answer = client.post("/v1/predict", json={"records": records})
                predict_ms.append((time.perf_counter() - began) * 1000)
                answer.raise_for_status()
                ids = [p["id"] for p in answer.json()["predictions"]]
                chunk = labels[first:first + args.records]
                owed += [{"prediction_id": i, "label": int(y)}
                         for i, y in zip(ids, chunk, strict=True)]
                if slot < START + timedelta(days=1):
                    sent_first_day += [{**r, "t": clock.now(), "y": int(y)}
                                       for r, y in zip(records, chunk, strict=True)]
            # the slot's labels come back after its predictions are logged, in large calls (a
            # call per predict request would wait for the log's writer each time)
            log.flush(timeout=60)
            for start in range(0, len(owed), LABELS_PER_CALL):
                feedback = client.post("/v1/feedback", headers=headers, json={
                    "labels": owed[start:start + LABELS_PER_CALL]})
                feedback.raise_for_status()
            owed = []
            clock.set(ends[k].to_pydatetime())
            began, cpu = time.perf_counter(), time.thread_time()
            controller.tick()
            tick_ms.append((time.perf_counter() - began) * 1000)
            tick_cpu_ms.append((time.thread_time() - cpu) * 1000)
            if ends[k].to_pydatetime() >= START + timedelta(days=day + 1) or \
                    k == args.batches - 1:
                day += 1
                report(day, db, store, predict_ms, tick_ms, tick_cpu_ms, sweep_ms)
                predict_ms, tick_ms, tick_cpu_ms = [], [], []
                sweep_ms.clear()
    server.should_exit = True
    thread.join(30)
    print(f"wall {time.perf_counter() - started:.0f} s for the soak")
    compare_backtest(project, pd.DataFrame(sent_first_day), root)
    store.close()


def report(day: int, db: Path, store: metadata.MetadataStore, predict_ms: list[float],
           tick_ms: list[float], tick_cpu_ms: list[float], sweep_ms: list[float]) -> None:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT count(*) FROM predictions")).scalar()
        files = conn.execute(sa.text("SELECT count(*) FROM archives")).scalar()
    with contextlib.closing(sqlite3.connect(db)) as own:  # outside SQLAlchemy's transaction
        own.execute("PRAGMA wal_checkpoint(PASSIVE)")
        pages = [own.execute(f"PRAGMA {name}").fetchone()[0]
                 for name in ("page_count", "freelist_count", "page_size")]
    used = (pages[0] - pages[1]) * pages[2]
    print(f"{day:>4} {db.stat().st_size / 1e6:>8.2f} {used / 1e6:>8.2f} "
          f"{db_bytes(db) / 1e6:>8.1f} {rows:>10,} {files:>9,} "
          f"{p99(predict_ms):>15.1f} {np.median(tick_ms):>12.0f} {p99(tick_ms):>12.0f} "
          f"{np.median(tick_cpu_ms):>13.0f} "
          f"{np.median(sweep_ms):>13.0f} {p99(sweep_ms):>13.0f}  "
          f"{uptime().split('load average:')[-1].strip()}", flush=True)


def compare_backtest(project: projects.Project, sent: pd.DataFrame, root: Path) -> None:
    """The first day's labelled predictions, read back from the archive, against what was
    sent: the same rows, and the same backtest score."""
    files = archive.Archive(project.store, project.artifacts)
    back = files.labelled_rows(project.name, "y", "t")
    back = back[back["t"] < pd.Timestamp(START + timedelta(days=1))].reset_index(drop=True)
    sent = sent.astype({"t": "datetime64[us, UTC]"})
    back = back[sent.columns].astype({"t": "datetime64[us, UTC]", "y": "int64"})
    sent = sent.astype({"y": "int64"})
    # one request's records share a time; the archive orders them by prediction id
    key = ["t", *FEATURES]
    same = back.sort_values(key, ignore_index=True).equals(sent.sort_values(key, ignore_index=True))
    print(f"archive: first day {len(back):,} labelled predictions read back; the same rows as "
          f"sent: {same}")
    spec = backtest.policy_spec(project.spec, {})
    ends = backtest.batch_ends(sent, "t", timedelta(hours=2), timedelta(hours=2))
    scores = []
    for name, frame in (("as sent", sent), ("from the archive", back)):
        result = policy_replay.replay_policy(frame, spec, name, ends, root / name.replace(" ", "-"))
        scores.append(result.score)
        print(f"backtest on the first day {name}: {result.metric} {result.score:.6f}, "
              f"{result.trainings} trainings")
    print(f"same backtest result: {scores[0] == scores[1]}")
    print(uptime())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", type=int, default=2_000_000)
    parser.add_argument("--batches", type=int, default=500)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--batch-rows", type=int, default=200)
    parser.add_argument("--records", type=int, default=100, help="Records per predict request")
    main(parser.parse_args())
    sys.exit(0)
