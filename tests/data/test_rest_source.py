"""The `http` source against a REST endpoint served on 127.0.0.1 by `http.server` in a thread:
page numbers and next links, JSON and CSV pages, a cursor that survives a restart, and an
endpoint that fails mid-listing (HTTP 500, a connection dropped inside a page): every record
is recorded once, whatever failed and whenever the controller stopped."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pandas as pd
import pytest
import specs

from driftloop.controller import ingest as ingesting
from driftloop.controller import project as projects
from driftloop.core import config, errors
from driftloop.data.sources import base, rest

PER_PAGE = 5


def record(i: int, minute: int | None = None) -> dict[str, Any]:
    """Record `i`, changed at minute `minute` (default: `i`); `t` orders rows in time."""
    at = i if minute is None else minute
    return {"id": i, "updated_at": f"2024-05-01T10:{at // 60:02d}:{at % 60:02d}Z",
            "t": f"2024-05-01T{10 + at // 60:02d}:{at % 60:02d}:00", "x": (i % 10) / 10,
            "y": i % 2}


@dataclass
class Api:
    """The endpoint's state: its records, how it pages, and failures to inject by page."""

    records: list[dict[str, Any]]
    mode: str = "page"  # page: ?page=N; link: Link header; body: {"data", "next"}; csv: + Link
    failures: dict[int, list[str]] = field(default_factory=dict)  # page -> ["500", "drop"]
    requests: list[dict[str, str]] = field(default_factory=list)

    def answer(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        self.requests.append(query)
        since = query.get("since")
        rows = sorted((r for r in self.records if since is None or r["updated_at"] >= since),
                      key=lambda r: (r["updated_at"], r["id"]))
        page = int(query.get("page", "1"))
        part = rows[(page - 1) * PER_PAGE : page * PER_PAGE]
        headers, more = {}, page * PER_PAGE < len(rows)
        following = "/rows?" + urlencode({**query, "page": page + 1})
        if self.mode in ("link", "csv") and more:
            headers["Link"] = f'<{following}>; rel="next"'
        if self.mode == "csv":
            body = pd.DataFrame(part).to_csv(index=False).encode() if part else b"id\n"
            return 200, {**headers, "Content-Type": "text/csv"}, body
        if self.mode == "body":
            data: Any = {"data": part, "next": following if more else None}
        else:
            data = part
        return 200, {**headers, "Content-Type": "application/json"}, json.dumps(data).encode()


@pytest.fixture
def api() -> Iterator[tuple[Api, str]]:
    state = Api([record(i) for i in range(23)])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if urlsplit(self.path).path != "/rows":
                self.send_error(404, "no such listing")
                return
            query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            page = int(query.get("page", "1"))
            pending = state.failures.get(page, [])
            if pending:
                failure = pending.pop(0)
                state.requests.append({**query, "failed": failure})
                if failure == "500":
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)  # "drop": half a page, then the connection closes
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b'[{"id": 1, "upd')
                self.wfile.flush()
                self.close_connection = True
                return
            status, headers, body = state.answer(query)
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/rows"
    server.shutdown()
    server.server_close()


SPEC = """\
name: rest
store: sqlite:///driftloop.db
source:
  kind: http
  url: {url}
  format: {format}
  cursor: {{param: since, field: updated_at}}
  page: {page}
  id: id
  retries: {retries}
  backoff: 0.01s
  max_pages: {max_pages}
target: y
timestamp: t
id: id
features: [x]
validation:
  allow_new_categories: true  # updated_at is text
  bounds: {{x: [0, 1], id: [0, 1000]}}
trainer:
  function: sklearn.linear_model:LogisticRegression
"""


def open_project(folder: Path, url: str, *, page: str = "{param: page}", format: str = "json",
                 retries: int = 3, max_pages: int = 100) -> projects.Project:
    folder.mkdir(exist_ok=True)
    spec = folder / "driftloop.yaml"
    spec.write_text(SPEC.format(url=url, page=page, format=format, retries=retries,
                                max_pages=max_pages))
    return projects.open_project(spec)


