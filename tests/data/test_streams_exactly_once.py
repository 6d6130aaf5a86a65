"""Exactly once across crashes, on the live Redis and NATS JetStream: 10 000 events (and a few
unreadable ones) go through `driftloop ingest` in real processes that are killed with SIGKILL
(at random moments; before a batch row is written; right after it is committed; before its
ack) and restarted. In the end every event is in exactly one recorded batch: the ids in the
stored Parquet artifacts are 0..9 999, each once; the unreadable events are quarantined once
with their reason; nothing is left unacknowledged on the server.

Each test takes a few subprocess starts (about 20-40 s in all on two busy cores).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import NatsStream, RedisStream

from driftloop.controller import project as projects

N = 10_000
ROWS = 250  # 40 batches: the crashes below stop the work well before its end
UNREADABLE = {2_500: b"{not json", 7_777: b"[1, 2]"}  # after event i, an event that is not one
CRASH_SCRIPT = Path(__file__).parents[1] / "crash_ingest.py"

pytestmark = pytest.mark.slow


def payloads() -> list[bytes]:
    """The stream: events 0..N-1 as JSON objects, with the unreadable ones among them."""
    rng = np.random.default_rng(7)
    out = []
    for i, x in enumerate(rng.random(N)):
        out.append(json.dumps({"id": i, "x": round(float(x), 6), "y": i % 2}).encode())
        if i in UNREADABLE:
            out.append(UNREADABLE[i])
    return out


def write_spec(folder: Path, source: str) -> Path:
    spec = folder / "driftloop.yaml"
    spec.write_text(
        "name: exactly-once\n"
        f"source:\n{source}"
        "target: y\n"
        "id: id\n"
        "validation: {bounds: {id: [0, 10000], x: [0, 1]}}\n"
        "trainer: {function: train:make_model}\n"
        "lease_timeout: 1s\n"  # a killed ingest's lease lapses soon
    )
    return spec


def recorded_batches(spec: Path) -> int:
    """Batch rows committed so far (read beside the running ingest; WAL lets it)."""
    try:
        with sqlite3.connect(spec.parent / "driftloop.db", timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM batches").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet, or busy
        return 0


def ingest(spec: Path, crash: str | None = None, kill_at: int | None = None) -> int:
    """Run `driftloop ingest`; `crash` = "point:n" (see crash_ingest.py), or `kill_at` = SIGKILL
    it from here once that many batches are recorded (plus a random few ms). The return code."""
    env = {k: v for k, v in os.environ.items() if k != "DRIFTLOOP_CRASH_AT"}
    if crash:
        env["DRIFTLOOP_CRASH_AT"] = crash
    while True:
        code, output = _run_ingest(spec, env, kill_at)
        if b"holds the lease" not in output:  # the killed one's lease had not lapsed yet
            break
        time.sleep(0.3)
    if code not in (0, -signal.SIGKILL):
        pytest.fail(f"driftloop ingest failed ({code}):\n{output.decode()}")
    return code


def _run_ingest(spec: Path, env: dict[str, str], kill_at: int | None) -> tuple[int, bytes]:
    process = subprocess.Popen(
        [sys.executable, str(CRASH_SCRIPT), "--spec", str(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    if kill_at is not None:
        deadline = time.monotonic() + 120
        while recorded_batches(spec) < kill_at and process.poll() is None:
            assert time.monotonic() < deadline, "ingest made no progress"
            time.sleep(0.01)
        time.sleep(random.uniform(0, 0.1))
        process.send_signal(signal.SIGKILL)
    output, _ = process.communicate(timeout=300)
    return process.returncode, output


def crash_and_restart(spec: Path, seed: int) -> list[int]:
    """Kill `driftloop ingest` twice at random and three times at chosen points; return codes."""
    random.seed(seed)
    codes = []
    done = 0
    for _ in range(2):
        done += random.randint(2, 5)
        codes.append(ingest(spec, kill_at=done))
    for crash in ("record:3", "recorded:4", "ack:3"):
        codes.append(ingest(spec, crash=crash))
    return codes


def assert_exactly_once(spec: Path) -> dict[str, int]:
    """Every event in exactly one accepted batch, every unreadable one quarantined once."""
    project = projects.open_project(spec)
    try:
        store, name = project.store, project.name
        batches = store.batches.list(name)
        accepted = [b for b in batches if b.status == "accepted"]
        frames = [
            project.artifacts.get_frame(b.data_uri, b.data_sha256)
            for b in accepted
            if b.data_uri and b.data_sha256
        ]
        ids = pd.concat(frames)["id"].to_numpy()
        assert len(ids) == sum(b.rows for b in accepted) == N
        assert sorted(ids.tolist()) == list(range(N))  # complete, and each id once
        quarantined = [b for b in batches if b.status == "quarantined"]
        assert len(quarantined) == len(UNREADABLE), [b.reasons for b in quarantined]
        reasons = sorted(r for b in quarantined for r in b.reasons["*"])
        assert "not valid JSON" in reasons[0] or "not valid JSON" in reasons[1]
        assert any("not a JSON object but an array" in r for r in reasons)
        messages = [m for b in batches for m in store.batches.messages(b.id)]
        assert len(messages) == len(set(messages)) == N + len(UNREADABLE)
        return {"batches": len(batches), "accepted": len(accepted)}
    finally:
        project.close()


@pytest.mark.redis
def test_redis_every_event_exactly_once_across_kills(
    redis_live: RedisStream, tmp_path: Path
) -> None:
    client, key = redis_live.client, redis_live.key
    with client.pipeline(transaction=False) as pipe:
        for data in payloads():
            pipe.xadd(key, {"data": data})
        pipe.execute()

    def source(consumer: str, claim_idle: str) -> str:
        return (
            f"  kind: redis\n  url: {redis_live.url}\n  stream: {key}\n  group: ingest\n"
            f"  consumer: {consumer}\n  claim_idle: {claim_idle}\n"
            f"  batch: {{rows: {ROWS}, seconds: 1}}\n"
        )

    spec = write_spec(tmp_path, source("a", "1m"))
    codes = crash_and_restart(spec, seed=11)
    assert codes == [-signal.SIGKILL] * 5
    # Another consumer takes over what "a" left pending (XAUTOCLAIM), and is killed too.
    write_spec(tmp_path, source("b", "0s"))
    assert ingest(spec, crash="recorded:2") == -signal.SIGKILL
    assert ingest(spec) == 0
    assert client.xpending(key, "ingest")["pending"] == 0
    assert_exactly_once(spec)
    assert ingest(spec) == 0  # and again: nothing new
    assert assert_exactly_once(spec)["accepted"] >= N // ROWS


@pytest.mark.nats
def test_nats_every_event_exactly_once_across_kills(nats_live: NatsStream, tmp_path: Path) -> None:
    nats_live.publish(payloads())
    spec = write_spec(
        tmp_path,
        f"  kind: nats\n  url: {nats_live.url}\n  stream: {nats_live.stream}\n"
        f"  subject: {nats_live.subject}\n  durable: ingest\n  ack_wait: 2s\n"
        f"  batch: {{rows: {ROWS}, seconds: 1}}\n",
    )
    codes = crash_and_restart(spec, seed=12)
    assert codes == [-signal.SIGKILL] * 5
    # What the killed processes held comes again once its ack_wait is over: ingest until the
    # consumer has nothing pending and nothing unacknowledged.
    for _ in range(10):
        assert ingest(spec) == 0
        info = nats_live.consumer("ingest")
        if info.num_pending == 0 and info.num_ack_pending == 0:
            break
        time.sleep(2)
    assert (info.num_pending, info.num_ack_pending) == (0, 0)
    assert_exactly_once(spec)
