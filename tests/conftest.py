"""Shared fixtures: the live-service switch, a PostgreSQL URL, fresh Redis and NATS streams,
moto's S3 server, a local Ray cluster.

Tests marked `postgres`, `redis` or `nats` need the server on 127.0.0.1 (5432, 6379, 4222 with
JetStream); tests marked `ray` need the `ray` extra (they start a 2-CPU Ray on 127.0.0.1 once
per session). Without it they skip with the reason, unless DRIFTLOOP_REQUIRE_SERVICES=1 (set by
.ci/run), where they fail instead.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import specs
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get("DRIFTLOOP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("DRIFTLOOP_TEST_REDIS", "redis://127.0.0.1:6379/0")
NATS_URL = os.environ.get("DRIFTLOOP_TEST_NATS", "nats://127.0.0.1:4222")


def require_service(name: str, reason: str) -> None:
    """Skip (laptop) or fail (CI, DRIFTLOOP_REQUIRE_SERVICES=1) when a live service is absent."""
    message = f"{name} is not reachable: {reason}"
    if os.environ.get("DRIFTLOOP_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (DRIFTLOOP_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _cli_log_handlers_removed() -> Iterator[None]:
    """`--log-format` / `--log-level` put a stderr handler on the process's loggers; a real CLI
    call is a process of its own, but the tests share one, so a test's JSON logging must not
    outlive it."""
    yield
    for name in ("", "driftloop"):
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if hasattr(h, "driftloop_format")]:
            logger.removeHandler(handler)
    logging.getLogger("driftloop").setLevel(logging.NOTSET)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL to a fresh, empty PostgreSQL schema in database `test`; dropped afterwards."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        require_service("PostgreSQL", "psycopg is not installed (pip install -e '.[postgres]')")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        require_service("PostgreSQL at 127.0.0.1:5432", str(exc.orig).strip().splitlines()[0])
    yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 (a free port), for the session; yields its endpoint URL."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        require_service("moto's S3 server", "moto is not installed (pip install -e '.[dev]')")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A new, empty bucket on the test S3 server; the AWS environment points every client
    there (fake keys, `AWS_ENDPOINT_URL`, no shared config files). Yields the bucket's name."""
    try:
        import boto3
        import s3fs  # noqa: F401
    except ImportError:
        require_service("S3 through fsspec", "s3fs is not installed (pip install -e '.[s3]')")

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    bucket = f"driftloop-{uuid.uuid4().hex[:10]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    yield bucket


@dataclass(frozen=True)
class RedisStream:
    """A fresh stream key on the live Redis and a client to write to it."""

    url: str
    key: str
    client: Any


@pytest.fixture
def redis_live() -> Iterator[RedisStream]:
    """A stream key no other test uses, on the live Redis; deleted afterwards."""
    try:
        import redis
    except ImportError:
        require_service("Redis", "redis is not installed (pip install -e '.[streams]')")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        require_service("Redis at 127.0.0.1:6379", str(exc))
    stream = RedisStream(REDIS_URL, f"driftloop-test-{uuid.uuid4().hex[:12]}", client)
    yield stream
    client.delete(stream.key)
    client.close()


@dataclass(frozen=True)
class NatsStream:
    """A fresh JetStream stream on the live NATS server, capturing `subject`."""

    url: str
    stream: str
    subject: str

    def publish(self, payloads: list[bytes]) -> None:
        """Publish `payloads` in order, each acknowledged by JetStream (stored)."""
        asyncio.run(_nats_publish(self.url, self.subject, payloads))

    def recreate(self) -> None:
        """Delete the stream (and its consumers) and create it again: sequences start at 1."""
        asyncio.run(_nats_stream(self.url, self.stream, self.subject, create=False))
        asyncio.run(_nats_stream(self.url, self.stream, self.subject, create=True))

    def consumer(self, durable: str) -> Any:
        """The durable consumer's info (num_pending, num_ack_pending, ...)."""
        return asyncio.run(_nats_consumer(self.url, self.stream, durable))


async def _nats_publish(url: str, subject: str, payloads: list[bytes]) -> None:
    import nats

    client = await nats.connect(url)
    try:
        jetstream = client.jetstream()
        for data in payloads:
            await jetstream.publish(subject, data)
    finally:
        await client.close()


async def _nats_consumer(url: str, stream: str, durable: str) -> Any:
    import nats

    client = await nats.connect(url)
    try:
        return await client.jetstream().consumer_info(stream, durable)
    finally:
        await client.close()


