"""The prediction server, run for real: `driftloop serve` under uvicorn in its own process on
127.0.0.1, a scaffolded Elec2 project with a champion trained by one controller tick, and httpx
as the client. Round trips, schema errors, malformed bodies, tokens and roles, metrics, admin
moves with their audit rows, durability across a restart, and hot swap under load."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import specs
from sklearn.tree import DecisionTreeClassifier

from driftloop.cli import project_commands as scaffold
from driftloop.controller import project as projects
from driftloop.controller import tick as ticking
from driftloop.server import auth
from driftloop.store import serving

POLL = 0.25
FEATURES = ["period", "nswprice", "nswdemand", "vicprice", "vicdemand", "transfer"]
RECORD = {
    "period": 0.5,
    "nswprice": 0.06,
    "nswdemand": 0.4,
    "vicprice": 0.003,
    "vicdemand": 0.42,
    "transfer": 0.41,
}
ENDPOINTS = {  # mutating endpoint -> (role it needs, a valid body)
    "/v1/predict": ("predict", {"record": RECORD}),
    "/v1/feedback": ("feedback", {"labels": [{"prediction_id": "x", "label": 1}]}),
    "/v1/admin/promote": ("admin", {"version": 1}),
    "/v1/admin/rollback": ("admin", {}),
    "/v1/admin/retrain": ("admin", {}),
    "/v1/batches": ("ingest", [RECORD]),
}


class Server:
    """`driftloop serve` (or, with `dashboard_only`, `driftloop ui`) in a subprocess; stopped
    with SIGTERM (a clean uvicorn shutdown)."""

    def __init__(self, spec: Path, *, dashboard_only: bool = False) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        command, ready = ("ui", "/healthz") if dashboard_only else ("serve", "/readyz")
        extra = "" if dashboard_only else f"poll_interval={POLL}, "
        code = (
            "from pathlib import Path; from driftloop.cli import serve; "
            f"serve.{command}(spec=Path({str(spec)!r}), host='127.0.0.1', port={self.port}, "
            f"{extra}log_level='warning')"
        )
        self.process = subprocess.Popen([sys.executable, "-c", code], cwd=spec.parent)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the server exited during startup"
            try:
                if httpx.get(self.url + ready, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError("the server did not become ready within 60 s")

    def stop(self) -> bool:
        """SIGTERM; True if the process ended cleanly (uvicorn finishes its shutdown, then
        re-raises the signal, so -SIGTERM is a clean end too)."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30) in (0, -signal.SIGTERM)


def trained_folder(factory: pytest.TempPathFactory, name: str) -> Path:
    """A scaffolded Elec2 project (small, in-process trainer) whose first tick made v1 champion."""
    folder = factory.mktemp(name) / "elec"
    scaffold.init(folder, weeks=3)
    spec = folder / "driftloop.yaml"
    specs.override(spec, replace={"trainer": {"executor": "inline", "params": {"max_iter": 10}}})
    opened = projects.open_project(spec)
    controller = ticking.Controller(opened)
    controller.tick()
    opened.store.leases.release(opened.name, controller.holder)
    assert opened.store.aliases.get(opened.name, "champion") == 1
    opened.close()
    return folder


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[projects.Project]:
    opened = projects.open_project(trained_folder(tmp_path_factory, "serve") / "driftloop.yaml")
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def secrets(project: projects.Project) -> dict[str, str]:
    store = serving.ServingStore(project.store)
    made = {}
    for name, roles in {
        "predictor": ["predict"],
        "labeller": ["feedback"],
        "operator": ["admin"],
        "all": ["predict", "feedback", "admin", "ingest"],
    }.items():
        made[name] = auth.create_token(store, name, roles, actor="test")[1]
    return made


