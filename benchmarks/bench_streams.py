"""Streaming ingest throughput on the live Redis (127.0.0.1:6379) and NATS JetStream
(127.0.0.1:4222): events per second read and acknowledged by the source alone, and through
the whole ingest path (validate, Parquet artifact, batch row and message ids in SQLite, ack).
The clock stops when the last event is acknowledged (a poll then waits a second for more before
it returns; that idle second is not counted).

Workload: N events (JSON objects of 5 fields) produced into a fresh stream before timing, read
in batches of `--rows`; every repeat uses a new stream (deleted afterwards) and a new SQLite
store. Prints medians as a Rich table.

    python benchmarks/bench_streams.py [--events 20000] [--rows 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from driftloop.controller import ingest
from driftloop.controller import project as projects
from driftloop.data.sources import base

REDIS_URL = "redis://127.0.0.1:6379/0"
NATS_URL = "nats://127.0.0.1:4222"


def events(n: int) -> list[bytes]:
    return [
        json.dumps(
            {"id": i, "x": (i * 7919 % 1000) / 1000, "z": i % 17, "k": "ab"[i % 2], "y": i % 2}
        ).encode()
        for i in range(n)
    ]


def redis_stream(n: int) -> tuple[str, Callable[[], None]]:
    """A fresh Redis stream holding `n` events, and a function that deletes it."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    key = f"bench-{uuid.uuid4().hex[:10]}"
    with client.pipeline(transaction=False) as pipe:
        for data in events(n):
            pipe.xadd(key, {"data": data})
        pipe.execute()

    def drop() -> None:
        client.delete(key)
        client.close()

    return f"  kind: redis\n  stream: {key}\n", drop


def nats_stream(n: int) -> tuple[str, Callable[[], None]]:
    """A fresh JetStream stream holding `n` events, and a function that deletes it."""
    import nats

    name = f"BENCH{uuid.uuid4().hex[:10].upper()}"
    subject = f"bench.{name.lower()}"

    async def make() -> None:
        client = await nats.connect(NATS_URL)
        jetstream = client.jetstream()
        await jetstream.add_stream(name=name, subjects=[subject])
        for data in events(n):
            await jetstream.publish(subject, data)
        await client.close()

    async def delete() -> None:
        client = await nats.connect(NATS_URL)
        await client.jetstream().delete_stream(name)
        await client.close()

    asyncio.run(make())
    return f"  kind: nats\n  stream: {name}\n  subject: {subject}\n", lambda: asyncio.run(delete())


def one_repeat(
    make: Callable[[int], tuple[str, Callable[[], None]]], n: int, rows: int, whole: bool
) -> float:
    """Events per second: the source alone (poll + ack) or the whole `ingest`."""
    source_yaml, drop = make(n)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            spec = Path(tmp) / "driftloop.yaml"
            spec.write_text(
                f"name: bench\nsource:\n{source_yaml}  batch: {{rows: {rows}, seconds: 0.2}}\n"
                "target: y\nid: id\nvalidation: {bounds: {id: [0, 100000000]}}\n"
                "trainer: {function: train:make_model}\n"
            )
            project = projects.open_project(spec)
            done = Done(n)
            try:
                started = time.perf_counter()
                if whole:
                    ingest.ingest(project, on_accepted=lambda batch, rows: done.add(len(rows)))
                else:
                    read_only(project.source, done)
                seconds = done.at - started
            finally:
                project.close()
    finally:
        drop()
    assert done.count == n, f"read {done.count} of {n} events"
    return n / seconds


class Done:
    """Counts events; `at` is when the n-th was counted."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.at = float("inf")

    def add(self, count: int) -> None:
        self.count += count
        if self.count >= self.n and self.at == float("inf"):
            self.at = time.perf_counter()


def read_only(source: base.Source, done: Done) -> None:
    for raw in source.poll(None):
        source.acknowledge(raw)
        done.add(len(raw.messages))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    table = Table(title=f"{args.events} events, batches of {args.rows} (median of {args.repeats})")
    for column in ("source", "poll + ack (events/s)", "whole ingest (events/s)"):
        table.add_column(column, justify="right")
    for name, make in (("redis", redis_stream), ("nats", nats_stream)):
        rates = [
            statistics.median(
                one_repeat(make, args.events, args.rows, whole) for _ in range(args.repeats)
            )
            for whole in (False, True)
        ]
        table.add_row(name, *(f"{rate:,.0f}" for rate in rates))
    Console().print(table)


if __name__ == "__main__":
    main()
