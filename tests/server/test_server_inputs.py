"""Request inputs the server must refuse with a 4xx and a message, never a 5xx: integers beyond
what the database holds (SQLite and the live PostgreSQL) and feedback bodies of a guessed
shape. The app is built in process and served by uvicorn on 127.0.0.1 (`uvicorn_thread`), over a
scaffolded Elec2 project with no model; none of these requests needs one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from uvicorn_thread import serving as serve_in_thread

from driftloop.cli import project_commands as scaffold
from driftloop.controller import project as projects
from driftloop.core import clock as clocks
from driftloop.core import config
from driftloop.data.sources import base as sources
from driftloop.server import app as server_app
from driftloop.server import auth
from driftloop.store import artifacts, metadata, serving
from driftloop.ui import dashboard

HUGE = [2**31, 2**63, 10**30]
"""Beyond a PostgreSQL integer, beyond SQLite's 64-bit integer, beyond both."""


def open_app(folder: Path, url: str) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    scaffold.init(folder, weeks=3)
    spec = config.load_spec(folder / "driftloop.yaml")
    store = metadata.MetadataStore.open(url)
    project = projects.Project(
        spec=spec, base_dir=folder, store=store,
        artifacts=artifacts.ArtifactStore(str(folder / "artifacts")),
        source=sources.build_source(spec.source, folder), clock=clocks.SystemClock())
    store.pipelines.ensure(spec.name, spec.model_dump(mode="json"))
    tokens = serving.ServingStore(store)
    secrets = {role: auth.create_token(tokens, role, [role], actor="test")[1]
               for role in ("admin", "feedback", "view", "predict")}
    app = server_app.create_app(project, routers=[dashboard.router(store)])
    with serve_in_thread(app) as url, httpx.Client(base_url=url) as client:
        yield client, secrets
    store.close()


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    yield from open_app(tmp_path / "elec", f"sqlite:///{tmp_path / 'state.db'}")


@pytest.fixture
def pg_app(tmp_path: Path, pg_url: str) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    yield from open_app(tmp_path / "elec", pg_url)


def huge_integers_are_refused(client: httpx.Client, secrets: dict[str, str]) -> None:
    admin = {"Authorization": f"Bearer {secrets['admin']}"}
    view = {"Authorization": f"Bearer {secrets['view']}"}
    for number in HUGE:
        answer = client.post("/v1/admin/promote", json={"version": number}, headers=admin)
        assert answer.status_code == 422, (number, answer.text)
        assert "version" in answer.json()["detail"] and "2147483647" in answer.json()["detail"]
        page = client.get(f"/ui/pipelines/electricity/versions/{number}", headers=view)
        assert page.status_code == 422, (number, page.text)
        assert "2147483647" in page.text
    # the largest version the request allows reaches the store: not found, not a crash
    answer = client.post("/v1/admin/promote", json={"version": 2**31 - 1}, headers=admin)
    assert answer.status_code == 404, answer.text
    page = client.get(f"/ui/pipelines/electricity/versions/{2**31 - 1}", headers=view)
    assert page.status_code == 404, page.text


def test_huge_integers_get_422_on_sqlite(sqlite_app: tuple[httpx.Client, dict[str, str]]) -> None:
    huge_integers_are_refused(*sqlite_app)


@pytest.mark.postgres
def test_huge_integers_get_422_on_postgres(pg_app: tuple[httpx.Client, dict[str, str]]) -> None:
    huge_integers_are_refused(*pg_app)


def test_a_guessed_feedback_shape_gets_the_expected_shape_back(
    sqlite_app: tuple[httpx.Client, dict[str, str]],
) -> None:
    client, secrets = sqlite_app
    labeller = {"Authorization": f"Bearer {secrets['feedback']}"}
    for guess, where in (
        ({"prediction_id": "0b5c3c1e", "label": 1}, "labels"),
        ([{"prediction_id": "0b5c3c1e", "label": 1}], "the body"),
        ({"labels": {"prediction_id": "0b5c3c1e", "label": 1}}, "labels"),
        ({"labels": [{"id": "0b5c3c1e", "label": 1}]}, "labels.0.prediction_id"),
    ):
        answer = client.post("/v1/feedback", json=guess, headers=labeller)
        assert answer.status_code == 422, (guess, answer.text)
        body = answer.json()
        assert body["error"] == "RequestValidationError"
        assert '{"labels": [{"prediction_id": ' in body["detail"], body["detail"]
        assert body["context"]["problems"][0]["loc"][0] == "body", body
        assert f"the first, at `{where}`" in body["detail"], body["detail"]


def test_predict_bodies_the_document_calls_invalid_are_refused(
    sqlite_app: tuple[httpx.Client, dict[str, str]],
) -> None:
    client, secrets = sqlite_app
    predictor = {"Authorization": f"Bearer {secrets['predict']}"}
    for body in ({}, {"record": None}, {"records": [{"period": 0.5}], "record": None},
                 {"records": None, "record": {"period": 0.5}}):
        answer = client.post("/v1/predict", json=body, headers=predictor)
        assert answer.status_code == 422, (body, answer.text)
        assert "give exactly one of `records`" in answer.text
        assert '{"record": {"period": 0.5' in answer.json()["detail"]  # the expected shape
    schema = client.get("/openapi.json").json()["components"]["schemas"]["PredictRequest"]
    assert schema["oneOf"] == [{"required": ["records"]}, {"required": ["record"]}]
    assert schema["properties"]["record"] == {"type": "object", "additionalProperties": True,
                                              "title": "Record"}