@pytest.fixture(scope="module")
def server(project: projects.Project, secrets: dict[str, str]) -> Iterator[Server]:
    running = Server(project.base_dir / "driftloop.yaml")
    yield running
    running.stop()


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def model_of(project: projects.Project, version: int) -> Any:
    found = project.store.versions.get(project.name, version)
    return project.artifacts.get_model(found.artifact_uri, found.sha256)


def test_predict_feedback_round_trip(
    server: Server,
    project: projects.Project,
    secrets: dict[str, str],
) -> None:
    records = [RECORD, {**RECORD, "nswprice": 0.2, "period": 0.9}, {**RECORD, "nswdemand": 0.1}]
    with httpx.Client(base_url=server.url, headers=bearer(secrets["all"])) as client:
        answer = client.post("/v1/predict", json={"records": records, "key": "user-7"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["version"] == 1 and body["alias"] == "champion"
        reference = model_of(project, 1)
        expected = reference.predict_proba(pd.DataFrame(records)[FEATURES])
        for out, row in zip(body["predictions"], expected, strict=True):
            assert uuid.UUID(out["id"]).version == 7  # time-ordered (`server.prediction_ids`)
            assert [out["probabilities"]["0"], out["probabilities"]["1"]] == pytest.approx(row)
            assert out["prediction"] == int(reference.classes_[row.argmax()])
        single = client.post("/v1/predict", json={"record": RECORD}).json()["predictions"]
        assert single[0]["probabilities"] == body["predictions"][0]["probabilities"]

        ids = [out["id"] for out in body["predictions"]]
        labels = [
            {"prediction_id": i, "label": label} for i, label in zip(ids, [1, 0, 1], strict=True)
        ]
        stored = client.post("/v1/feedback", json={"labels": labels})  # at once: log flushed
        assert stored.status_code == 200 and stored.json() == {
            "stored": 3, "duplicates": [], "learned": 0}
        again = client.post("/v1/feedback", json={"labels": labels[:1]}).json()
        assert again == {"stored": 0, "duplicates": [ids[0]], "learned": 0}
        unknown = str(uuid.uuid4())
        missing = client.post(
            "/v1/feedback", json={"labels": [{"prediction_id": unknown, "label": 1}]}
        )
        assert missing.status_code == 404 and unknown in missing.json()["context"]["missing"]
        bad_label = client.post(
            "/v1/feedback", json={"labels": [{"prediction_id": ids[0], "label": "yes"}]}
        )
        assert bad_label.status_code == 422 and "target column 'class'" in bad_label.text

    joined = {
        j.prediction.id: j for j in serving.ServingStore(project.store).labelled(project.name)
    }
    assert [joined[i].label for i in ids] == [1, 0, 1]
    first = joined[ids[0]]
    assert first.prediction.key == "user-7" and first.prediction.version == 1
    assert first.prediction.features == RECORD and first.actor == "all"
    assert first.prediction.probabilities == body["predictions"][0]["probabilities"]


def test_schema_errors_name_the_record_and_the_field(
    server: Server,
    secrets: dict[str, str],
) -> None:
    with httpx.Client(base_url=server.url, headers=bearer(secrets["predictor"])) as client:
        missing = {k: v for k, v in RECORD.items() if k != "nswdemand"}
        cases = [
            ({"records": [RECORD, missing]}, 1, "nswdemand", "missing"),
            ({"records": [{**RECORD, "vicprice": "cheap"}]}, 0, "vicprice", "expected a number"),
            ({"records": [{**RECORD, "period": True}]}, 0, "period", "expected a number"),
            ({"records": [RECORD, RECORD, {**RECORD, "transfer": None}]}, 2, "transfer", "null"),
        ]
        for body, record, field, message in cases:
            answer = client.post("/v1/predict", json=body)
            assert answer.status_code == 422, answer.text
            problems = answer.json()["context"]["problems"]
            assert problems[0]["record"] == record and problems[0]["field"] == field
            assert message in problems[0]["msg"] and field in answer.json()["detail"]
        huge = (
            '{"record": {"period": 0.5, "nswprice": 1e999, "nswdemand": 0.4, '
            '"vicprice": 0.003, "vicdemand": 0.42, "transfer": 0.41}}'
        )
        answer = client.post(
            "/v1/predict", content=huge, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 422 and "not a finite number" in answer.text


def test_malformed_bodies_get_4xx_never_5xx(server: Server, secrets: dict[str, str]) -> None:
    bodies = [
        b"",
        b"{",
        b"null",
        b"[]",
        b'"text"',
        b"42",
        b'{"records": 5}',
        b'{"record": [1]}',
        b'{"records": []}',
        b'{"records": [1, 2]}',
        b'{"record": {}, "records": [{}]}',
        b'{"labels": "x"}',
        b'{"labels": [{}]}',
        b'{"version": "two"}',
        b'{"version": -1}',
        b'{"version": 1e999}',
        b'{"version": 99999}',
        b'{"alias": "everyone"}',
        b'{"unexpected": 1}',
        b"[" * 50_000 + b"]" * 50_000,
        json.dumps({"key": "k" * 10_000}).encode(),
        b"\xff\xfe\x00garbage",
    ]
    with httpx.Client(base_url=server.url, headers=bearer(secrets["all"])) as client:
        for path in ENDPOINTS:
            for body in bodies:
                if body in (b"", b"null") and path in ("/v1/admin/rollback", "/v1/admin/retrain"):
                    continue  # their body is optional
                answer = client.post(
                    path, content=body, headers={"content-type": "application/json"}
                )
                assert 400 <= answer.status_code < 500, (path, body[:40], answer.text)
        too_many = client.post("/v1/predict", json={"records": [RECORD] * 10_001})
        assert too_many.status_code == 413 and "limit is 10000" in too_many.text
    assert server.process.poll() is None


def test_every_mutating_endpoint_needs_the_right_role(
    server: Server,
    secrets: dict[str, str],
) -> None:
    with httpx.Client(base_url=server.url) as client:
        for path, (role, body) in ENDPOINTS.items():
            anonymous = client.post(path, json=body)
            assert anonymous.status_code == 401, (path, anonymous.text)
            assert anonymous.json()["error"] == "AuthError"
            assert anonymous.headers["www-authenticate"] == "Bearer"
            wrong = client.post(path, json=body, headers=bearer("dl_not-a-real-secret"))
            assert wrong.status_code == 401, path
            basic = client.post(path, json=body, headers={"Authorization": "Basic dXNlcjpwdw=="})
            assert basic.status_code == 401, path
            for name in ("predictor", "labeller", "operator"):
                if (
                    name
                    != {"predict": "predictor", "feedback": "labeller", "admin": "operator"}.get(
                        role)
                ):
                    answer = client.post(path, json=body, headers=bearer(secrets[name]))
                    assert answer.status_code == 403, (path, name, answer.text)
                    assert f"lacks the role '{role}'" in answer.json()["detail"]
                    assert answer.json()["error"] == "Forbidden"  # the keys of every error
                    assert answer.json()["context"] == {}


def test_revoked_token_is_refused_within_a_poll(
    server: Server,
    project: projects.Project,
) -> None:
    store = serving.ServingStore(project.store)
    _, secret = auth.create_token(store, "short-lived", ["predict"], actor="test")
    with httpx.Client(base_url=server.url, headers=bearer(secret)) as client:
        assert client.post("/v1/predict", json={"record": RECORD}).status_code == 200
        store.revoke_token("short-lived", actor="test")
        time.sleep(POLL * 3)
        assert client.post("/v1/predict", json={"record": RECORD}).status_code == 401


def test_health_docs_and_metrics(server: Server, secrets: dict[str, str]) -> None:
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz").json()
        assert ready["ready"] and ready["serving"] == {"champion": 1}
        assert client.get("/docs").status_code == 200
        assert "/v1/predict" in client.get("/openapi.json").json()["paths"]
        client.post("/v1/predict", json={"record": RECORD}, headers=bearer(secrets["predictor"]))
        client.post("/v1/predict", json={"record": RECORD})
        text = client.get("/metrics").text
    for line in (
        'driftloop_requests_total{endpoint="/v1/predict",method="POST",status="200"}',
        'driftloop_requests_total{endpoint="/v1/predict",method="POST",status="401"}',
        'driftloop_request_duration_seconds_bucket{endpoint="/v1/predict",le="0.005"}',
        'driftloop_errors_total{endpoint="/v1/predict",kind="401"}',
        'driftloop_model_version{alias="champion",pipeline="electricity"} 1.0',
        'driftloop_predictions_total{alias="champion",pipeline="electricity"}',
        'driftloop_feedback_total{pipeline="electricity"}',
        "driftloop_prediction_log_written_total",
        "# TYPE driftloop_live_metric gauge",  # set once the controller has scored live data
    ):
        assert line in text, line


def second_version(project: projects.Project) -> int:
    """Register a different model (a shallow decision tree) as a new version."""
    frame = pd.concat(
        pd.read_csv(path)
        for path in sorted((project.base_dir / "data").glob("*.csv"))
        if "fault" not in path.name
    )
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(frame[FEATURES], frame["class"])
    artifact = project.artifacts.put_model(tree)
    return project.store.versions.add(
        project.name, run_id=None, artifact_uri=artifact.uri, sha256=artifact.sha256, metrics={}
    ).version


def test_admin_endpoints_move_aliases_and_audit_with_the_token_name(
    server: Server,
    project: projects.Project,
    secrets: dict[str, str],
) -> None:
    store, name = project.store, project.name
    version = second_version(project)
    with httpx.Client(base_url=server.url, headers=bearer(secrets["operator"])) as admin:
        moved = admin.post("/v1/admin/promote", json={"version": version, "reason": "try"})
        assert moved.status_code == 200 and moved.json()["serving"] == {"champion": version}
        back = admin.post("/v1/admin/rollback")
        assert back.status_code == 200 and back.json()["version"] == 1
        assert (moved.json()["action"], back.json()["action"]) == ("promote", "rollback")
        missing = admin.post("/v1/admin/promote", json={"version": 999})
        assert missing.status_code == 404 and "no such version" in missing.json()["detail"]
        asked = admin.post("/v1/admin/retrain", json={"reason": "labels look off"})
        assert asked.status_code == 200
    assert store.aliases.get(name, "champion") == 1
    moves = [(m.actor, m.version) for m in store.aliases.history(name, "champion")][-2:]
    assert moves == [("operator", version), ("operator", 1)]
    actions = [(e.actor, e.action) for e in store.audit.list() if e.actor == "operator"]
    assert actions == [
        ("operator", "promote"),
        ("operator", "rollback"),
        ("operator", "retrain.request"),
    ]
    request = store.decisions.get(asked.json()["decision"])
    assert request.kind == "request" and request.fired
    assert request.evidence == {"reason": "labels look off", "actor": "operator"}


def test_hot_swap_under_load_fails_no_request(
    server: Server,
    project: projects.Project,
    secrets: dict[str, str],
) -> None:
    store, name = project.store, project.name
    new = second_version(project)
    seen: list[tuple[float, int, int]] = []  # (time, status, version)
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=server.url, headers=bearer(secrets["predictor"])) as client:
            while not stop.is_set():
                answer = client.post("/v1/predict", json={"record": RECORD})
                version = answer.json()["version"] if answer.status_code == 200 else -1
                seen.append((time.monotonic(), answer.status_code, version))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    switch_times = []
    try:
        time.sleep(0.3)
        for target in (new, 1, new, 1):
            moved_at = time.monotonic()
            store.aliases.set(name, "champion", target, actor="test", reason="hot swap test")
            written = time.monotonic() - moved_at  # waiting for the write lock counts too
            while not any(t > moved_at and v == target for t, _, v in seen[-8:]):
                assert time.monotonic() - moved_at < POLL + 2.0, (
                    f"the swap took too long (writing the move took {written:.2f} s of it)")
                time.sleep(0.01)
            switch_times.append(time.monotonic() - moved_at)
            time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    statuses = {status for _, status, _ in seen}
    assert statuses == {200}, f"failed requests during swaps: {statuses}"
    assert {version for _, _, version in seen} == {1, new}
    assert len(seen) > 100
    assert max(switch_times) < POLL + 1.0
    tree = model_of(project, new)
    with httpx.Client(base_url=server.url, headers=bearer(secrets["predictor"])) as client:
        store.aliases.set(name, "champion", new, actor="test", reason="check the tree answers")
        time.sleep(POLL * 4)
        answer = client.post("/v1/predict", json={"record": RECORD}).json()["predictions"][0]
        store.aliases.set(name, "champion", 1, actor="test", reason="back")
    expected = tree.predict_proba(pd.DataFrame([RECORD])[FEATURES])[0]
    assert answer["version"] == new
    assert np.allclose([answer["probabilities"]["0"], answer["probabilities"]["1"]], expected)


def test_predictions_survive_a_restart(
    project: projects.Project,
    secrets: dict[str, str],
    server: Server,
) -> None:
    store = serving.ServingStore(project.store)
    first = Server(project.base_dir / "driftloop.yaml")
    before = store.count_predictions(project.name)
    with httpx.Client(base_url=first.url, headers=bearer(secrets["all"])) as client:
        ids = [
            client.post("/v1/predict", json={"record": RECORD}).json()["predictions"][0]["id"]
            for _ in range(25)
        ]
    assert first.stop()  # clean shutdown: the queue is flushed, nothing lost
    assert store.count_predictions(project.name) == before + 25
    assert {p.id for p in store.list_predictions(project.name, limit=25)} == set(ids)
    second = Server(project.base_dir / "driftloop.yaml")
    try:
        with httpx.Client(base_url=second.url, headers=bearer(secrets["all"])) as client:
            answer = client.post(
                "/v1/feedback", json={"labels": [{"prediction_id": i, "label": 1} for i in ids]}
            )
            assert answer.json() == {"stored": 25, "duplicates": [], "learned": 0}
    finally:
        assert second.stop()


def test_serve_binds_loopback_by_default() -> None:
    import inspect

    from driftloop.cli import serve

    default = inspect.signature(serve.serve).parameters["host"].default
    assert getattr(default, "default", default) == "127.0.0.1"


def test_labels_sent_to_the_server_change_the_live_metric(
    server: Server,
    project: projects.Project,
    secrets: dict[str, str],
) -> None:
    records = [{**RECORD, "nswprice": 0.01 * i, "period": i / 40} for i in range(40)]
    with httpx.Client(base_url=server.url, headers=bearer(secrets["all"])) as client:
        answers = client.post("/v1/predict", json={"records": records}).json()["predictions"]
        wrong = [{"prediction_id": a["id"], "label": 1 - int(a["prediction"])} for a in answers]
        assert client.post("/v1/feedback", json={"labels": wrong}).status_code == 200
    controller = ticking.Controller(project)
    before = controller.evaluations.refresh()[-1:] if controller.evaluations.refresh() else []
    result = controller.tick()
    project.store.leases.release(project.name, controller.holder)
    late = [e for e in result.evaluations if e.batch_id is None]
    assert sum(e.rows for e in late) >= 40 and late[-1].version == 1
    assert late[-1].value is not None and late[-1].value < 0.2  # every label says it was wrong
    assert before != late
    again = ticking.Controller(project)
    assert not [e for e in again.tick().evaluations if e.batch_id is None]  # read once
    project.store.leases.release(project.name, again.holder)