async def _nats_stream(url: str, stream: str, subject: str, create: bool) -> None:
    import nats

    client = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        jetstream = client.jetstream()
        if create:
            await jetstream.add_stream(name=stream, subjects=[subject])
        else:
            await jetstream.delete_stream(stream)
    finally:
        await client.close()


@pytest.fixture
def nats_live() -> Iterator[NatsStream]:
    """A JetStream stream and subject no other test uses, on the live NATS; deleted afterwards."""
    try:
        import nats  # noqa: F401
    except ImportError:
        require_service("NATS", "nats-py is not installed (pip install -e '.[streams]')")
    name = f"DLTEST{uuid.uuid4().hex[:12].upper()}"
    made = NatsStream(NATS_URL, name, f"driftloop.test.{name.lower()}")
    try:
        asyncio.run(_nats_stream(made.url, made.stream, made.subject, create=True))
    except Exception as exc:  # refused, no JetStream, timed out: all mean "not reachable"
        require_service("NATS JetStream at 127.0.0.1:4222", f"{type(exc).__name__}: {exc}")
    yield made
    asyncio.run(_nats_stream(made.url, made.stream, made.subject, create=False))


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[object]:
    """The `ray` module, connected to a local 2-CPU cluster on 127.0.0.1 for the session."""
    if importlib.util.find_spec("ray") is None:
        require_service("Ray", "ray is not installed (pip install -e '.[ray]')")
    from driftloop.train import ray_executor

    ray = ray_executor.connect(num_cpus=2)
    yield ray
    ray.shutdown()


def stream_project(tmp_path: Any, source: Any, spec: str) -> Any:
    """A project on an in-memory SQLite store reading `source` (a stream source or a double)."""
    from driftloop.controller import project as projects
    from driftloop.core import clock as clocks
    from driftloop.core import config
    from driftloop.store import artifacts, metadata

    store = metadata.MetadataStore.open("sqlite://")
    project = projects.Project(
        spec=config.parse_spec(spec),
        base_dir=tmp_path,
        store=store,
        artifacts=artifacts.ArtifactStore(str(tmp_path / "artifacts")),
        source=source,
        clock=clocks.SystemClock(),
    )
    store.pipelines.ensure(project.name, project.spec.model_dump(mode="json"))
    return project


def replay_project(tmp_path: Any, spec: Any, data: Any, ends: Any,
                   url: str | None = None) -> Any:
    """A project that replays `data` (stamped in column ``t``) in batches ending at `ends`, on
    a fake clock set to the first end, with its store at `url` (default: in memory) and
    artifacts under `tmp_path`."""
    from driftloop.controller import project as projects
    from driftloop.core import clock as clocks
    from driftloop.data.sources import replay
    from driftloop.store import artifacts, metadata

    clock = clocks.FakeClock(ends[0].to_pydatetime())
    store = metadata.MetadataStore.open(url or "sqlite://", clock=clock)
    store.pipelines.ensure(spec.name, spec.model_dump(mode="json"))
    return projects.Project(spec=spec, base_dir=tmp_path, store=store,
                            artifacts=artifacts.ArtifactStore(str(tmp_path / "artifacts")),
                            source=replay.ReplaySource(data, "t", ends, clock), clock=clock)


@pytest.fixture
def cli_project(tmp_path: Any) -> Iterator[Any]:
    """A `driftloop init` project that trains in process, as the working directory (the CLI
    tests run commands in it)."""
    from typer.testing import CliRunner

    from driftloop.cli.main import app

    folder = tmp_path / "project"
    assert CliRunner().invoke(app, ["init", str(folder)]).exit_code == 0
    spec = folder / "driftloop.yaml"
    specs.override(spec, replace={"trainer": {"executor": "inline"}})
    old = os.getcwd()
    os.chdir(folder)
    yield folder
    os.chdir(old)


def two_feature_days(days: int) -> Any:
    """50 rows a day from 2024-01-01 (column ``t``): ``y`` is whether ``x0 + x1 > 0``."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(3)
    x = rng.normal(size=(days * 50, 2))
    return pd.DataFrame({
        "x0": x[:, 0], "x1": x[:, 1], "y": (x[:, 0] + x[:, 1] > 0).astype(int),
        "t": pd.date_range("2024-01-01", periods=days * 50, freq=timedelta(days=1) / 50,
                           tz="UTC"),
    })
