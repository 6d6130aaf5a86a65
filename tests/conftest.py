"""Shared fixtures: the live-service switch, a PostgreSQL URL, the Elec2 frame.

Tests marked `postgres` need the server on 127.0.0.1:5432. Without it they skip with the
reason, unless DRIFTLOOP_REQUIRE_SERVICES=1 (set by .ci/run), where they fail instead.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get("DRIFTLOOP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def require_service(name: str, reason: str) -> None:
    """Skip (laptop) or fail (CI, DRIFTLOOP_REQUIRE_SERVICES=1) when a live service is absent."""
    message = f"{name} is not reachable: {reason}"
    if os.environ.get("DRIFTLOOP_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (DRIFTLOOP_REQUIRE_SERVICES=1)")
    pytest.skip(message)


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