def recorded_ids(project: projects.Project) -> list[int]:
    """The ids of every stored row, in batch order (each accepted batch's artifact)."""
    ids: list[int] = []
    for batch in project.store.batches.list(project.name):
        assert batch.status == "accepted", batch.reasons
        assert batch.data_uri is not None and batch.data_sha256 is not None
        ids += project.artifacts.get_frame(batch.data_uri, batch.data_sha256)["id"].tolist()
    return ids


def test_pages_become_batches_and_a_restart_continues_where_it_stopped(
    api: tuple[Api, str], tmp_path: Path
) -> None:
    state, url = api
    project = open_project(tmp_path / "p", url, max_pages=2)
    assert [b.rows for b in ingesting.ingest(project)] == [5, 5]
    project.close()
    state.requests.clear()

    project = open_project(tmp_path / "p", url, max_pages=2)  # a new process: only the store
    assert [b.rows for b in ingesting.ingest(project)] == [5, 5]
    assert [r.get("page") for r in state.requests] == ["3", "4"]
    assert all("since" not in r for r in state.requests)  # still the first listing
    assert [b.rows for b in ingesting.ingest(project)] == [3]
    assert recorded_ids(project) == list(range(23))

    # Idle: the listing ends, the next one runs from the last change and finds nothing new.
    state.requests.clear()
    assert ingesting.ingest(project) == []
    assert state.requests[-1]["since"] == "2024-05-01T10:00:22Z"

    # New records, one at the boundary value and an old record changed: each once.
    state.records += [record(23, minute=22), record(24), record(3, minute=30)]
    new = ingesting.ingest(project)
    assert sum(b.rows for b in new) == 3
    assert ingesting.ingest(project) == [] and ingesting.ingest(project) == []
    assert sorted(recorded_ids(project)) == sorted([*range(25), 3])
    cursor = project.store.batches.get_cursor(project.name, project.source.key)
    assert cursor["high"] == "2024-05-01T10:00:30Z"
    project.close()


@pytest.mark.parametrize("failure", ["500", "drop"])
def test_a_page_that_fails_is_tried_again_and_nothing_is_lost_or_doubled(
    api: tuple[Api, str], tmp_path: Path, failure: str
) -> None:
    state, url = api
    state.failures = {3: [failure, failure]}  # twice, then it answers
    project = open_project(tmp_path / "p", url, retries=3)
    assert [b.rows for b in ingesting.ingest(project)] == [5, 5, 5, 5, 3]
    assert [r.get("failed") for r in state.requests if r.get("page") == "3"] == [
        failure, failure, None]
    assert recorded_ids(project) == list(range(23))
    project.close()


def test_a_page_that_keeps_failing_stops_the_poll_and_the_next_tick_goes_on(
    api: tuple[Api, str], tmp_path: Path
) -> None:
    state, url = api
    state.failures = {3: ["500", "drop", "500", "500"]}
    project = open_project(tmp_path / "p", url, retries=1)
    with pytest.raises(errors.TemporaryError, match=r"failed 2 times \(last: RemoteProtocol"):
        ingesting.ingest(project)
    assert recorded_ids(project) == list(range(10))  # pages 1 and 2, recorded
    with pytest.raises(errors.TemporaryError, match=r"last: HTTP 500"):
        ingesting.ingest(project)  # page 3 fails twice more
    assert [b.rows for b in ingesting.ingest(project)] == [5, 5, 3]
    assert recorded_ids(project) == list(range(23))
    project.close()


