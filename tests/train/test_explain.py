"""Explanations: SHAP values equal the shap package's own, permutation importance equals
scikit-learn's; every trained version is explained on its held-out rows with the drift from
the champion's (shown by `driftloop models show`; a gate condition on request);
`POST /v1/predict?explain=true` answers with each feature's contribution, and with a 400
naming the reason for a model with no explainer."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import specs
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner
from uvicorn_thread import serving as serve_in_thread

from driftloop.cli.main import app as cli
from driftloop.controller import project as projects
from driftloop.controller import responsible, tick
from driftloop.data import fairness_data
from driftloop.server import app as server_app
from driftloop.server import auth
from driftloop.store import serving
from driftloop.train import explain

shap = pytest.importorskip("shap", reason="needs the explain extra")


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(600, 4)), columns=["a", "b", "c", "d"])
    y = (X["a"] + 0.5 * X["b"] - 0.2 * X["c"] + rng.normal(scale=0.3, size=600) > 0).astype(int)
    return X, y


@pytest.mark.parametrize("model", [HistGradientBoostingClassifier(max_iter=30),
                                   RandomForestClassifier(n_estimators=20, random_state=0),
                                   LogisticRegression()], ids=lambda m: type(m).__name__)
def test_shap_values_are_the_shap_packages(model: Any, data: tuple[pd.DataFrame, Any]) -> None:
    X, y = data
    model.fit(X[:400], y[:400])
    held = X[400:]
    ours = explain.contributions(explain.build_explainer(model, held.mean().to_dict()), held)
    if isinstance(model, LogisticRegression):  # the means as background == all held-out rows
        theirs = shap.LinearExplainer(model, shap.maskers.Independent(held, max_samples=200))(
            held).values
    else:
        theirs = shap.TreeExplainer(model)(held).values
    theirs = theirs[..., 1] if theirs.ndim == 3 else theirs
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    report = explain.global_explanation(model, held, y[400:], "accuracy", repeats=3)
    np.testing.assert_allclose(list(report["shap"].values()), np.abs(theirs).mean(axis=0),
                               atol=1e-6)
    sklearn = permutation_importance(model, held, y[400:], scoring="accuracy", n_repeats=3,
                                     random_state=0)
    np.testing.assert_allclose([v["mean"] for v in report["permutation"].values()],
                               sklearn.importances_mean)
    assert max(report["shap"], key=report["shap"].get) == "a"


def test_a_pipeline_has_no_explainer_and_says_why() -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    with pytest.raises(explain.Unexplainable, match="not inside a Pipeline"):
        explain.build_explainer(make_pipeline(StandardScaler(), LogisticRegression()), None)


SPEC = """
name: explained
store: sqlite:///driftloop.db
artifacts: ./artifacts
source: {kind: files, path: data/*.csv}
target: y
trainer: {function: TRAINER, executor: inline, window: {kind: last, size: 2 batches}}
triggers: [{kind: volume, every: 1 batch}]
cooldown: 1 batch
gate: {require: not_worse, holdout: 1 batch, bootstrap: 100}
fairness: {sensitive: [g]}
explain: {rows: 500, repeats: 3}
"""

PIPELINE = """
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def make_model():
    return make_pipeline(StandardScaler(), LogisticRegression())
"""


def trained(root: Path, trainer: str, batches: int = 4) -> projects.Project:
    (root / "data").mkdir(parents=True)
    (root / "driftloop.yaml").write_text(specs.edited(SPEC, {"TRAINER": trainer}))
    (root / "train.py").write_text(PIPELINE)
    project = projects.open_project(root / "driftloop.yaml")
    controller = tick.Controller(project)
    for index, frame in enumerate(fairness_data.biased_stream(batches=batches, rows=500,
                                                              bias_at=2)):
        frame.to_csv(root / "data" / f"{index:03}.csv", index=False)
        controller.tick()
    return project


def test_every_version_is_explained_with_its_drift(tmp_path: Path) -> None:
    project = trained(tmp_path, "sklearn.linear_model:LogisticRegression")
    versions = project.store.versions.list(project.name)
    assert len(versions) >= 2
    found = project.store.findings.for_version(project.name, responsible.EXPLANATION,
                                          versions[-1].version)
    assert found is not None and found.report["explainer"] == "linear"
    assert set(found.report["shap"]) == {"x1", "x2"}  # g is a fairness-only column
    drift = project.store.findings.for_version(project.name, responsible.EXPLANATION_DRIFT,
                                          versions[-1].version)
    promoted = [v.version for v in versions[:-1] if v.gate_report and v.gate_report["passed"]]
    assert drift is not None and drift.report["from_version"] == promoted[-1]  # the champion
    assert 0 <= drift.value <= 1
    shown = CliRunner().invoke(cli, ["models", "show", str(versions[-1].version), "--spec",
                                     str(tmp_path / "driftloop.yaml")], env={"COLUMNS": "160"})
    assert shown.exit_code == 0, shown.output
    assert "mean |SHAP|" in shown.output and "explanation drift from v" in shown.output
    assert "fairness gate:" in shown.output


def serve(project: projects.Project) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    tokens = serving.ServingStore(project.store)
    _, secret = auth.create_token(tokens, "predict", ["predict"], actor="test")
    with serve_in_thread(server_app.create_app(project)) as url, \
            httpx.Client(base_url=url) as client:
        yield client, {"Authorization": f"Bearer {secret}"}


def test_predict_explains_each_record_and_counts_it(tmp_path: Path) -> None:
    project = trained(tmp_path, "sklearn.linear_model:LogisticRegression", batches=3)
    champion = project.store.aliases.get(project.name, "champion")
    assert champion is not None
    version = project.store.versions.get(project.name, champion)
    model = project.artifacts.get_model(version.artifact_uri, version.sha256)
    stored = project.store.findings.for_version(project.name, responsible.EXPLANATION, champion)
    assert stored is not None
    records = [{"x1": 0.5, "x2": -1.0}, {"x1": -2.0, "x2": 0.3}]
    for client, headers in serve(project):
        plain = client.post("/v1/predict", json={"records": records}, headers=headers).json()
        assert "contributions" not in plain["predictions"][0]
        answer = client.post("/v1/predict?explain=true", json={"records": records},
                             headers=headers)
        assert answer.status_code == 200, answer.text
        got = [p["contributions"] for p in answer.json()["predictions"]]
        frame = pd.DataFrame(records)
        background = pd.DataFrame([stored.report["background"]])[["x1", "x2"]]
        theirs = shap.LinearExplainer(model, shap.maskers.Independent(background))(frame).values
        np.testing.assert_allclose([[row["x1"], row["x2"]] for row in got], theirs, atol=1e-9)
        metrics = client.get("/metrics").text
        counted = 'driftloop_explained_predictions_total{alias="champion",pipeline="explained"} 2.0'
        assert counted in metrics
        assert 'driftloop_predictions_total' in metrics


def test_predict_explain_on_a_model_with_no_explainer_is_a_400(tmp_path: Path) -> None:
    project = trained(tmp_path, "train:make_model", batches=2)
    for client, headers in serve(project):
        answer = client.post("/v1/predict?explain=true", json={"record": {"x1": 0, "x2": 1}},
                             headers=headers)
        assert answer.status_code == 400, answer.text
        assert "cannot explain its predictions: no SHAP explainer for Pipeline" in answer.text
        assert client.post("/v1/predict", json={"record": {"x1": 0, "x2": 1}},
                           headers=headers).status_code == 200


def test_the_gate_may_refuse_a_challenger_that_relies_on_other_features(tmp_path: Path) -> None:
    from driftloop.controller import responsible as responsibles
    from driftloop.gate import gate

    project = trained(tmp_path, "sklearn.linear_model:LogisticRegression", batches=2)
    spec = project.spec.model_copy(update={"explain": project.spec.explain.model_copy(
        update={"gate": True, "shift": 0.2})})
    project = dataclasses.replace(project, spec=spec)
    champion = project.store.aliases.get(project.name, "champion")
    rows = fairness_data.biased_stream(batches=1, rows=400, seed=3)[0]
    other = LogisticRegression().fit(rows[["x1", "x2"]].assign(x1=0.0), rows["y"])  # x2 only
    explained = responsibles.explain_challenger(project, other, rows, rows, ["x1", "x2"],
                                                champion)
    assert explained.drift is not None and explained.drift["shifted"]
    passing = gate.unjudged(spec.gate, "test")
    refused = responsibles.gate_explanation(project, passing, explained)
    assert not refused.passed and "relies on its features differently" in refused.reason


def test_the_explanation_trigger_fires_when_the_champion_relies_on_other_features(
        tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "driftloop.yaml").write_text(
        specs.overridden(specs.edited(SPEC, {"TRAINER": "sklearn.linear_model:LogisticRegression"}),
                         replace={"triggers": [{"kind": "explanation"}],
                                  "explain": {"repeats": specs.DELETE}},
                         add={"explain": {"live": "0s"}}))
    project = projects.open_project(tmp_path / "driftloop.yaml")
    controller = tick.Controller(project)
    fired = []
    for index, frame in enumerate(fairness_data.biased_stream(batches=6, rows=500, bias_at=99)):
        if index >= 3:  # x1 all but stops varying: the model's output now moves with x2 alone
            frame = frame.assign(x1=frame["x1"] * 0.05)
        frame.to_csv(tmp_path / "data" / f"{index:03}.csv", index=False)
        result = controller.tick()
        if result.decision is not None and result.decision.fired and index > 0:
            fired.append(index)
    live = project.store.findings.list(project.name, responsible.EXPLANATION_LIVE)
    assert [f.report["shifted"] for f in live[:2]] == [False, False]
    assert fired and fired[0] == 3, fired
