"""The Dockerfile of a bundle: an image that serves the bundle with `driftloop serve --bundle`.

Two stages on the same base (``ARG BASE``, default ``python:3.11-slim``; any image with
Python 3.11 and ``useradd`` works, e.g. a Debian bookworm with python3-venv): the first
installs ``requirements.lock`` into a virtual environment (from the bundle's ``wheels/`` with
no package index when the bundle has them), the second copies that environment and the bundle's
files (never the wheels), runs as the unprivileged user ``driftloop`` (uid and gid 10001, by
number so that Kubernetes' ``runAsNonRoot`` can check it), answers
``HEALTHCHECK`` from ``/healthz`` and logs predictions to ``/srv/driftloop/predictions.db``
unless ``DRIFTLOOP_STORE_URL`` names a store.

>>> text = render(["bundle.json", "model.skops", "code/"], wheels=False)
>>> "ARG BASE=python:3.11-slim" in text, "USER 10001:10001" in text, "--no-index" in text
(True, True, False)
"""

from __future__ import annotations

from collections.abc import Sequence

BUNDLE_DIR = "/srv/bundle"
HOME = "/srv/driftloop"
VENV = "/opt/driftloop"
PORT = 8000
UID = 10001


def render(files: Sequence[str], *, wheels: bool, base: str = "python:3.11-slim") -> str:
    """The Dockerfile text for a bundle whose top-level entries are `files` (a folder ends
    with ``/``); `wheels`: the bundle has a wheelhouse to install from."""
    if wheels:
        install = (
            "COPY wheels/ /tmp/bundle/wheels/\n"
            f"RUN python3 -m venv {VENV} \\\n"
            f" && {VENV}/bin/pip install --no-cache-dir --no-index \\\n"
            "      --find-links /tmp/bundle/wheels -r /tmp/bundle/requirements.lock"
        )
    else:
        install = (
            f"RUN python3 -m venv {VENV} \\\n"
            f" && {VENV}/bin/pip install --no-cache-dir -r /tmp/bundle/requirements.lock"
        )
    plain = [name for name in files if not name.endswith("/")]
    folders = [f"COPY {name} {BUNDLE_DIR}/{name}" for name in files if name.endswith("/")]
    copies = "\n".join([f"COPY {' '.join(plain)} {BUNDLE_DIR}/", *folders])
    probe = (f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{PORT}/healthz', "
             "timeout=4)")
    return f"""\
# Serves one driftloop model version. Build: docker build -t NAME .  (another base image:
# --build-arg BASE=IMAGE, with Python 3.11). Run: docker run -p {PORT}:{PORT} NAME
ARG BASE={base}

FROM ${{BASE}} AS install
COPY requirements.lock /tmp/bundle/
{install}

FROM ${{BASE}}
RUN groupadd --system --gid {UID} driftloop \\
 && useradd --system --uid {UID} --gid {UID} --home-dir {HOME} --create-home driftloop
COPY --from=install {VENV} {VENV}
{copies}
ENV PATH={VENV}/bin:$PATH \\
    PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    DRIFTLOOP_PREDICTION_LOG={HOME}/predictions.db
USER {UID}:{UID}
WORKDIR {HOME}
EXPOSE {PORT}
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \\
    CMD ["python3", "-c", "{probe}"]
CMD ["driftloop", "serve", "--bundle", "{BUNDLE_DIR}", "--host", "0.0.0.0", "--port", "{PORT}"]
"""
