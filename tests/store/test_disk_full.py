"""A full disk, for real: the store and artifacts on a 4 MB tmpfs filled up with a filler file.

The server keeps answering predict while the prediction log cannot write (the rows wait in
memory, then are counted as unlogged), says so on /readyz and in /metrics, and writes again by
itself once space is back; the controller stops ingesting with a clear `TemporaryError` and
ingests the same data once space is back; SQLite's integrity check passes throughout. Needs
root to mount the tmpfs (skips otherwise); the store-down case (PostgreSQL unreachable) is
covered with a URL nobody listens on.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import specs
import sqlalchemy as sa
from test_server import trained_folder
from uvicorn_thread import serving as serve_in_thread

from driftloop.cli import project_commands as scaffold
from driftloop.controller import project as projects
from driftloop.controller import tick
from driftloop.core import errors
from driftloop.server import app as apps
from driftloop.store import faults

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs mounted at a fresh folder; unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Fill `disk` up to the last byte with a filler file; returns it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    for size in (65536, 512, 1):
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * size)
    os.close(fd)
    return filler


def predict_onto_a_full_disk(client: httpx.Client, record: dict[str, float],
                             disk: Path) -> tuple[Path, float]:
    """Fill `disk`, then send 400 predictions to a server whose log keeps at most 300 in
    memory: every one is answered, `/readyz` stays ready but says the disk is full, the store
    is shown unwritable. Returns the filler file and the unlogged count `/metrics` shows."""
    filler = fill(disk)
    answered = 0
    for _ in range(40):
        response = client.post("/v1/predict", json={"records": [record] * 10})
        assert response.status_code == 200, response.text
        answered += len(response.json()["predictions"])
    assert answered == 400
    for _ in range(200):  # the writer thread meets the full disk
        ready = client.get("/readyz").json()
        if ready["degraded"]:
            break
        time.sleep(0.05)
    assert ready["ready"], "a loaded model keeps the server ready"
    assert any("the disk is full" in line for line in ready["degraded"]), ready
    metrics = client.get("/metrics").text
    assert "driftloop_store_writable 0.0" in metrics
    unlogged = next(float(line.split()[-1]) for line in metrics.splitlines()
                    if line.startswith("driftloop_predictions_unlogged "))
    return filler, unlogged


def integrity(db: Path) -> str:
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        result = str(conn.execute(sa.text("PRAGMA integrity_check")).scalar())
    engine.dispose()
    return result


def move_store(folder: Path, disk: Path) -> Path:
    """Point the project's store at a copy of its database on `disk`."""
    spec = folder / "driftloop.yaml"
    db = disk / "driftloop.db"
    shutil.copy(folder / "driftloop.db", db)
    specs.override(spec, replace={"store": f"sqlite:///{db}"})
    return db


def test_predict_answers_on_a_full_disk_and_logging_resumes(
    small_disk: Path, tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = trained_folder(tmp_path_factory, "full")
    db = move_store(folder, small_disk)
    project = projects.open_project(folder / "driftloop.yaml")
    app = apps.create_app(project, anonymous_predict=True, max_queued=300, flush_interval=0.01)
    record = {"period": 0.5, "nswprice": 0.06, "nswdemand": 0.4, "vicprice": 0.003,
              "vicdemand": 0.4, "transfer": 0.4}
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert client.post("/v1/predict", json={"records": [record] * 10}).status_code == 200
        filler, unlogged = predict_onto_a_full_disk(client, record, small_disk)
        assert unlogged >= 100  # what did not fit in memory is counted, not hidden
        assert integrity(db) == "ok"
        filler.unlink()  # space is back: the waiting rows are written, by themselves
        assert app.state.driftloop.log.flush(timeout=30)
        assert not client.get("/readyz").json()["degraded"]
        assert "driftloop_store_writable 1.0" in client.get("/metrics").text
    logged = project.store.engine.connect().execute(
        sa.text("SELECT count(*) FROM predictions")).scalar()
    assert logged == 410 - unlogged
    project.close()
    assert integrity(db) == "ok"


def test_ingest_stops_on_a_full_disk_and_resumes(small_disk: Path, tmp_path: Path) -> None:
    folder = tmp_path / "p"
    scaffold.init(folder, weeks=3)
    spec = folder / "driftloop.yaml"
    specs.override(spec, replace={"trainer": {"executor": "inline"},
                                  "artifacts": str(small_disk / "artifacts"),
                                  "store": f"sqlite:///{small_disk / 'driftloop.db'}"})
    project = projects.open_project(spec)
    data = sorted((folder / "data").glob("*.csv"))
    parked = tmp_path / "parked"
    parked.mkdir()
    for path in data[1:]:  # the first file now, the others once the disk is full
        path.rename(parked / path.name)
    controller = tick.Controller(project)
    controller.tick()
    controller.release()
    before = len(project.store.batches.list(project.name))
    filler = fill(small_disk)
    for path in parked.iterdir():
        path.rename(folder / "data" / path.name)
    with pytest.raises(errors.TemporaryError, match="the disk is full: ingestion and training"):
        controller.tick()
    assert integrity(small_disk / "driftloop.db") == "ok"
    filler.unlink()
    project.close()  # a new process, as `driftloop run` would be after a restart
    project = projects.open_project(spec)
    assert len(project.store.batches.list(project.name)) == before  # nothing half-recorded
    result = tick.Controller(project).tick()
    assert len(result.batches) == len(data) - 1
    project.close()
    assert integrity(small_disk / "driftloop.db") == "ok"


def test_an_unreachable_database_is_told_from_other_errors() -> None:
    exc = sa.exc.OperationalError(
        "SELECT 1", {}, Exception('connection to server at "127.0.0.1", port 9 failed: '
                                  "Connection refused"))
    assert faults.storage_fault(exc) == faults.DOWN
    assert faults.storage_fault(RuntimeError(str(uuid.uuid4()))) is None
