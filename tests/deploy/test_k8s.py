"""`driftloop deploy k8s`: the manifests validate against the Kubernetes OpenAPI schemas that
kubernetes-validate ships (two Kubernetes versions, strict: no unknown fields), and everything
they point at exists: the probe paths and the metrics path are routes of the server, the
container port is the one `driftloop serve` is told to bind, the env var is the one driftloop
reads, and the store URL appears nowhere in them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from driftloop.cli import project_commands as scaffold
from driftloop.cli.main import app
from driftloop.controller import project as projects
from driftloop.core import config
from driftloop.deploy import k8s

kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="the dev extra has it")
VERSIONS = ("1.29.0", "1.33.0")
SECRET_URL = "postgresql+psycopg://loop:s3cret-pw@10.255.0.1:5432/loop"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    made = tmp_path_factory.mktemp("k8s") / "p"
    scaffold.init(made, weeks=3)
    spec = made / "driftloop.yaml"
    spec.write_text(spec.read_text() + f"store: {SECRET_URL}\n")
    return made


def rendered(folder: Path, tmp_path: Path, *extra: str) -> dict[str, list[dict[str, Any]]]:
    out = tmp_path / "manifests"
    result = CliRunner().invoke(app, [
        "deploy", "k8s", "--out", str(out), "--spec", str(folder / "driftloop.yaml"),
        "--image", "driftloop-electricity:v1", *extra])
    assert result.exit_code == 0, result.output
    found = {}
    for path in sorted(out.glob("*.yaml")):
        text = path.read_text()
        assert SECRET_URL not in text and "s3cret" not in text
        found[path.name] = list(yaml.safe_load_all(text))
    return found


@pytest.mark.parametrize("extra", [(), ("--cronjob", "--namespace", "ml")])
def test_manifests_validate_against_kubernetes_schemas(
    folder: Path, tmp_path: Path, extra: tuple[str, ...],
) -> None:
    found = rendered(folder, tmp_path, *extra)
    kinds = sorted(doc["kind"] for docs in found.values() for doc in docs)
    controller = "CronJob" if extra else "Deployment"
    assert kinds == sorted(["ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler",
                            controller])
    for docs in found.values():
        for doc in docs:
            for version in VERSIONS:
                kubernetes_validate.validate(doc, version, strict=True)
            if extra:
                assert doc["metadata"]["namespace"] == "ml"


def test_what_the_manifests_reference_exists(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from driftloop.server import app as apps

    found = rendered(folder, tmp_path)
    serve, service = found["serve.yaml"]
    pod = serve["spec"]["template"]["spec"]
    container = pod["containers"][0]
    command = container["command"]
    assert command[:2] == ["driftloop", "serve"]
    assert int(command[command.index("--port") + 1]) == container["ports"][0]["containerPort"]
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]

    # the one env var the pods get is what driftloop reads for its store (here: instead of the
    # spec's unreachable one)
    names = {item["name"] for item in container["env"]}
    assert names == {projects.STORE_ENV}
    local = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv(projects.STORE_ENV, local)
    project = projects.open_project(folder / "driftloop.yaml")
    assert (tmp_path / "elsewhere.db").is_file()
    routes = set(apps.create_app(project).openapi()["paths"])
    project.close()
    paths = {container["readinessProbe"]["httpGet"]["path"],
             container["livenessProbe"]["httpGet"]["path"],
             serve["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"]}
    assert paths == {"/readyz", "/healthz", "/metrics"} and paths <= routes

    # the ConfigMap holds a spec that loads, without the store, and the trainer module
    data = found["configmap.yaml"][0]["data"]
    spec = yaml.safe_load(data["driftloop.yaml"])
    assert "store" not in spec and "def make_model" in data["train.py"]
    config.PipelineSpec.model_validate(spec)
    mount = container["volumeMounts"][0]["mountPath"]
    assert command[command.index("--spec") + 1] == f"{mount}/driftloop.yaml"

    hpa = found["hpa.yaml"][0]
    assert hpa["spec"]["scaleTargetRef"]["name"] == serve["metadata"]["name"]
    assert k8s.REQUESTS_METRIC in k8s.ADAPTER_RULE
