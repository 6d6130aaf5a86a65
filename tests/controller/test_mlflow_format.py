"""MLflow model directories: written without mlflow, loaded by MLflow itself, and models MLflow
saved imported as versions.

The round trip runs MLflow in its own venv (`benchmarks/peers.py`, built once from
`benchmarks/peers/mlflow.txt`): `mlflow.pyfunc.load_model` loads the exported directory and
predicts the same classes as the version; a model MLflow saved (skops) imports and predicts as
MLflow did; a pickled one is refused unless trusted. The checks that need no MLflow run always.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import require_service
from test_server import FEATURES, trained_folder

from driftloop.controller import exports, mlflow_format
from driftloop.controller import project as projects
from driftloop.core import errors
from driftloop.store import transfers

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

PEER = """
import json, sys
import pandas as pd
import mlflow.pyfunc, mlflow.sklearn
from sklearn.linear_model import LogisticRegression
job = json.loads(sys.stdin.read())
rows = pd.DataFrame(job["rows"], columns=job["features"])
loaded = mlflow.pyfunc.load_model(job["exported"])
model = LogisticRegression().fit(rows, job["labels"])
mlflow.sklearn.save_model(model, job["skops_dir"])
mlflow.sklearn.save_model(model, job["pickle_dir"], serialization_format="cloudpickle")
print(json.dumps({"exported": loaded.predict(rows).tolist(),
                  "saved": model.predict_proba(rows).tolist()}))
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[projects.Project]:
    opened = projects.open_project(trained_folder(tmp_path_factory, "mlflow") / "driftloop.yaml")
    yield opened
    opened.close()


def model_of(project: projects.Project, number: int) -> Any:
    found = project.store.versions.get(project.name, number)
    return project.artifacts.get_model(found.artifact_uri, found.sha256)


def test_the_export_is_an_mlflow_model_directory(project: projects.Project, tmp_path: Path) -> None:
    out = tmp_path / "model"
    mlflow_format.export_mlflow(project, 1, out, actor="ann")
    described = yaml.safe_load((out / "MLmodel").read_text())
    assert set(described["flavors"]) == {"python_function", "sklearn"}
    assert described["flavors"]["sklearn"]["serialization_format"] == "skops"
    inputs = json.loads(described["signature"]["inputs"])
    assert [column["name"] for column in inputs] == FEATURES
    assert {column["type"] for column in inputs} == {"double"}
    assert "scikit-learn==" in (out / "requirements.txt").read_text()
    with pytest.raises(errors.FormatError, match="not empty"):
        mlflow_format.export_mlflow(project, 1, out, actor="ann")
    [kept] = [t for t in transfers.TransferStore(project.store).list(project.name, 1)
              if t.format == "mlflow"]
    assert kept.direction == "export" and kept.location == str(out.resolve())


def test_a_pickled_model_is_refused_unless_trusted(
    project: projects.Project, tmp_path: Path,
) -> None:
    import pickle

    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(pickle.dumps(model_of(project, 1)))
    (folder / "MLmodel").write_text(yaml.safe_dump({"flavors": {"sklearn": {
        "pickled_model": "model.pkl", "serialization_format": "pickle"}}}))
    with pytest.raises(errors.IntegrityError, match="--trust-pickle"):
        mlflow_format.import_mlflow(project, folder, actor="ann")
    done = mlflow_format.import_mlflow(project, folder, actor="ann", trust_pickle=True)
    assert done.transfer.report["trusted_pickle"] is True
    assert done.transfer.location == str(folder.resolve())


@pytest.mark.peer
def test_round_trip_with_mlflow_in_its_own_venv(project: projects.Project, tmp_path: Path) -> None:
    sys.path.insert(0, str(BENCHMARKS))
    import peers

    if not peers.venv_python("mlflow").exists() and os.environ.get(
            "DRIFTLOOP_REQUIRE_SERVICES") != "1":
        pytest.skip("MLflow's venv is not built (python benchmarks/bench_serve.py builds it "
                    "once; DRIFTLOOP_REQUIRE_SERVICES=1 builds it here)")
    try:
        python = peers.peer_python("mlflow")
    except subprocess.CalledProcessError as exc:
        require_service("the MLflow venv", f"building it failed: {exc}")
    out = tmp_path / "exported"
    mlflow_format.export_mlflow(project, 1, out, actor="ann")
    rows = exports.newest_rows(project, 300)
    batches = project.store.batches.list(project.name, status="accepted")
    stored = pd.concat([project.artifacts.get_frame(b.data_uri, b.data_sha256)
                        for b in batches if b.data_uri and b.data_sha256]).tail(300)
    job = {"exported": str(out), "rows": rows[FEATURES].to_numpy().tolist(), "features": FEATURES,
           "labels": stored[project.spec.target].tolist(), "skops_dir": str(tmp_path / "skops"),
           "pickle_dir": str(tmp_path / "pickle")}
    env = {**os.environ, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
           "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    env.pop("PYTHONPATH", None)
    done = subprocess.run([str(python), "-c", PEER], input=json.dumps(job), capture_output=True,
                          text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    model = model_of(project, 1)
    assert answers["exported"] == model.predict(rows[FEATURES]).tolist()

    imported = mlflow_format.import_mlflow(project, tmp_path / "skops", actor="ann")
    assert imported.transfer.report["serialization_format"] == "skops"
    again = model_of(project, imported.version)
    np.testing.assert_allclose(
        again.predict_proba(rows[FEATURES]), answers["saved"], rtol=0, atol=1e-12)
    with pytest.raises(errors.IntegrityError, match="cloudpickle file"):
        mlflow_format.import_mlflow(project, tmp_path / "pickle", actor="ann")
