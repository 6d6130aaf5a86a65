"""ONNX export: parity on the pipeline's newest stored rows for the model kinds users train,
refusals with the reason (a model skl2onnx cannot convert, float32 rounding that changes
classes), the export kept on the version, and ``serving.runtime: onnx`` scoring through
onnxruntime (with the fallback to scikit-learn where a version has no passing export)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestCentroid
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from test_server import RECORD, trained_folder
from typer.testing import CliRunner
from uvicorn_thread import serving as serve_in_thread

from driftloop.cli.main import app
from driftloop.controller import exports
from driftloop.controller import project as projects
from driftloop.core import errors
from driftloop.data import calendar
from driftloop.server import app as server_app
from driftloop.server import auth
from driftloop.store import orphans, serving, transfers

pytest.importorskip("skl2onnx", reason="needs the onnx extra (skl2onnx, onnxruntime)")
onnx_format = pytest.importorskip("driftloop.train.onnx_format")
runner = CliRunner()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[projects.Project]:
    opened = projects.open_project(trained_folder(tmp_path_factory, "onnx") / "driftloop.yaml")
    yield opened
    opened.close()


def register(project: projects.Project, model: Any) -> int:
    """Fit `model` on the project's stored rows and register it as the next version."""
    batches = project.store.batches.list(project.name, status="accepted")
    rows = pd.concat([project.artifacts.get_frame(b.data_uri, b.data_sha256) for b in batches
                      if b.data_uri and b.data_sha256])
    model.fit(calendar.model_input(project.spec, rows), rows[project.spec.target])
    artifact = project.artifacts.put_model(model)
    return project.store.versions.add(
        project.name, run_id=None, artifact_uri=artifact.uri, sha256=artifact.sha256,
        metrics={}).version


@pytest.mark.parametrize("model", [
    HistGradientBoostingClassifier(max_iter=30, random_state=0),
    RandomForestClassifier(n_estimators=20, max_depth=8, random_state=0),
    LogisticRegression(),
    make_pipeline(StandardScaler(), LogisticRegression()),
], ids=["hist_gradient_boosting", "random_forest", "logistic_regression", "scaled_pipeline"])
def test_parity_on_the_newest_stored_rows(
    project: projects.Project, model: Any, tmp_path: Path,
) -> None:
    number = register(project, model)
    out = tmp_path / "model.onnx"
    done = exports.export_onnx(project, number, out, actor="ann", rows=1000)
    report = done.transfer.report
    assert report["passed"] and report["rows"] == 1000
    assert report["same_class"] >= 0.999 and report["max_probability_delta"] <= 1e-5
    assert out.read_bytes() == project.artifacts.get_bytes(
        done.transfer.artifact_uri, done.transfer.sha256)
    kept = transfers.TransferStore(project.store).passing_export(project.name, number, "onnx")
    assert kept is not None and kept.id == done.transfer.id and kept.actor == "ann"


def test_a_model_skl2onnx_cannot_convert_is_refused_with_the_reason(
    project: projects.Project, tmp_path: Path,
) -> None:
    number = register(project, NearestCentroid())
    out = tmp_path / "model.onnx"
    with pytest.raises(errors.FormatError, match="skl2onnx cannot convert NearestCentroid"):
        exports.export_onnx(project, number, out, actor="ann", rows=200)
    assert not out.exists()
    [refused] = transfers.TransferStore(project.store).list(project.name, number)
    assert not refused.passed and refused.artifact_uri is None
    assert "NearestCentroid" in refused.report["reason"]


def test_parity_fails_where_float32_inputs_change_the_class() -> None:
    # A boundary between values float32 cannot tell apart (the ONNX graph reads float32): a
    # logistic regression set by hand to switch class at 1 + 1e-7.
    x = 1.0 + np.arange(200) * 1e-9
    frame = pd.DataFrame({"x": x})
    model = LogisticRegression().fit(frame, np.arange(200) >= 100)
    model.coef_, model.intercept_ = np.array([[1e10]]), np.array([-1e10 * (1.0 + 1e-7)])
    onnx = onnx_format.OnnxModel(onnx_format.convert(model, frame), ["x"], model.classes_)
    report = onnx_format.check_parity(model, onnx, frame)
    assert not report["passed"] and report["same_class"] < 0.999
    assert "same class on" in report["reason"]


