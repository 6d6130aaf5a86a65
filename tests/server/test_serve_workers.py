"""`driftloop serve --workers 2`, run for real: both worker processes answer on one port, a
promotion reaches both (hot swap), and the prediction log, the serving stats and the
Prometheus metrics count every request whichever worker answered it."""

from __future__ import annotations

import concurrent.futures
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier
from test_server import FEATURES, RECORD, trained_folder

from driftloop.controller import project as projects
from driftloop.server import auth
from driftloop.store import serving, serving_stats

pytestmark = pytest.mark.slow


def until(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def both_workers(url: str, where: Callable[[dict[str, object]], bool]) -> Callable[[], bool]:
    """A check: True once two worker processes answered /readyz with a body `where` accepts.
    Each round asks on 64 new connections, eight at a time, so both workers get some."""
    seen: set[object] = set()

    def one(_: int) -> dict[str, object]:
        answer: dict[str, object] = httpx.get(url + "/readyz", timeout=10).json()
        return answer

    def check() -> bool:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            seen.update(a["process"] for a in pool.map(one, range(64)) if where(a))
        return len(seen) == 2

    return check


def test_two_workers_answer_swap_together_and_count_every_request(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = trained_folder(tmp_path_factory, "workers")
    project = projects.open_project(folder / "driftloop.yaml")
    secret = auth.create_token(serving.ServingStore(project.store), "all",
                               ["predict", "admin"], actor="test")[1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("driftloop")), "serve", "--workers", "2", "--port",
         str(port), "--poll-interval", "0.2", "--log-level", "warning"], cwd=folder)
    try:
        def ready() -> bool:
            assert server.poll() is None, "the server exited"
            try:
                return httpx.get(url + "/readyz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        until(ready, "the server to be ready")
        until(both_workers(url, lambda _: True), "answers from both workers")

        headers = {"Authorization": f"Bearer {secret}"}

        def predict(_: int) -> int:
            return httpx.post(url + "/v1/predict", json={"record": RECORD}, headers=headers,
                              timeout=10).status_code

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            assert set(pool.map(predict, range(40))) == {200}

        rows = pd.DataFrame([RECORD, {**RECORD, "nswprice": 0.9}])
        model = DecisionTreeClassifier().fit(rows[FEATURES], [0, 1])
        artifact = project.artifacts.put_model(model)
        project.store.versions.add(project.name, run_id=None, artifact_uri=artifact.uri,
                                        sha256=artifact.sha256, metrics={})
        project.store.aliases.set(project.name, "champion", 2, actor="test", reason="workers")
        until(both_workers(url, lambda a: a["serving"] == {"champion": 2}),
              "the promotion to reach both workers")

        metrics = httpx.get(url + "/metrics").text
        versions = re.findall(r'driftloop_model_version\{alias="champion",pid="(\d+)",'
                              r'pipeline="electricity"\} (\S+)', metrics)
        assert len(versions) == 2 and {value for _, value in versions} == {"2.0"}
        counted = re.findall(r'driftloop_predictions_total\{[^}]*\} (\S+)', metrics)
        assert sum(float(n) for n in counted) == 40
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) in (0, -signal.SIGTERM)
    store = serving.ServingStore(project.store)
    assert store.count_predictions(project.name) == 40  # every worker wrote its log
    stats = serving_stats.ServingStats(store).read(project.name, alias="champion", version=1)
    assert stats.requests == 40
    project.close()
