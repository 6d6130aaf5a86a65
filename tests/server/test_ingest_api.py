"""`POST /v1/batches` on a real uvicorn server on 127.0.0.1 (in this process): formats, batch ids
and content hashes, roles, bad bodies, and a body queued while a controller holds the lease and
recorded by its next tick."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
import specs
import uvicorn

from driftloop.cli import project_commands as scaffold
from driftloop.controller import project as projects
from driftloop.controller import tick as ticking
from driftloop.server import app as apps
from driftloop.server import auth
from driftloop.store import serving, uploads


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Elec2 rows as the scaffold writes them (columns time, period, ..., class)."""
    folder = tmp_path_factory.mktemp("rows") / "p"
    scaffold.init(folder, weeks=3)
    return pd.concat(pd.read_csv(f) for f in sorted((folder / "data").glob("*.csv"))
                     if "fault" not in f.name)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[projects.Project]:
    """A scaffolded pipeline whose source folder is empty: data comes only through the API."""
    folder = tmp_path / "p"
    scaffold.init(folder, weeks=3)
    for file in (folder / "data").glob("*.csv"):
        file.unlink()
    spec = folder / "driftloop.yaml"
    specs.override(spec, replace={"trainer": {"executor": "inline"}})
    opened = projects.open_project(spec)
    yield opened
    opened.close()


class Served:
    """`create_app(project)` under uvicorn in a thread, on a free port of 127.0.0.1."""

    def __init__(self, project: projects.Project, **overrides: object) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        app = apps.create_app(project, poll_interval=0.2, **overrides)
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture
def served(project: projects.Project) -> Iterator[Served]:
    running = Served(project)
    yield running
    running.stop()


@pytest.fixture
def tokens(project: projects.Project) -> dict[str, str]:
    store = serving.ServingStore(project.store)
    return {role: auth.create_token(store, role, [role], actor="test")[1]
            for role in ("ingest", "predict")}


