"""The monitoring stack against a real `driftloop serve` on 127.0.0.1: the Grafana dashboard
(deploy/grafana/driftloop.json) queries only metrics the server exports, and the real
Prometheus server (Debian's /usr/bin/prometheus, marked `prometheus`) scrapes the server with
deploy/prometheus.yml and answers a driftloop metric through its HTTP API."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import require_service
from test_server import RECORD, Server, bearer, trained_folder

from driftloop.controller import project as projects
from driftloop.controller import retrain, telemetry, tick
from driftloop.server import auth
from driftloop.server import prometheus_metrics as server_metrics
from driftloop.store import entities, serving

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
METRIC = re.compile(r"\bdriftloop_[a-z_]+\b")
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$pipeline": ".*"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that has answered predictions, feedback and a bad request."""
    folder = trained_folder(tmp_path_factory, "monitoring")
    opened = projects.open_project(folder / "driftloop.yaml")
    secret = auth.create_token(serving.ServingStore(opened.store), "all",
                               ["predict", "feedback"], actor="test")[1]
    opened.close()
    running = Server(folder / "driftloop.yaml")
    try:
        answer = httpx.post(running.url + "/v1/predict", headers=bearer(secret),
                            json={"records": [RECORD] * 3})
        assert answer.status_code == 200
        first = answer.json()["predictions"][0]["id"]
        labels = {"labels": [{"prediction_id": first, "label": 1}]}
        assert httpx.post(running.url + "/v1/feedback", headers=bearer(secret),
                          json=labels).status_code == 200
        assert httpx.post(running.url + "/v1/predict", json={}).status_code == 401
        yield running
    finally:
        assert running.stop()


