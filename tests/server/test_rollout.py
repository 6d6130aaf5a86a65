"""Rollouts against a real `driftloop serve` on 127.0.0.1: shadow answers never reach a client
but are logged; canary traffic share and stickiness; a bad challenger is rolled back and a good
one promoted by `controller.rollout.evaluate_rollout` after feedback; hot swap under load.

The server helpers come from tests/server/test_server.py. Each strategy gets its own server: the
server reads the rollout strategy from the spec when it starts."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier
from test_server import FEATURES, POLL, Server, bearer, trained_folder

from driftloop.controller import project as projects
from driftloop.controller import rollout
from driftloop.server import auth
from driftloop.store import serving, serving_stats

CRITERIA = "  min_requests: 200\n  min_labels: 150\n  max_p99_ms: 2000\n  max_metric_drop: 0.02\n"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_folder(tmp_path_factory, "rollout")


@pytest.fixture(scope="module")
def secret(folder: Path) -> str:
    opened = projects.open_project(folder / "driftloop.yaml")
    try:
        return auth.create_token(serving.ServingStore(opened.store), "all",
                                 ["predict", "feedback", "admin"], actor="test")[1]
    finally:
        opened.close()


@pytest.fixture(scope="module")
def data(folder: Path) -> pd.DataFrame:
    frame = pd.concat(pd.read_csv(path) for path in sorted((folder / "data").glob("*.csv"))
                      if "fault" not in path.name)
    return frame.dropna(subset=["class"]).reset_index(drop=True)


def with_strategy(folder: Path, strategy: str, share: float = 0.3) -> projects.Project:
    """Rewrite the spec's rollout section and open the project on it."""
    spec = folder / "driftloop.yaml"
    text = spec.read_text().split("\nrollout:")[0].rstrip("\n")
    spec.write_text(f"{text}\nrollout:\n  strategy: {strategy}\n  share: {share}\n{CRITERIA}")
    return projects.open_project(spec)


@pytest.fixture
def served(folder: Path, secret: str, request: pytest.FixtureRequest,
           ) -> Iterator[tuple[projects.Project, Server]]:
    project = with_strategy(folder, request.param)
    server = Server(folder / "driftloop.yaml")
    try:
        yield project, server
    finally:
        assert server.stop()
        project.close()


def register(project: projects.Project, data: pd.DataFrame, *, flip: bool) -> int:
    """A full-depth tree on the rows the tests send: near-perfect on them, or (flip) near
    always wrong."""
    y = 1 - data["class"].astype(int) if flip else data["class"].astype(int)
    tree = DecisionTreeClassifier(random_state=0).fit(data[FEATURES], y)
    artifact = project.artifacts.put_model(tree)
    return project.store.versions.add(
        project.name, run_id=None, artifact_uri=artifact.uri, sha256=artifact.sha256,
        metrics={}).version


def predict_all(url: str, secret: str, items: list[tuple[dict[str, Any], str | None]],
                threads: int = 8) -> list[dict[str, Any]]:
    """One single-record request per item, `threads` at a time; the first prediction of each."""
    out: list[Any] = [None] * len(items)

    def work(start: int) -> None:
        with httpx.Client(base_url=url, headers=bearer(secret), timeout=30) as client:
            for index in range(start, len(items), threads):
                record, key = items[index]
                body: dict[str, Any] = {"record": record}
                if key is not None:
                    body["key"] = key
                answer = client.post("/v1/predict", json=body)
                assert answer.status_code == 200, answer.text
                out[index] = answer.json()["predictions"][0]

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return out


def records(data: pd.DataFrame, n: int, seed: int = 0) -> tuple[list[dict[str, Any]], list[int]]:
    rows = data.sample(n, random_state=seed, replace=n > len(data))
    return rows[FEATURES].to_dict("records"), rows["class"].astype(int).tolist()


