"""Benchmark: webhook delivery under failure, to a real HTTP receiver on 127.0.0.1.

Run by hand: ``python benchmarks/bench_notify.py [--events N] [--fail 0.3] [--seed 0]``.

Records `--events` events (model versions, quarantined batches, promotions) in a SQLite store
in rounds of ten, and after each round runs the notifier (`controller.notify`) on a simulated
clock that moves 10 s per round. The receiver answers 503 to a random `--fail` share of
requests, is down altogether (connection refused) for 40 rounds in the middle, and every 25
rounds the sender is "restarted" (the store closed and opened again, a new `Notifier`). Then
rounds go on without new events until the queue is empty.

Prints: events, notifications queued, delivered, lost, received twice (by delivery key),
requests sent, attempts per notification (max), delay from queueing to delivery in simulated
seconds (median, p95, max), wall time, and `uptime`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from driftloop.controller import notify
from driftloop.controller import project as projects
from driftloop.core import clock as clocks
from driftloop.core import config
from driftloop.store import artifacts, metadata, outbox

SPEC = """\
name: bench
source: {{kind: files, path: "data/*.csv"}}
target: y
trainer: {{function: "train:make_model"}}
notify:
  - url: {url}
    secret: ${{BENCH_HOOK_SECRET}}
    backoff: 10s
    max_backoff: 5m
    attempts: 50
"""


class Receiver:
    """503 to a random `fail` share of requests, 200 otherwise; counts accepted delivery keys
    in `keys` (shared across restarts of the receiver)."""

    def __init__(self, fail: float, seed: int, keys: Counter[str], port: int = 0) -> None:
        self.random = random.Random(seed)
        self.fail = fail
        self.keys = keys
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                owner.requests += 1
                status = 503 if owner.random.random() < owner.fail else 200
                if status == 200:
                    owner.keys[self.headers[notify.DELIVERY]] += 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def open_project(folder: Path, url: str, clock: clocks.FakeClock) -> projects.Project:
    spec = config.parse_spec(SPEC.format(url=url))
    store = metadata.MetadataStore.open(f"sqlite:///{folder}/meta.db", clock=clock)
    store.pipelines.ensure(spec.name, spec.model_dump(mode="json"))
    return projects.Project(spec=spec, base_dir=folder, store=store,
                            artifacts=artifacts.ArtifactStore(str(folder / "artifacts")),
                            source=None, clock=clock)  # type: ignore[arg-type]


def record(store: metadata.MetadataStore, made: int) -> None:
    """One event: a quarantined batch, a new version, or a new version promoted."""
    if made % 3 == 0:
        store.batches.add("bench", source_uri="b", fingerprint=f"f{made}", rows=1, start=None,
                        end=None, status="quarantined", reasons={"x": ["bad"]})
        return
    version = store.versions.add("bench", run_id=None, artifact_uri="m", sha256="0" * 64,
                                      metrics={})
    if made % 3 == 2:
        store.aliases.set("bench", "champion", version.version, actor="b", reason="bench")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--fail", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ["BENCH_HOOK_SECRET"] = "bench-secret"
    clock = clocks.FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    keys: Counter[str] = Counter()
    receiver = Receiver(args.fail, args.seed, keys)
    port, requests = receiver.port, 0
    url = f"http://127.0.0.1:{port}/hook"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        project = open_project(folder, url, clock)
        notify.Notifier(project).run()
        made, round_, down = 0, 0, False
        while True:
            round_ += 1
            for _ in range(10 if made < args.events else 0):
                made += 1
                record(project.store, made)
            if round_ == 10:  # the receiver goes down: connections are refused
                requests += receiver.requests
                receiver.stop()
                down = True
            if round_ == 50:
                receiver = Receiver(args.fail, args.seed + 1, keys, port)
                down = False
            if round_ % 25 == 0:  # a restart of the sender
                project.close()
                project = open_project(folder, url, clock)
            notify.Notifier(project).run()
            clock.advance(timedelta(seconds=10))
            pending = outbox.Outbox(project.store).counts("bench").get("pending", 0)
            if made >= args.events and not down and pending == 0:
                break
        items = outbox.Outbox(project.store).recent("bench", last=10 * args.events)
        project.close()
    requests += receiver.requests
    receiver.stop()
    delays = sorted((i.sent_at - i.created_at).total_seconds() for i in items if i.sent_at)
    figures = {
        "events": made,
        "queued": len(items),
        "delivered": sum(i.status == "sent" for i in items),
        "dead": sum(i.status == "dead" for i in items),
        "received_keys": len(keys),
        "received_twice": sum(n > 1 for n in keys.values()),
        "requests": requests,
        "max_attempts": max(i.attempts for i in items),
        "delay_s_median": delays[len(delays) // 2],
        "delay_s_p95": delays[int(len(delays) * 0.95)],
        "delay_s_max": delays[-1],
        "fail_share": args.fail,
        "wall_s": round(time.perf_counter() - started, 2),
    }
    print(json.dumps(figures, indent=1))
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    sys.exit(main())