def test_a_crash_after_recording_before_the_cursor_records_nothing_twice(
    api: tuple[Api, str], tmp_path: Path
) -> None:
    """The cursor is stored after the batch: a crash between them re-reads the page, whose
    records are found recorded by their names and dropped."""
    _, url = api
    project = open_project(tmp_path / "p", url)
    source = project.source
    first = next(iter(source.poll(None)))
    ingesting.record_batch(project, first)  # recorded; the cursor never stored
    assert [b.rows for b in ingesting.ingest(project)] == [5, 5, 5, 3]
    assert recorded_ids(project) == list(range(23))
    project.close()


@pytest.mark.parametrize(
    ("mode", "page", "format"),
    [("link", "{next: link}", "json"), ("body", "{next: next}", "json"),
     ("csv", "{next: link}", "csv")],
)
def test_next_links_in_the_header_or_the_body_and_csv_pages(
    api: tuple[Api, str], tmp_path: Path, mode: str, page: str, format: str
) -> None:
    state, url = api
    state.mode = mode
    folder = tmp_path / "p"
    project = open_project(folder, url, page=page, format=format)
    if mode == "body":
        specs.override(folder / "driftloop.yaml", add={"source": {"records": "data"}})
        project.close()
        project = projects.open_project(folder / "driftloop.yaml")
    assert [b.rows for b in ingesting.ingest(project)] == [5, 5, 5, 5, 3]
    assert len(state.requests) == 5  # the last page has no next link: the listing ends there
    state.records.append(record(40))
    assert [b.rows for b in ingesting.ingest(project)] == [1]
    assert recorded_ids(project) == [*range(23), 40]
    project.close()


def test_errors_name_the_spec_line_or_the_request(api: tuple[Api, str], tmp_path: Path) -> None:
    _, url = api
    spec = SPEC.format(url=url, page="{param: page, next: link}", format="json", retries=0,
                       max_pages=1)
    with pytest.raises(errors.ConfigError, match=r"<spec>:8: source.page: .* exactly one of"):
        config.parse_spec(spec)
    with pytest.raises(errors.ConfigError, match=r"<spec>:5: source.url: String should match"):
        config.parse_spec(specs.edited(spec, {url: "127.0.0.1/rows"}))
    project = open_project(tmp_path / "p", url.replace("/rows", "/nowhere"), retries=0)
    with pytest.raises(errors.PermanentError, match=r"/nowhere\?page=1 answered HTTP 404"):
        ingesting.ingest(project)
    project.close()
    source = rest.RestSource(url + "?x=1", cursor=("since", "missing"), retries=0)
    with pytest.raises(errors.PermanentError, match="no field 'missing'"):
        list(source.poll(None))


def test_headers_come_from_the_environment_and_stay_out_of_repr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = config.HttpSourceSpec(url="https://user:pw@api.test/rows",
                                 headers={"Authorization": "Bearer ${API_TOKEN}"})
    monkeypatch.setenv("API_TOKEN", "s3cret")
    source = base.build_source(spec)
    assert isinstance(source, rest.RestSource)
    assert source.headers == {"Authorization": "Bearer s3cret"}
    assert "s3cret" not in repr(source) and "pw" not in repr(source) + source.key
    monkeypatch.delenv("API_TOKEN")
    with pytest.raises(errors.ConfigError, match="API_TOKEN is not set"):
        base.build_source(spec)


def test_a_secret_in_the_query_stays_out_of_batches_and_the_store(
    api: tuple[Api, str], tmp_path: Path
) -> None:
    state, url = api
    project = open_project(tmp_path / "p", url + "?api_key=PLANTED-rest-3c9d", max_pages=1)
    batches = ingesting.ingest(project)
    # sent with every request (httpx would have dropped the URL's query for the page number)
    assert batches and all(q["api_key"] == "PLANTED-rest-3c9d" for q in state.requests)
    assert all("api_key=***" in batch.source_uri for batch in batches)
    assert "PLANTED" not in project.source.key
    project.close()
    stored = b"".join(path.read_bytes() for path in (tmp_path / "p").glob("driftloop.db*"))
    assert b"PLANTED-rest-3c9d" not in stored