def label(url: str, secret: str, answers: list[dict[str, Any]], truth: list[int]) -> None:
    labels = [{"prediction_id": a["id"], "label": y} for a, y in zip(answers, truth, strict=True)]
    with httpx.Client(base_url=url, headers=bearer(secret), timeout=60) as client:
        done = client.post("/v1/feedback", json={"labels": labels})
    assert done.status_code == 200 and done.json()["stored"] == len(labels), done.text


def wait_serving(url: str, alias: str, version: int | None) -> None:
    deadline = time.monotonic() + POLL + 5
    while time.monotonic() < deadline:
        if httpx.get(url + "/readyz").json()["serving"].get(alias) == version:
            return
        time.sleep(0.05)
    raise AssertionError(f"{alias} did not come to serve {version}")


@pytest.mark.parametrize("served", ["shadow"], indirect=True)
def test_shadow_never_changes_a_response_is_logged_and_a_bad_one_rolls_back(
    served: tuple[projects.Project, Server], secret: str, data: pd.DataFrame,
) -> None:
    project, server = served
    store, name = project.store, project.name
    shown, truth = records(data, 300, seed=1)
    items = [(r, f"k{i}") for i, r in enumerate(shown)]
    before = predict_all(server.url, secret, items)
    bad = register(project, data, flip=True)
    assert rollout.start_rollout(project, bad, "test") is not None
    assert store.aliases.get(name, "shadow") == bad and store.aliases.get(name, "champion") == 1
    assert rollout.start_rollout(project, bad, "test") is None  # already under test
    wait_serving(server.url, "shadow", bad)
    after = predict_all(server.url, secret, items)
    fields = ("prediction", "probabilities", "version", "alias")
    assert [[a[f] for f in fields] for a in after] == [[b[f] for f in fields] for b in before]
    assert {a["alias"] for a in after} == {"champion"}

    serving_store = serving.ServingStore(store)
    deadline = time.monotonic() + 10
    while len(serving_store.list_predictions(name, alias="shadow")) < len(after):
        assert time.monotonic() < deadline, "shadow predictions were not logged"
        time.sleep(0.1)
    shadowed = {p.id: p for p in serving_store.list_predictions(name, alias="shadow")}
    assert set(shadowed) == {rollout.shadow_id(a["id"]) for a in after}
    flipped = [shadowed[rollout.shadow_id(a["id"])].prediction for a in after]
    assert np.mean(np.array(flipped) != np.array(truth)) > 0.9  # the shadow is wrong...
    assert np.mean(np.array([a["prediction"] for a in after]) == np.array(truth)) > 0.55

    label(server.url, secret, after, truth)  # ...and its labels come through the champion's
    time.sleep(POLL * 3)  # the stats reach the store on the next poll
    decision = rollout.evaluate_rollout(project, serving_store, "controller")
    assert decision is not None and decision.kind == "rollout" and decision.fired
    evidence = decision.evidence
    assert evidence["outcome"] == "rollback", evidence["reason"]
    assert evidence["metric"]["paired"] and evidence["metric"]["labels"] == len(after)
    assert evidence["requests"]["shadow"]["requests"] == len(after)
    assert evidence["metric"]["ci_high"] < -0.02
    assert store.aliases.get(name, "shadow") is None and store.aliases.get(name, "champion") == 1
    assert store.audit.list()[-1].action == "rollback"
    assert rollout.start_rollout(project, bad, "test") is None  # a rolled-back version stays out
    assert rollout.evaluate_rollout(project, serving_store, "controller") is None


