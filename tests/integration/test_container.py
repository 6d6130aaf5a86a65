"""The bundle's image, built and run for real: buildah (``--isolation chroot``) builds the
generated Dockerfile on a minimal Debian bookworm with Debian's Python 3.11 (`container_base`,
debootstrap, cached), installing from the bundle's wheelhouse with no package index; then
``driftloop serve --bundle`` runs in it on 127.0.0.1 and answers /healthz and a prediction, the
same as the bundle served outside, to a client outside.

Needs root, buildah and debootstrap (`.ci/run` installs them); skips with the reason otherwise,
and fails instead under DRIFTLOOP_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from conftest import require_service
from container_base import apt_mirror, ensure_base
from test_server import RECORD, trained_folder

from driftloop.controller import project as projects
from driftloop.deploy import package as packaging
from driftloop.store import bundles

pytestmark = [pytest.mark.container, pytest.mark.slow]


@pytest.fixture(scope="module")
def base() -> str:
    if os.geteuid() != 0:
        require_service("buildah as root", "buildah --isolation chroot needs root here")
    missing = [tool for tool in ("buildah", "debootstrap") if shutil.which(tool) is None]
    if missing:
        require_service(" and ".join(missing), "apt-get install buildah debootstrap")
    mirror = apt_mirror()
    if mirror is None:
        require_service("a Debian mirror", "no apt source names a Debian release to debootstrap")
    return ensure_base(mirror)


@pytest.fixture(scope="module")
def image(base: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    folder = trained_folder(tmp_path_factory, "container")
    project = projects.open_project(folder / "driftloop.yaml")
    out = tmp_path_factory.mktemp("image") / "bundle"
    try:
        packaging.package(project, "champion", out, wheels=True)
    finally:
        project.close()
    pins = (out / "requirements.lock").read_text().splitlines()
    assert pins and all(" --hash=sha256:" in pin for pin in pins)  # pip checks every wheel
    name = f"localhost/driftloop-test-bundle:{uuid.uuid4().hex[:12]}"
    started = time.monotonic()
    built = subprocess.run(
        ["buildah", "bud", "--isolation", "chroot", "--format", "docker", "--quiet",
         "--build-arg", f"BASE={base}", "-t", name, str(out)],
        capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr[-3000:]
    size = subprocess.run(["buildah", "images", "--format", "{{.Size}}", name],
                          capture_output=True, text=True, check=True).stdout.strip()
    print(f"image {name}: {size}, built in {time.monotonic() - started:.0f} s")
    yield name, out
    subprocess.run(["buildah", "rmi", name], capture_output=True, check=False)


@pytest.fixture
def container(image: tuple[str, Path]) -> Iterator[str]:
    made = subprocess.run(["buildah", "from", "--quiet", image[0]], capture_output=True,
                          text=True, check=True).stdout.strip()
    yield made
    subprocess.run(["buildah", "rm", made], capture_output=True, check=False)


def run(container: str, *command: str) -> str:
    done = subprocess.run(["buildah", "run", "--isolation", "chroot", container, "--", *command],
                          capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_image_serves_the_bundle(image: tuple[str, Path], container: str) -> None:
    assert "serve" in run(container, "driftloop", "--help")
    assert run(container, "id", "-u").strip() == "10001"  # the image's USER, not root
    secret = run(container, "driftloop", "tokens", "create", "client", "--role", "predict",
                 "--bundle", "/srv/bundle").strip().splitlines()[-1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        ["buildah", "run", "--isolation", "chroot", container, "--", "driftloop", "serve",
         "--bundle", "/srv/bundle", "--host", "127.0.0.1", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, "the server in the container exited"
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "no /healthz answer within 90 s"
            time.sleep(0.2)
        assert httpx.get(url + "/readyz", timeout=5).json()["ready"]
        answer = httpx.post(url + "/v1/predict", json={"record": RECORD}, timeout=30,
                            headers={"Authorization": f"Bearer {secret}"})
        assert answer.status_code == 200, answer.text
    finally:
        server.terminate()
        server.wait(30)
    found = answer.json()["predictions"][0]
    model = bundles.open_bundle(image[1]).load_model()
    expected = model.predict_proba(pd.DataFrame([RECORD]))[0]
    assert found["version"] == 1
    assert [found["probabilities"][str(c)] for c in model.classes_] == pytest.approx(
        list(expected), abs=1e-12)
