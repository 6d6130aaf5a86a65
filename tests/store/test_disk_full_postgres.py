"""A full disk under PostgreSQL, for real: a database of its own in a tablespace on a 16 MB
tmpfs owned by the server's user, filled up with a filler file.

The same behaviour as on SQLite (`test_disk_full`): predict keeps answering while the
prediction log cannot write, the predictions that did not fit in memory are counted as
unlogged, /readyz says the store is degraded, and logging resumes by itself once space is back;
a tick stops with a clear `TemporaryError` and the next one ingests the rest of the data, each
file once. Unlike a full SQLite file, PostgreSQL may still fit a few rows into the free space of
pages a table already has: those are written whole.

Needs the live PostgreSQL on this machine as a superuser (a tablespace's folder must be on the
server's file system) and root to mount the tmpfs; skips otherwise. It creates and drops its
own tablespace and database and touches no other.
"""

from __future__ import annotations

import contextlib
import pwd
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import specs
import sqlalchemy as sa
from conftest import PG_ADMIN_URL, require_service
from test_disk_full import predict_onto_a_full_disk
from uvicorn_thread import serving as serve_in_thread

from driftloop.cli import project_commands as scaffold
from driftloop.controller import project as projects
from driftloop.controller import tick
from driftloop.core import errors
from driftloop.server import app as apps

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
RECORD = {"period": 0.5, "nswprice": 0.06, "nswdemand": 0.4, "vicprice": 0.003,
          "vicdemand": 0.4, "transfer": 0.4}


@pytest.fixture
def small_database() -> Iterator[tuple[str, Path]]:
    """The URL of a fresh database whose tablespace is a 16 MB tmpfs, and the mount; the
    database, the tablespace and the mount go afterwards."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            superuser = conn.scalar(sa.text("SELECT rolsuper FROM pg_roles "
                                             "WHERE rolname = current_user"))
            address = conn.scalar(sa.text("SELECT host(inet_server_addr())"))
    except sa.exc.OperationalError as exc:
        require_service("PostgreSQL at 127.0.0.1:5432", str(exc.orig).strip().splitlines()[0])
    if not superuser or address not in (None, "127.0.0.1", "::1"):
        pytest.skip("a tablespace needs a superuser on a PostgreSQL server on this machine")
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no `postgres` user owns the server's files here")
    mount = Path(tempfile.mkdtemp(prefix="driftloop-pgfull-"))  # outside root's private tmp
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o",
         f"size=16m,uid={owner.pw_uid},gid={owner.pw_gid},mode=0700", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False)
    if done.returncode != 0:
        mount.rmdir()
        pytest.skip(f"cannot mount a tmpfs (needs root): {done.stderr.strip()}")
    name = f"driftloop_full_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE TABLESPACE {name} LOCATION '{mount}'"))
            conn.execute(sa.text(f"CREATE DATABASE {name} TABLESPACE {name}"))
        url = sa.make_url(PG_ADMIN_URL).set(database=name)
        yield url.render_as_string(hide_password=False), mount
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            conn.execute(sa.text(f"DROP TABLESPACE IF EXISTS {name}"))
        admin.dispose()
        subprocess.run(["umount", "-l", str(mount)], check=False)
        with contextlib.suppress(OSError):
            mount.rmdir()


def project_on(folder: Path, url: str) -> tuple[Path, list[Path]]:
    """A scaffolded Elec2 project whose store is `url`, its first data file in place and the
    others parked; returns its spec and the parked files."""
    scaffold.init(folder, weeks=3)
    spec = folder / "driftloop.yaml"
    specs.override(spec, replace={"store": url, "trainer": {
        "executor": "inline", "params": {"max_iter": 10}}})
    assert f"store: {url}" in spec.read_text()
    parked = folder.parent / "parked"
    parked.mkdir()
    later = []
    for path in sorted((folder / "data").glob("*.csv"))[1:]:
        later.append(parked / path.name)
        path.rename(later[-1])
    return spec, later


def test_postgres_on_a_full_disk_keeps_predicting_and_resumes(
    small_database: tuple[str, Path], tmp_path: Path,
) -> None:
    url, disk = small_database
    spec, parked = project_on(tmp_path / "p", url)
    project = projects.open_project(spec)
    controller = tick.Controller(project)
    controller.tick()  # v1 champion
    controller.release()
    assert project.store.aliases.get(project.name, "champion") == 1
    app = apps.create_app(project, anonymous_predict=True, max_queued=300, flush_interval=0.01)
    with serve_in_thread(app) as served, httpx.Client(base_url=served, timeout=30) as client:
        assert client.post("/v1/predict", json={"records": [RECORD] * 10}).status_code == 200
        assert app.state.driftloop.log.flush(timeout=30)
        filler, unlogged = predict_onto_a_full_disk(client, RECORD, disk)
        # what did not fit in memory is counted, not hidden (the first rows may still find
        # room in a table's pages: the count at the end adds up either way)
        assert unlogged > 0 and app.state.driftloop.log.queued <= 300

        for path in parked:  # new data while the disk is full: the tick stops, clearly
            path.rename(spec.parent / "data" / path.name)
        with pytest.raises(errors.TemporaryError,
                           match="the disk is full: ingestion and training"):
            controller.tick()

        filler.unlink()  # space is back: the waiting rows are written, by themselves
        assert app.state.driftloop.log.flush(timeout=30)
        assert not client.get("/readyz").json()["degraded"]
        assert "driftloop_store_writable 1.0" in client.get("/metrics").text
    with project.store.engine.connect() as conn:
        logged = conn.execute(sa.text("SELECT count(*) FROM predictions")).scalar()
    assert logged == 410 - unlogged
    # a batch that found room in the table's pages before the disk filled is recorded whole,
    # with its file; the next tick ingests the rest, each file once
    for batch in project.store.batches.list(project.name):
        project.artifacts.get_frame(batch.data_uri, batch.data_sha256)  # type: ignore[arg-type]
    controller.tick()
    batches = project.store.batches.list(project.name)
    assert len(batches) == 1 + len(parked)
    assert len({b.source_uri for b in batches}) == len(batches)
    project.close()