def test_text_columns_are_refused_with_the_column() -> None:
    frame = pd.DataFrame({"x": [0.5, 1.5], "colour": ["red", "blue"]})
    with pytest.raises(errors.FormatError, match="column 'colour'"):
        onnx_format.convert(LogisticRegression(), frame)


def test_serving_runtime_onnx_scores_with_onnxruntime_and_falls_back_without_an_export(
    project: projects.Project, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    exported = register(project, RandomForestClassifier(n_estimators=10, random_state=0))
    exports.export_onnx(project, exported, tmp_path / "m.onnx", actor="ann", rows=500)
    plain = register(project, LogisticRegression())
    project.store.aliases.set(project.name, "champion", exported, actor="ann", reason="onnx")
    secret = auth.create_token(serving.ServingStore(project.store), f"onnx-{exported}",
                               ["predict", "admin"], actor="test")[1]
    headers = {"Authorization": f"Bearer {secret}"}
    app = server_app.create_app(project, poll_interval=0.1, runtime="onnx")
    model = project.artifacts.get_model(
        *(lambda v: (v.artifact_uri, v.sha256))(project.store.versions.get(
            project.name, exported)))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, headers=headers) as client:
        ready = client.get("/readyz").json()
        assert ready["runtimes"] == {"champion": "onnx"}
        records = [RECORD, {**RECORD, "nswprice": 0.2}, {**RECORD, "period": 0.9}]
        body = client.post("/v1/predict", json={"records": records}).json()
        expected = model.predict_proba(pd.DataFrame(records)[list(model.feature_names_in_)])
        for out, row in zip(body["predictions"], expected, strict=True):
            assert [out["probabilities"]["0"], out["probabilities"]["1"]] == pytest.approx(
                row, abs=1e-5)
            assert out["prediction"] == int(model.classes_[row.argmax()])
        moved = client.post("/v1/admin/promote", json={"version": plain})
        assert moved.status_code == 200, moved.text
        assert client.get("/readyz").json()["runtimes"] == {"champion": "sklearn"}
        assert f"v{plain} scores with scikit-learn, not onnxruntime" in caplog.text
        # an export made while the server runs is swapped in by the poller
        exports.export_onnx(project, plain, tmp_path / "plain.onnx", actor="ann", rows=500)
        deadline = time.monotonic() + 30
        while client.get("/readyz").json()["runtimes"] != {"champion": "onnx"}:
            assert time.monotonic() < deadline, "the new export was not swapped in"
            time.sleep(0.05)


def test_the_commands_print_the_parity_and_show_keeps_it(
    project: projects.Project, tmp_path: Path,
) -> None:
    spec = str(project.base_dir / "driftloop.yaml")
    out = tmp_path / "v1.onnx"
    done = runner.invoke(app, ["models", "export", "1", "--format", "onnx", "--out", str(out),
                               "--spec", spec, "--actor", "ann"])
    assert done.exit_code == 0, done.output
    assert "same class on 100.0000% of 1008 stored rows" in " ".join(done.output.split())
    shown = " ".join(runner.invoke(app, ["models", "show", "1", "--spec", spec]).output.split())
    assert "exported as onnx to" in shown and "same class 100.0000%" in shown
    assert "(by ann)" in shown
    number = register(project, NearestCentroid())
    refused = runner.invoke(app, ["models", "export", str(number), "--format", "onnx", "--out",
                                  str(tmp_path / "no.onnx"), "--spec", spec])
    assert refused.exit_code == 1 and "skl2onnx cannot convert" in refused.output


def test_gc_keeps_the_exported_file(project: projects.Project, tmp_path: Path) -> None:
    done = exports.export_onnx(project, 1, tmp_path / "kept.onnx", actor="ann", rows=200)
    found = orphans.find_orphans(project.store, project.artifacts, min_age=timedelta(0))
    assert done.transfer.sha256 not in {Path(o.uri).name[:64] for o in found}


def test_a_regressor_is_checked_on_its_predictions() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.random((300, 3)), columns=["a", "b", "c"])
    model = HistGradientBoostingRegressor(max_iter=20).fit(frame, frame.a * 100)
    onnx = onnx_format.OnnxModel(onnx_format.convert(model, frame), ["a", "b", "c"])
    report = onnx_format.check_parity(model, onnx, frame)
    assert report["passed"] and report["max_relative_delta"] <= 1e-5