def exported_names(text: str) -> set[str]:
    """Every series name the exposition `text` declares or carries (a histogram `h` also
    exports h_bucket, h_sum and h_count)."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            if kind == "histogram":
                names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def grafana_queries() -> list[str]:
    """Every PromQL text of the dashboard: panel targets and query variables."""
    board = json.loads((DEPLOY / "grafana" / "driftloop.json").read_text())
    queries = [target["expr"] for panel in board["panels"] for target in panel["targets"]]
    queries += [var["definition"] for var in board["templating"]["list"] if var["type"] == "query"]
    return queries


def test_every_grafana_query_names_an_exported_metric(server: Server) -> None:
    board = json.loads((DEPLOY / "grafana" / "driftloop.json").read_text())
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)) >= 8 and board["uid"] == "driftloop"
    exported = exported_names(httpx.get(server.url + "/metrics").text)
    exported |= exported_names(controller_metrics().render().decode())
    queries = grafana_queries()
    for query in queries:
        used = set(METRIC.findall(query))
        assert used, f"query names no driftloop metric: {query}"
        assert used <= exported, f"{sorted(used - exported)} are not exported: {query}"
    covered = {name for query in queries for name in METRIC.findall(query)}
    texts = httpx.get(server.url + "/metrics").text + controller_metrics().render().decode()
    declared = {line.split()[2] for line in texts.splitlines()
                if line.startswith("# TYPE ") and not line.endswith("_created gauge")}
    missing = {name for name in declared
               if not any(used.startswith(name) for used in covered)}
    assert not missing, f"metrics no panel shows: {sorted(missing)}"


def controller_metrics() -> telemetry.ControllerMetrics:
    """The metrics of `driftloop run --metrics-port`, after a tick that trained a model."""
    metrics = telemetry.ControllerMetrics("electricity")
    at = datetime(2024, 5, 1, tzinfo=UTC)
    run = entities.TrainingRun(1, "electricity", "train:make_model", {}, (1,), 1, "succeeded",
                               2.5, None, at, at + timedelta(seconds=3))
    decision = entities.Decision(1, "electricity", "retrain", True, {}, {}, at)
    outcome = retrain.Outcome(run, None, True, "no champion")
    metrics.observe(tick.TickResult(True, decision=decision, outcome=outcome), 3.2, at)
    metrics.failed(0.1)
    return metrics


def test_metric_names_follow_the_prometheus_conventions() -> None:
    """https://prometheus.io/docs/practices/naming/: a driftloop_ prefix, snake case, base
    units (seconds, bytes) as a suffix, _total on counters, a time as _timestamp_seconds, an
    _info gauge of 1; and no label that grows without bound (a model version)."""
    registries = [server_metrics.ServerMetrics().registry, controller_metrics().registry]
    families = [family for registry in registries for family in registry.collect()]
    names = {family.name for family in families}
    assert {"driftloop_build_info", "driftloop_request_duration_seconds",
            "driftloop_tick_duration_seconds", "driftloop_trainings",
            "driftloop_last_successful_tick_timestamp_seconds", "driftloop_lease_held"} <= names
    for family in families:
        name = family.name
        assert re.fullmatch(r"driftloop_[a-z][a-z0-9_]*[a-z0-9]", name), name
        assert family.documentation.strip(), f"{name} has no help text"
        assert not re.search(r"_(milli|micro|nano)?seconds?_(total|count)$|_ms\b|_(minutes|hours|"
                             r"days|millis|kilobytes|megabytes|percent)\b", name), name
        assert not name.endswith(("_count", "_sum", "_bucket")), name
        if family.type == "counter":
            assert not name.endswith("_total"), name  # the client adds _total itself
            assert all(s.name.startswith(name + "_total") or s.name.endswith("_created")
                       for s in family.samples), name
        if family.type == "histogram":
            assert name.endswith("_seconds"), f"{name}: durations are in seconds"
        if "timestamp" in name:
            assert name.endswith("_timestamp_seconds") and family.type == "gauge", name
        if name.endswith("_info"):
            assert family.type == "gauge" and all(s.value == 1 for s in family.samples), name
        for sample in family.samples:
            labels = set(sample.labels) - {"le"}
            assert all(re.fullmatch(r"[a-z][a-z0-9_]*", label) for label in labels), sample
            if not name.endswith("_info"):
                assert "version" not in labels, f"{name}: a version label grows with retrains"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape_config(server: str, controller: str) -> dict[str, Any]:
    """deploy/prometheus.yml with its targets replaced and a short scrape interval."""
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = config["global"]["evaluation_interval"] = "1s"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"driftloop", "driftloop-controller"}
    jobs["driftloop"]["static_configs"][0]["targets"] = [server]
    jobs["driftloop-controller"]["static_configs"][0]["targets"] = [controller]
    return dict(config)


@pytest.mark.prometheus
def test_prometheus_scrapes_the_server_with_the_shipped_config(
    server: Server, tmp_path: Path,
) -> None:
    binary, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if binary is None or promtool is None:
        require_service("Prometheus", "prometheus / promtool are not installed "
                                      "(apt-get install prometheus)")
    controller = controller_metrics()
    exposed = controller.serve(0)
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(
        f"127.0.0.1:{server.port}", f"127.0.0.1:{exposed.server_port}")))
    checked = subprocess.run([promtool, "check", "config", str(config)], capture_output=True,
                             text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = [{"record": f"driftloop:query_{i}", "expr": _plain(query)}
             for i, query in enumerate(grafana_queries()) if not query.startswith("label_values")]
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "grafana",
                                                                     "rules": rules}]}))
    parsed = subprocess.run([promtool, "check", "rules", str(tmp_path / "rules.yml")],
                            capture_output=True, text=True, check=False)
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr  # the dashboard's PromQL parses
    port = free_port()
    log = tmp_path / "prometheus.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        url = f"http://127.0.0.1:{port}"
        found = _wait_for(url, 'driftloop_requests_total{job="driftloop"}', log)
        assert any(item["metric"].get("endpoint") == "/v1/predict" for item in found)
        up = _wait_for(url, 'up{job="driftloop"} == 1', log)
        assert up[0]["metric"]["instance"] == f"127.0.0.1:{server.port}"
        ticks = _wait_for(url, 'driftloop_ticks_total{job="driftloop-controller"}', log)
        assert {item["metric"]["result"] for item in ticks} == {"acted", "failed"}
    finally:
        exposed.shutdown()
        exposed.server_close()
        process.terminate()
        assert process.wait(timeout=30) == 0, log.read_text()[-2000:]


def _plain(query: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        query = query.replace(variable, value)
    return query


def _wait_for(url: str, query: str, log: Path, timeout: float = 60.0) -> list[dict[str, Any]]:
    """The non-empty result of `query` once Prometheus has it (it scrapes every second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url + "/api/v1/query", params={"query": query}, timeout=5)
            answer = response.json() if response.status_code == 200 else {}  # 503 while starting
            if answer.get("status") == "success" and answer["data"]["result"]:
                return list(answer["data"]["result"])
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"Prometheus at {url} had no result for {query} within {timeout} s; "
                         f"its log ends: {log.read_text()[-2000:]}")
