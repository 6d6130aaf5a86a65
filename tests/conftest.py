"""Shared fixtures: the live-service switch, a PostgreSQL URL, a local Ray cluster.

Tests marked `postgres` need the server on 127.0.0.1:5432; tests marked `ray` need the `ray`
extra (they start a 2-CPU Ray on 127.0.0.1 once per session). Without either they skip with
the reason, unless DRIFTLOOP_REQUIRE_SERVICES=1 (set by .ci/run), where they fail instead.
"""

from __future__ import annotations

import importlib.util
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
def ray_cluster() -> Iterator[object]:
    """The `ray` module, connected to a local 2-CPU cluster on 127.0.0.1 for the session."""
    if importlib.util.find_spec("ray") is None:
        require_service("Ray", "ray is not installed (pip install -e '.[ray]')")
    from driftloop.train import ray_executor

    ray = ray_executor.connect(num_cpus=2)
    yield ray
    ray.shutdown()