@pytest.mark.parametrize("served", ["canary"], indirect=True)
def test_canary_bad_rolls_back_good_is_sticky_near_its_share_and_promoted(
    served: tuple[projects.Project, Server], secret: str, data: pd.DataFrame,
) -> None:
    project, server = served
    store, name = project.store, project.name
    serving_store = serving.ServingStore(store)

    bad = register(project, data, flip=True)
    rollout.start_rollout(project, bad, "test")
    wait_serving(server.url, "canary", bad)
    shown, truth = records(data, 1000, seed=2)
    answers = predict_all(server.url, secret, [(r, f"bad-{i}") for i, r in enumerate(shown)])
    time.sleep(POLL * 3)
    waiting = rollout.evaluate_rollout(project, serving_store, "controller")
    assert waiting is not None and not waiting.fired
    assert waiting.evidence["outcome"] == "wait" and "labels" in waiting.evidence["reason"]
    assert rollout.evaluate_rollout(project, serving_store, "controller") is None  # unchanged
    label(server.url, secret, answers, truth)
    decision = rollout.evaluate_rollout(project, serving_store, "controller")
    assert decision is not None and decision.evidence["outcome"] == "rollback"
    assert not decision.evidence["metric"]["paired"]
    assert store.aliases.get(name, "canary") is None

    good = register(project, data, flip=False)
    rollout.start_rollout(project, good, "test")
    wait_serving(server.url, "canary", good)
    shown, truth = records(data, 5000, seed=3)
    started = time.monotonic()
    answers = predict_all(server.url, secret, [(r, f"user-{i}") for i, r in enumerate(shown)],
                          threads=16)
    took = time.monotonic() - started
    share = np.mean([a["alias"] == "canary" for a in answers])
    print(f"\ncanary share {share:.4f} of 5000 requests (configured 0.3) in {took:.1f} s")
    assert abs(share - 0.3) <= 0.03
    assert {a["version"] for a in answers if a["alias"] == "canary"} == {good}
    again = predict_all(server.url, secret, [(r, f"user-{i}") for i, r in
                                             enumerate(shown[:300])])
    assert [a["alias"] for a in again] == [a["alias"] for a in answers[:300]]

    label(server.url, secret, answers, truth)
    time.sleep(POLL * 3)
    decision = rollout.evaluate_rollout(project, serving_store, "controller")
    assert decision is not None, "no decision"
    evidence = decision.evidence
    assert evidence["outcome"] == "promote", evidence["reason"]
    assert evidence["requests"]["canary"]["requests"] == sum(
        a["alias"] == "canary" for a in answers + again)
    assert evidence["requests"]["canary"]["errors"] == 0
    assert evidence["metric"]["ci_low"] > 0
    assert store.aliases.get(name, "champion") == good and store.aliases.get(name, "canary") is None
    wait_serving(server.url, "champion", good)
    store.aliases.set(name, "champion", 1, actor="test", reason="restore for the next tests")


@pytest.mark.parametrize("served", ["ab"], indirect=True)
def test_ab_splits_sticky_traffic_to_the_challenger_and_promotes_it(
    served: tuple[projects.Project, Server], secret: str, data: pd.DataFrame,
) -> None:
    project, server = served
    store, name = project.store, project.name
    good = register(project, data, flip=False)
    assert rollout.start_rollout(project, good, "test") is not None
    assert store.aliases.get(name, "challenger") == good
    wait_serving(server.url, "challenger", good)
    shown, truth = records(data, 2000, seed=5)
    answers = predict_all(server.url, secret, [(r, f"ab-{i}") for i, r in enumerate(shown)])
    share = np.mean([a["alias"] == "challenger" for a in answers])
    assert abs(share - 0.3) <= 0.03, share
    assert {(a["alias"], a["version"]) for a in answers} == {("champion", 1), ("challenger", good)}
    again = predict_all(server.url, secret, [(r, f"ab-{i}") for i, r in enumerate(shown[:300])])
    assert [a["alias"] for a in again] == [a["alias"] for a in answers[:300]]
    label(server.url, secret, answers, truth)
    time.sleep(POLL * 3)
    decision = rollout.evaluate_rollout(project, serving.ServingStore(store), "controller")
    assert decision is not None and decision.evidence["outcome"] == "promote", decision
    assert decision.evidence["requests"]["challenger"]["requests"] == sum(
        a["alias"] == "challenger" for a in answers + again)
    assert store.aliases.get(name, "champion") == good
    assert store.aliases.get(name, "challenger") is None
    store.aliases.set(name, "champion", 1, actor="test", reason="restore for the next tests")