def client(served: Served, secret: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return httpx.Client(base_url=served.url, headers=headers, timeout=30)


def csv_of(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


CSV = {"Content-Type": "text/csv"}


def test_a_batch_id_makes_a_post_idempotent(
    served: Served, project: projects.Project, tokens: dict[str, str], rows: pd.DataFrame
) -> None:
    body = csv_of(rows.iloc[:48])
    with client(served, tokens["ingest"]) as http:
        first = http.post("/v1/batches", content=body, headers={**CSV, "Idempotency-Key": "d1"})
        assert first.status_code == 201, first.text
        made = first.json()
        assert made["status"] == "accepted" and made["rows"] == 48 and made["reasons"] == {}
        again = http.post("/v1/batches", content=body, headers={**CSV, "Idempotency-Key": "d1"})
        assert again.status_code == 200 and again.json() == made
        by_query = http.post("/v1/batches?batch_id=d1", content=body, headers=CSV)
        assert by_query.status_code == 200 and by_query.json()["batch_id"] == made["batch_id"]
        # the same body under another id, or under none: still the one batch
        other = http.post("/v1/batches", content=body, headers={**CSV, "Idempotency-Key": "d2"})
        bare = http.post("/v1/batches", content=body, headers=CSV)
        assert (other.status_code, bare.status_code) == (200, 200)
        assert other.json()["batch_id"] == bare.json()["batch_id"] == made["batch_id"]
        assert bare.json()["key"].startswith("sha256:")
        reused = http.post("/v1/batches", content=csv_of(rows.iloc[48:96]),
                           headers={**CSV, "Idempotency-Key": "d1"})
        assert reused.status_code == 409 and "different body" in reused.json()["detail"]
        both = http.post("/v1/batches?batch_id=x", content=body,
                         headers={**CSV, "Idempotency-Key": "y"})
        assert both.status_code == 400 and "differ" in both.text
        looked_up = http.get("/v1/batches/d1")
        assert looked_up.status_code == 200 and looked_up.json() == made
        assert http.get("/v1/batches/nope").status_code == 404
    batches = project.store.batches.list(project.name)
    assert [b.id for b in batches] == [made["batch_id"]]
    assert batches[0].source_uri == "upload:d1"
    assert project.store.pipelines.get(project.name).schema is not None


def test_csv_parquet_and_json_bodies_are_batches_like_files(
    served: Served, project: projects.Project, tokens: dict[str, str], rows: pd.DataFrame
) -> None:
    parquet = io.BytesIO()
    rows.iloc[48:96].to_parquet(parquet, index=False)
    json_body = rows.iloc[96:144].to_json(orient="records").encode()
    bad = rows.iloc[144:192].copy()
    bad.iloc[3, bad.columns.get_loc("nswprice")] = 7.5  # out of its [0, 1] bounds: line 5
    with client(served, tokens["ingest"]) as http:
        first = http.post("/v1/batches", content=csv_of(rows.iloc[:48]), headers=CSV)
        as_parquet = http.post("/v1/batches", content=parquet.getvalue(),
                               headers={"Content-Type": "application/vnd.apache.parquet"})
        as_json = http.post("/v1/batches", content=json_body,
                            headers={"Content-Type": "application/json; charset=utf-8"})
        quarantined = http.post("/v1/batches", content=csv_of(bad), headers=CSV)
    for answer in (first, as_parquet, as_json):
        assert answer.status_code == 201 and answer.json()["status"] == "accepted", answer.text
    out = quarantined.json()
    assert quarantined.status_code == 201 and out["status"] == "quarantined"
    assert "line 5" in out["reasons"]["nswprice"][0], out["reasons"]
    history = ticking.Controller(project)
    history.history.refresh()
    assert len(history.history) == 144  # what the next tick trains on


@pytest.mark.parametrize(
    ("body", "content_type", "status", "says"),
    [
        (b"a,b\n1,2\n3,4,5\n", "text/csv", 400, "not valid CSV: Error tokenizing data. C error: "
         "Expected 2 fields in line 3"),
        (b"", "text/csv", 400, "the body is empty"),
        (b"  \n", "application/json", 400, "the body is empty"),
        (b"time,class\n", "text/csv", 400, "holds no rows"),
        (b'{"x": 1}', "application/json", 400, "not a JSON array of records"),
        (b'[{"x": 1}, {"x": {"y": 2}}]', "application/json", 400, "record 2"),
        (b"[{]", "application/json", 400, "not valid JSON"),
        (b"PAR1 not really", "application/vnd.apache.parquet", 400, "not valid Parquet"),
        (b"\xff\xfe,\x00", "text/csv", 400, "not valid CSV"),
        (b"x=1", "application/x-www-form-urlencoded", 415, "text/csv"),
        (b"a\n1\n", None, 415, "(none)"),
    ],
)
def test_bad_bodies_are_refused_with_what_was_wrong(
    served: Served, project: projects.Project, tokens: dict[str, str],
    body: bytes, content_type: str | None, status: int, says: str,
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    with client(served, tokens["ingest"]) as http:
        answer = http.post("/v1/batches", content=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["detail"]
    assert project.store.batches.list(project.name) == []
    assert uploads.UploadStore(project.store).pending(project.name) == []


def test_roles_and_the_size_limit(project: projects.Project, tokens: dict[str, str]) -> None:
    running = Served(project, max_body_bytes=1000)
    try:
        body = b"a,b\n" + b"1,2\n" * 400
        with client(running, None) as http:
            assert http.post("/v1/batches", content=b"a\n1\n", headers=CSV).status_code == 401
        with client(running, tokens["predict"]) as http:
            refused = http.post("/v1/batches", content=b"a\n1\n", headers=CSV)
            assert refused.status_code == 403 and "'ingest'" in refused.text
            assert http.get("/v1/batches/x").status_code == 403
        with client(running, tokens["ingest"]) as http:
            assert http.post("/v1/batches", content=body, headers=CSV).status_code == 413

            def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
                yield from (b"1,2\n" * 100 for _ in range(4))

            chunked = http.post("/v1/batches", content=chunks(), headers=CSV)
            assert chunked.status_code == 413 and "1000 bytes" in chunked.text
    finally:
        running.stop()


def test_a_body_posted_while_a_controller_holds_the_lease_waits_for_its_tick(
    served: Served, project: projects.Project, tokens: dict[str, str], rows: pd.DataFrame
) -> None:
    controller = ticking.Controller(project)
    held = project.store.leases.acquire(project.name, controller.holder, project.spec.lease_timeout)
    assert held is not None
    with client(served, tokens["ingest"]) as http:
        queued = http.post("/v1/batches?batch_id=late", content=csv_of(rows.iloc[:48]),
                           headers=CSV)
        assert queued.status_code == 202, queued.text
        assert queued.json() == {"key": "late", "batch_id": None, "status": "queued",
                                 "reasons": {}, "rows": None}
        assert queued.headers["Location"] == "/v1/batches/late"
        assert project.store.batches.list(project.name) == []
        result = controller.tick()  # the holder records it
        assert [b.source_uri for b in result.batches] == ["upload:late"]
        controller.release()
        done = http.get("/v1/batches/late").json()
        assert done["status"] == "accepted" and done["batch_id"] == result.batches[0].id
        again = http.post("/v1/batches?batch_id=late", content=csv_of(rows.iloc[:48]),
                          headers=CSV)
        assert again.status_code == 200 and again.json() == done
    stored = uploads.UploadStore(project.store).get(project.name, "late")
    assert stored is not None and stored.data is None  # the batch's artifact holds the rows
    assert project.store.leases.get(project.name).holder == ""  # released, not kept
