"""Peers (MLflow, Evidently) in venvs of their own, built from `benchmarks/peers/<peer>.txt`.

Their pins clash with ours (MLflow caps pyarrow, Evidently needs pandas < 3), so each benchmark
runs the peer as a subprocess on the same data. Venvs live in `.bench/` and are reused while the
requirements file is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE.parent / ".bench"


def venv_python(peer: str) -> Path:
    """Where the python of the venv for `peer`'s current requirements is (built or not)."""
    requirements = HERE / "peers" / f"{peer}.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    return CACHE / f"venv-{peer}-{digest}" / "bin" / "python"


def peer_python(peer: str) -> Path:
    """The python of the venv for `peer`, built (or rebuilt) from `peers/<peer>.txt` if needed."""
    requirements = HERE / "peers" / f"{peer}.txt"
    python = venv_python(peer)
    home = python.parent.parent
    if not python.exists():
        print(f"building the {peer} venv in {home} (once) ...", file=sys.stderr)
        venv.create(home, with_pip=True, clear=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(requirements)], check=True
        )
    return python


def run_peer(
    peer: str, script: Path, payload: dict[str, object], timeout: float = 3600
) -> dict[str, object]:
    """Run `script` with the peer's python: `payload` goes in as JSON on stdin, and a JSON
    object comes back as the last line of stdout."""
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    done = subprocess.run(
        [str(peer_python(peer)), str(script)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{peer} run failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
