"""An online pipeline served for real (`driftloop serve` on 127.0.0.1): feedback labels,
joined to the features logged with their prediction, update the learner that answers; its
snapshots reach the registry on the cadence; predictions keep flowing while it learns."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_server import FEATURES, Server, bearer

from driftloop.cli import project_commands as scaffold
from driftloop.controller import online_tick, tick
from driftloop.controller import project as projects
from driftloop.data import elec2
from driftloop.server import auth
from driftloop.store import serving
from driftloop.train import online as learners

ONLINE = """
online:
  learner: river.tree:HoeffdingAdaptiveTreeClassifier
  params: {seed: 1}
  checkpoint: {every_events: 50, window: 50, tolerance: 1.0}
  drift: {detector: none}
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scaffolded Elec2 project with an online learner; one tick learned 3 weeks of data."""
    folder = tmp_path_factory.mktemp("online") / "elec"
    scaffold.init(folder, weeks=3)
    spec = folder / "driftloop.yaml"
    spec.write_text(spec.read_text() + ONLINE)
    opened = projects.open_project(spec)
    controller = tick.build_controller(opened)
    assert isinstance(controller, online_tick.OnlineController)
    controller.tick()
    opened.store.leases.release(opened.name, controller.holder)
    opened.close()
    return folder


@pytest.fixture(scope="module")
def project(folder: Path) -> Iterator[projects.Project]:
    opened = projects.open_project(folder / "driftloop.yaml")
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def secret(project: projects.Project) -> str:
    return auth.create_token(serving.ServingStore(project.store), "all",
                             ["predict", "feedback"], actor="test")[1]


@pytest.fixture(scope="module")
def server(project: projects.Project, secret: str) -> Iterator[Server]:
    running = Server(project.base_dir / "driftloop.yaml")
    yield running
    running.stop()


def fresh_rows(start_week: int, count: int) -> list[dict[str, float]]:
    frame = elec2.load_elec2().iloc[start_week * 336 : start_week * 336 + count]
    return frame[[*FEATURES, "class"]].to_dict("records")  # type: ignore[return-value]


def test_the_controller_learned_the_batches_and_snapshotted_them(project: projects.Project
                                                                 ) -> None:
    versions = project.store.versions.list(project.name)
    champion = project.store.aliases.get(project.name, "champion")
    # The cadence is checked after each learned batch: one snapshot per weekly file.
    assert champion == versions[-1].version and len(versions) == 3
    assert versions[-1].metrics["online"] and versions[-1].artifact_uri.endswith(".pickle")
    assert versions[-1].metrics["events_learned"] == 3 * 336  # every accepted row, once


def test_feedback_updates_the_learner_that_answers(
    server: Server, project: projects.Project, secret: str
) -> None:
    name = project.name
    before = project.store.aliases.get(name, "champion")
    assert before is not None
    version = project.store.versions.get(name, before)
    reference = copy.deepcopy(project.artifacts.get_model(version.artifact_uri, version.sha256))
    rows = fresh_rows(3, 50)
    with httpx.Client(base_url=server.url, headers=bearer(secret), timeout=30) as client:
        answer = client.post("/v1/predict", json={
            "records": [{f: row[f] for f in FEATURES} for row in rows]})
        assert answer.status_code == 200, answer.text
        served = answer.json()["predictions"]
        assert [p["version"] for p in served] == [before] * 50
        assert [p["prediction"] for p in served] == reference.predict_many(
            [{f: row[f] for f in FEATURES} for row in rows])
        labels = [{"prediction_id": p["id"], "label": int(row["class"])}
                  for p, row in zip(served, rows, strict=True)]
        stored = client.post("/v1/feedback", json={"labels": labels})
        assert stored.status_code == 200, stored.text
        assert stored.json() == {"stored": 50, "duplicates": [], "learned": 50}
        again = client.post("/v1/feedback", json={"labels": labels[:5]}).json()
        assert again["learned"] == 0 and again["stored"] == 0  # each label is learned once

        # 50 events: a snapshot, the champion moved to it, and the server answers with it.
        after = project.store.aliases.get(name, "champion")
        assert after == before + 1
        snapshot = project.store.versions.get(name, after)
        assert snapshot.metrics["events_learned"] == 3 * 336 + 50
        assert client.get("/readyz").json()["serving"]["champion"] == after
        # What the server learned is what the snapshot learned: the same 50 events.
        reference.learn_many(
            learners.records_of(_frame(rows), FEATURES), [int(r["class"]) for r in rows])
        probe = fresh_rows(5, 40)
        records = [{f: row[f] for f in FEATURES} for row in probe]
        now = client.post("/v1/predict", json={"records": records}).json()["predictions"]
        assert [p["version"] for p in now] == [after] * 40
        assert [p["prediction"] for p in now] == reference.predict_many(records)
        proba = reference.predict_proba(_frame(probe))
        got = [p["probabilities"][c] for p in now for c in ("0", "1")]
        assert got == pytest.approx(proba.ravel().tolist())


def test_predictions_keep_flowing_while_feedback_trains(
    server: Server, secret: str
) -> None:
    rows = fresh_rows(6, 200)
    failures: list[str] = []
    stop = threading.Event()

    def predicting() -> None:
        with httpx.Client(base_url=server.url, headers=bearer(secret), timeout=30) as client:
            while not stop.is_set():
                answer = client.post("/v1/predict", json={"record": {
                    f: rows[0][f] for f in FEATURES}})
                if answer.status_code != 200:
                    failures.append(answer.text)

    threads = [threading.Thread(target=predicting) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        with httpx.Client(base_url=server.url, headers=bearer(secret), timeout=30) as client:
            for start in range(0, 200, 40):
                part = rows[start:start + 40]
                served = client.post("/v1/predict", json={"records": [
                    {f: row[f] for f in FEATURES} for row in part]}).json()["predictions"]
                learned = client.post("/v1/feedback", json={"labels": [
                    {"prediction_id": p["id"], "label": int(row["class"])}
                    for p, row in zip(served, part, strict=True)]}).json()["learned"]
                assert learned == 40
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []


def _frame(rows: list[dict[str, float]]) -> object:
    import pandas as pd

    return pd.DataFrame(rows)