@pytest.mark.parametrize(
    ("errors", "slow_ms", "reason"),
    [(12, 1.0, "error rate 12/300 exceeds 0.01"), (0, 5000.0, "p99 latency")],
)
def test_a_challenger_with_errors_or_slow_answers_is_rolled_back(
    folder: Path, data: pd.DataFrame, errors: int, slow_ms: float, reason: str,
) -> None:
    """Safety before the live metric: the serving stats alone (no labels) roll a canary back."""
    project = with_strategy(folder, "canary")
    try:
        store, name = project.store, project.name
        version = register(project, data, flip=False)
        rollout.start_rollout(project, version, "test")
        minute = serving_stats.minute_of(store.clock.now())
        fast, slow = serving_stats.bucket(1.0), serving_stats.bucket(slow_ms)
        serving_stats.ServingStats(serving.ServingStore(store)).write(name, [
            serving_stats.StatRow(minute, "test:1", "canary", version, 300, errors,
                                  {fast: 290, slow: 10}),
            serving_stats.StatRow(minute, "test:1", "champion", 1, 700, 0, {fast: 700}),
        ])
        decision = rollout.evaluate_rollout(project, serving.ServingStore(store), "controller")
        assert decision is not None and decision.fired
        evidence = decision.evidence
        assert evidence["outcome"] == "rollback" and evidence["reason"].startswith(reason)
        assert evidence["requests"]["canary"]["errors"] == errors
        assert evidence["metric"]["labels"] == 0  # decided without waiting for labels
        assert store.aliases.get(name, "canary") is None
        assert store.aliases.get(name, "champion") == 1
        assert store.audit.list()[-1].action == "rollback"
    finally:
        project.close()


@pytest.mark.slow
@pytest.mark.parametrize("served", ["replace"], indirect=True)
def test_hot_swap_at_concurrency_32_fails_no_request(
    served: tuple[projects.Project, Server], secret: str, data: pd.DataFrame,
) -> None:
    project, server = served
    store, name = project.store, project.name
    other = register(project, data, flip=False)
    shown, _ = records(data, 1000, seed=4)
    total, concurrency, swaps = 10_000, 32, 20
    latencies: list[float] = []
    failures: list[str] = []
    versions: set[int] = set()
    swapped = threading.Event()

    def work(start: int) -> None:
        """Its share of `total` requests, and more until every swap is made: a swap waits for
        the store's write lock, which the prediction log holds often under this load."""
        with httpx.Client(base_url=server.url, headers=bearer(secret), timeout=30) as client:
            for index in itertools.count(start, concurrency):
                if index >= total and swapped.is_set():
                    break
                began = time.perf_counter()
                try:
                    answer = client.post("/v1/predict", json={"record": shown[index % 1000]})
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                latencies.append(time.perf_counter() - began)
                if answer.status_code != 200:
                    failures.append(f"{answer.status_code}: {answer.text[:200]}")
                else:
                    versions.add(answer.json()["version"])

    def swap() -> None:
        for index in range(swaps):
            time.sleep(0.15)
            store.aliases.set(name, "champion", other if index % 2 == 0 else 1, actor="test",
                            reason="hot swap under load")
        swapped.set()

    started = time.monotonic()
    workers = [threading.Thread(target=work, args=(i,)) for i in range(concurrency)]
    swapper = threading.Thread(target=swap)
    for worker in workers:
        worker.start()
    swapper.start()
    for worker in workers:
        worker.join()
    swapper.join()
    took = time.monotonic() - started
    moved = sum(m.reason == "hot swap under load" for m in store.aliases.history(name, "champion"))
    p50, p99 = (float(np.quantile(latencies, q)) * 1000 for q in (0.5, 0.99))
    sent = len(latencies)
    print(f"\nhot swap: {sent} requests at concurrency {concurrency} in {took:.1f} s "
          f"({sent / took:.0f} req/s), {moved} swaps, {len(failures)} failed, versions seen "
          f"{sorted(versions)}, client p50 {p50:.1f} ms p99 {p99:.1f} ms")
    assert failures == []
    assert moved == swaps and versions == {1, other}
    store.aliases.set(name, "champion", 1, actor="test", reason="restore")
