"""One writer of an online pipeline's registry at a time, chosen by the lease: a real server
(`driftloop serve` on 127.0.0.1) learns and checkpoints feedback labels only while it holds the
pipeline's lease; while an online controller holds it, the server writes nothing and the
controller's tick learns those labels, once. Each snapshot records the newest label it learned,
so whoever writes next continues from it without losing or repeating a label."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pandas as pd
import pytest
from test_online_server import ONLINE, fresh_rows
from test_server import FEATURES, POLL, Server, bearer

from driftloop.cli import project_commands as scaffold
from driftloop.controller import online_session, online_tick
from driftloop.controller import project as projects
from driftloop.server import auth
from driftloop.store import serving
from driftloop.train import online as learners


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[projects.Project]:
    """A scaffolded Elec2 project with an online learner; one tick learned 3 weeks of data."""
    folder = tmp_path_factory.mktemp("writer") / "elec"
    scaffold.init(folder, weeks=3)
    spec = folder / "driftloop.yaml"
    spec.write_text(spec.read_text() + ONLINE)
    opened = projects.open_project(spec)
    first = online_tick.OnlineController(opened)
    first.tick()
    first.release()
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
    assert running.stop()


def records(rows: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{f: row[f] for f in FEATURES} for row in rows]


def predict_and_label(client: httpx.Client, rows: list[dict[str, float]]) -> dict[str, Any]:
    """Predict `rows` with the champion, send their labels; the feedback answer."""
    served = client.post("/v1/predict", json={"records": records(rows)})
    assert served.status_code == 200, served.text
    labels = [{"prediction_id": p["id"], "label": int(row["class"])}
              for p, row in zip(served.json()["predictions"], rows, strict=True)]
    answer = client.post("/v1/feedback", json={"labels": labels})
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def learned_from(project: projects.Project, version: int, rows: list[dict[str, float]]) -> Any:
    """The stored snapshot `version` after learning `rows` (what a writer should hold)."""
    found = project.store.versions.get(project.name, version)
    model = project.artifacts.get_model(found.artifact_uri, found.sha256).snapshot()
    model.learn_many(learners.records_of(pd.DataFrame(rows), FEATURES),
                     [int(row["class"]) for row in rows])
    return model


def wait_for_champion(client: httpx.Client, number: int) -> None:
    deadline = time.monotonic() + 30
    while client.get("/readyz").json()["serving"]["champion"] != number:
        assert time.monotonic() < deadline, f"the server never swapped to v{number}"
        time.sleep(POLL)


def test_the_server_writes_nothing_while_a_controller_holds_the_lease(
    server: Server, project: projects.Project, secret: str
) -> None:
    store, name = project.store, project.name
    controller = online_tick.OnlineController(project)
    assert store.leases.acquire(name, controller.holder, project.spec.lease_timeout)
    session = controller.session()
    assert session is not None
    learned_before = session.model.n_learned_
    champion = store.aliases.get(name, "champion")
    assert champion is not None
    versions = len(store.versions.list(name))
    moves = len(store.aliases.history(name, "champion"))
    cursor = store.batches.get_cursor(name, online_session.FEEDBACK_CURSOR)
    rows = fresh_rows(3, 50)
    with httpx.Client(base_url=server.url, headers=bearer(secret), timeout=30) as client:
        answer = predict_and_label(client, rows)
        assert answer["stored"] == 50 and answer["learned"] == 0
        # Not the server's turn: no version, no alias move, the labels left for the holder.
        assert len(store.versions.list(name)) == versions
        assert len(store.aliases.history(name, "champion")) == moves
        assert store.batches.get_cursor(name, online_session.FEEDBACK_CURSOR) == cursor
        assert store.leases.get(name).holder == controller.holder  # type: ignore[union-attr]

        result = controller.tick()
        assert result.acted and result.skipped is None
        assert session.model.n_learned_ == learned_before + 50  # each label once
        last_label = serving.ServingStore(store).labelled(name, alias="champion")[-1]
        cursor = store.batches.get_cursor(name, online_session.FEEDBACK_CURSOR)
        assert cursor == {"after": last_label.feedback_id}
        # 50 events: the controller's snapshot, moved to champion by the controller.
        snapshot = store.versions.get(name, champion + 1)
        assert store.aliases.get(name, "champion") == champion + 1
        assert store.aliases.history(name, "champion")[-1].actor == controller.holder
        assert snapshot.metrics["feedback_upto"] == last_label.feedback_id
        assert snapshot.metrics["events_learned"] == learned_before + 50
        again = controller.tick()
        assert session.model.n_learned_ == learned_before + 50 and not again.acted
        controller.release()

        # The server follows the controller's snapshot; what it learned is those 50 labels,
        # joined to their logged features, on the champion the server served them with.
        wait_for_champion(client, champion + 1)
        expected = learned_from(project, champion, rows)
        probe = records(fresh_rows(5, 40))
        now = client.post("/v1/predict", json={"records": probe}).json()["predictions"]
        assert [p["prediction"] for p in now] == expected.predict_many(probe)

        # The lease is free again: the server learns the next labels itself (and only those).
        more = fresh_rows(4, 10)
        assert predict_and_label(client, more)["learned"] == 10
        assert len(store.versions.list(name)) == versions + 1  # below the cadence
        lease = store.leases.get(name)
        assert lease is not None and lease.holder == ""  # given back after the call
        expected.learn_many(learners.records_of(pd.DataFrame(more), FEATURES),
                            [int(row["class"]) for row in more])
        now = client.post("/v1/predict", json={"records": probe}).json()["predictions"]
        assert [p["prediction"] for p in now] == expected.predict_many(probe)


def test_without_a_controller_the_server_learns_and_checkpoints(
    server: Server, project: projects.Project, secret: str
) -> None:
    store, name = project.store, project.name
    champion = store.aliases.get(name, "champion")
    assert champion is not None
    before = store.versions.get(name, champion)
    rows = fresh_rows(7, 40)  # with the 10 the server learned before: the cadence of 50
    with httpx.Client(base_url=server.url, headers=bearer(secret), timeout=30) as client:
        assert predict_and_label(client, rows)["learned"] == 40
    after = store.aliases.get(name, "champion")
    assert after == champion + 1
    moved = store.aliases.history(name, "champion")[-1]
    assert moved.actor == "server:online"
    snapshot = store.versions.get(name, after)
    assert snapshot.metrics["events_learned"] == before.metrics["events_learned"] + 50
    last_label = serving.ServingStore(store).labelled(name, alias="champion")[-1]
    assert snapshot.metrics["feedback_upto"] == last_label.feedback_id
    assert store.leases.get(name).holder == ""  # type: ignore[union-attr]

    # A controller that ticks now continues from the server's snapshot: nothing to relearn.
    controller = online_tick.OnlineController(project)
    try:
        result = controller.tick()
    finally:
        controller.release()
    session = controller.session()
    assert session is not None and session.version is not None
    assert session.version.version == after and not result.acted
    assert session.model.n_learned_ == snapshot.metrics["events_learned"]


def test_a_controller_that_missed_the_servers_snapshot_continues_from_it(
    server: Server, project: projects.Project, secret: str
) -> None:
    """A long-lived controller whose own session fell behind another writer's snapshot
    attaches to that snapshot and learns again only what came after it."""
    store, name = project.store, project.name
    controller = online_tick.OnlineController(project)
    try:
        controller.tick()
    finally:
        controller.release()
    session = controller.session()
    assert session is not None and session.version is not None
    start = session.version.version
    with httpx.Client(base_url=server.url, headers=bearer(secret), timeout=30) as client:
        assert predict_and_label(client, fresh_rows(8, 50))["learned"] == 50
        assert store.aliases.get(name, "champion") == start + 1  # the server's snapshot
        tail = fresh_rows(9, 7)
        assert predict_and_label(client, tail)["learned"] == 7  # after it, in the server only
    try:
        result = controller.tick()
    finally:
        controller.release()
    assert result.acted
    snapshot = store.versions.get(name, start + 1)
    assert session.version.version == start + 1
    assert session.model.n_learned_ == snapshot.metrics["events_learned"] + 7
    expected = learned_from(project, start + 1, tail)
    probe = records(fresh_rows(10, 30))
    assert session.model.predict_many(probe) == expected.predict_many(probe)
