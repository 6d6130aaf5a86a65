"""The fast path of ``POST /v1/predict`` answers as the FastAPI route does: the same bodies sent
to ``/v1/predict`` (fast path) and to ``/v1/predict?explain=false`` (which the fast path hands
to the route) get the same status and the same body, apart from the fresh prediction ids: the
same predictions and probabilities with scikit-learn and with onnxruntime, and the same 4xx
with its message for malformed bodies, schema errors, bad tokens, other content types and
bodies past the limit (declared or chunked). The servers are the app built in process on a
real uvicorn (127.0.0.1), over a trained Elec2 project with an ONNX export of its champion."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from test_server import RECORD, trained_folder
from uvicorn_thread import serving as serve_in_thread

from driftloop.controller import exports
from driftloop.controller import project as projects
from driftloop.server import app as server_app
from driftloop.server import auth, fast_predict
from driftloop.store import serving

pytest.importorskip("skl2onnx", reason="needs the onnx extra (skl2onnx, onnxruntime)")
# The server silences this warning when it starts (`scoring.prepare_scoring_thread`); pytest
# restores the warning filters after each test, while these servers run for the whole module.
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")

LIMIT = 4096
"""The servers' body limit here (small, so a body past it is cheap to send)."""
RECORDS = 3
"""The servers' limit of records per request here."""
GOOD: list[Any] = [
    {"record": RECORD},
    {"record": RECORD, "key": "user-7"},
    {"records": [RECORD, {**RECORD, "nswprice": 0.2, "period": 0.9},
                 {**RECORD, "nswdemand": 0.1, "extra": "ignored"}]},
    {"records": [{**RECORD, "period": 1, "transfer": 0}], "key": ""},
]
BAD: list[bytes] = [
    b"", b"{", b"null", b"[]", b'"text"', b"42", b"NaN",
    b'{"records": 5}', b'{"record": [1]}', b'{"records": []}', b'{"records": [1, 2]}',
    b'{"record": {}, "records": [{}]}', b'{"record": null}', b'{"records": null}',
    b'{"unexpected": 1}', b'{"record": {}, "unexpected": 1}',
    json.dumps({"record": RECORD, "key": "k" * 201}).encode(),
    json.dumps({"record": RECORD, "key": 7}).encode(),
    json.dumps({"record": {**RECORD, "nswprice": "cheap"}}).encode(),
    json.dumps({"records": [RECORD, {k: v for k, v in RECORD.items() if k != "period"}]}).encode(),
    json.dumps({"record": {**RECORD, "transfer": None}}).encode(),
    b'{"record": {"period": 0.5, "nswprice": 1e999}}',
    b'{"record": {"period": NaN}}',
    b"[" * 5_000 + b"]" * 5_000,
    b"\xff\xfe\x00garbage",
    "{\"record\": {\"period\": \"\u00e9\"}}".encode("utf-16"),
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[projects.Project]:
    folder = trained_folder(tmp_path_factory, "fast")
    opened = projects.open_project(folder / "driftloop.yaml")
    exports.export_onnx(opened, 1, folder / "model.onnx", actor="test", rows=500)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def secrets(project: projects.Project) -> dict[str, str]:
    store = serving.ServingStore(project.store)
    return {name: auth.create_token(store, name, roles, actor="test")[1]
            for name, roles in {"predictor": ["predict"], "labeller": ["feedback"]}.items()}


@pytest.fixture(scope="module", params=["sklearn", "onnx"])
def served(request: pytest.FixtureRequest, project: projects.Project,
           secrets: dict[str, str]) -> Iterator[tuple[str, fast_predict.FastPredict]]:
    """The app of `runtime`; its token cache holds `secrets` from the start (a token made
    later is found by the route on its first use, then cached)."""
    app = server_app.create_app(project, runtime=request.param, max_body_bytes=LIMIT,
                                max_records=RECORDS)
    with serve_in_thread(app) as url:
        assert httpx.get(url + "/readyz").json()["runtimes"] == {"champion": request.param}
        yield url, app.state.fast_predict


def both(client: httpx.Client, **request: Any) -> tuple[httpx.Response, httpx.Response]:
    """The same request to the fast path and to the route."""
    return (client.post("/v1/predict", **request),
            client.post("/v1/predict", params={"explain": "false"}, **request))


def without_ids(answer: httpx.Response) -> Any:
    body = answer.json()
    for item in body.get("predictions", []):
        assert len(item.pop("id")) == 36
    return body


def test_valid_bodies_get_the_same_predictions_from_the_fast_path(
    served: tuple[str, fast_predict.FastPredict], secrets: dict[str, str],
) -> None:
    url, fast = served
    answered, handed_on = fast.answered, fast.handed_on
    with httpx.Client(base_url=url, headers=auth_header(secrets["predictor"])) as client:
        for body in GOOD:
            quick, route = both(client, json=body)
            assert quick.status_code == route.status_code == 200, (quick.text, route.text)
            assert quick.headers["content-type"] == route.headers["content-type"]
            assert without_ids(quick) == without_ids(route)
            assert quick.json()["predictions"][0]["version"] == 1
        # chunked (no Content-Length) and without a Content-Type: still the fast path
        quick = client.post("/v1/predict", content=iter([b'{"record": ', json.dumps(
            RECORD).encode(), b"}"]))
        assert "content-length" not in quick.request.headers
        assert quick.status_code == 200 and without_ids(quick) == without_ids(
            client.post("/v1/predict", json=GOOD[0], params={"explain": "false"}))
    assert fast.answered - answered == len(GOOD) + 1
    assert fast.handed_on - handed_on == len(GOOD) + 1


def test_bad_bodies_get_the_routes_4xx_and_message(
    served: tuple[str, fast_predict.FastPredict], secrets: dict[str, str],
) -> None:
    url, fast = served
    answered = fast.answered
    json_type = {"content-type": "application/json"}
    with httpx.Client(base_url=url, headers=auth_header(secrets["predictor"])) as client:
        for body in BAD:
            quick, route = both(client, content=body, headers=json_type)
            assert 400 <= quick.status_code < 500, (body[:40], quick.text)
            assert (quick.status_code, quick.json()) == (route.status_code, route.json())
        for headers in ({"content-type": "text/plain"}, {"content-type": "application/x-json"}):
            quick, route = both(client, content=json.dumps(GOOD[0]).encode(), headers=headers)
            assert quick.status_code == 422 and quick.json() == route.json()
        quick, route = both(client, json={"records": [RECORD] * (RECORDS + 1)})
        assert quick.status_code == 413 and f"limit is {RECORDS}" in quick.json()["detail"]
        assert quick.json() == route.json()
        past = json.dumps({"records": [RECORD] * 40}).encode()
        assert len(past) > LIMIT
        for chunked in (False, True):
            quick, route = (client.post("/v1/predict", params=params, headers=json_type,
                                        content=iter([past[:1000], past[1000:]]) if chunked
                                        else past) for params in ({}, {"explain": "false"}))
            assert quick.status_code == route.status_code == 413, quick.text
            assert quick.json() == route.json() and str(LIMIT) in quick.json()["detail"]
    assert fast.answered == answered


def test_tokens_are_checked_as_on_the_route(
    served: tuple[str, fast_predict.FastPredict], secrets: dict[str, str],
) -> None:
    url, fast = served
    answered = fast.answered
    with httpx.Client(base_url=url) as client:
        for headers in ({}, auth_header("dl_not-a-real-secret"),
                        {"Authorization": "Basic dXNlcjpwdw=="}, {"Authorization": "Bearer"},
                        auth_header(secrets["labeller"])):
            quick, route = both(client, json=GOOD[0], headers=headers)
            assert quick.status_code in (401, 403), quick.text
            assert (quick.status_code, quick.json()) == (route.status_code, route.json())
            assert quick.headers.get("www-authenticate") == route.headers.get("www-authenticate")
        lower = client.post("/v1/predict", json=GOOD[0],
                            headers={"authorization": f"bearer {secrets['predictor']}"})
        assert lower.status_code == 200
    assert fast.answered == answered + 1


def test_fast_answers_are_logged_and_counted(
    served: tuple[str, fast_predict.FastPredict], project: projects.Project,
    secrets: dict[str, str],
) -> None:
    url, fast = served
    with httpx.Client(base_url=url, headers=auth_header(secrets["predictor"])) as client:
        before = fast.answered
        answer = client.post("/v1/predict", json={"records": [RECORD, RECORD], "key": "k-1"})
        assert fast.answered == before + 1
        ids = [item["id"] for item in answer.json()["predictions"]]
        labelled = client.post("/v1/feedback", json={"labels": [  # flushes the log first
            {"prediction_id": ids[0], "label": 1}]}, headers=auth_header(secrets["labeller"]))
        assert labelled.status_code == 200 and labelled.json()["stored"] == 1, labelled.text
        metrics = client.get("/metrics").text
    assert ('driftloop_requests_total{endpoint="/v1/predict",method="POST",status="200"}'
            in metrics)
    assert 'driftloop_predictions_total{alias="champion",pipeline="electricity"}' in metrics
    store = serving.ServingStore(project.store)
    logged = store.get_prediction(ids[0])
    assert logged.key == "k-1" and logged.features == RECORD and logged.version == 1
    assert logged.probabilities == answer.json()["predictions"][0]["probabilities"]


def auth_header(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
