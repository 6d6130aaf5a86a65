"""Fairness monitoring: the per-batch report equals fairlearn's figures, small groups say
"insufficient data", a fairness-only column never reaches the trainer, and the fairness
trigger fires on the stream with bias injected at a known batch, within two batches of it and
not before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import specs

from driftloop.controller import project as projects
from driftloop.controller import responsible, tick
from driftloop.core import config, errors, fairness_spec
from driftloop.data import fairness_data
from driftloop.gate import fairness

fm = pytest.importorskip("fairlearn.metrics", reason="needs the fairness extra")

SPEC = """
name: biased
store: sqlite:///driftloop.db
artifacts: ./artifacts
source: {kind: files, path: data/*.csv}
target: y
trainer: {function: sklearn.linear_model:LogisticRegression, executor: inline}
triggers: [{kind: fairness, batches: 2, window: 3}]
cooldown: 1 batch
gate: {enabled: false}
fairness:
  sensitive: [g]
  thresholds: {demographic_parity_difference: 0.1}
"""


def write_project(root: Path, spec: str = SPEC) -> projects.Project:
    (root / "data").mkdir(parents=True)
    (root / "driftloop.yaml").write_text(spec)
    return projects.open_project(root / "driftloop.yaml")


def test_batch_report_equals_fairlearn() -> None:
    rows = fairness_data.arrests()
    rng = np.random.default_rng(1)
    y_true = rows["released"].to_numpy()
    y_pred = np.where(rng.random(len(rows)) < 0.2, "No", "Yes")
    spec = fairness_spec.FairnessSpec(sensitive=["colour", "sex"], positive="Yes")
    report = fairness.assess(y_true, y_pred, rows, spec)
    yb, pb = (y_true == "Yes").astype(int), (y_pred == "Yes").astype(int)
    for column in ("colour", "sex"):
        frame = fm.MetricFrame(
            metrics={"selection_rate": fm.selection_rate, "tpr": fm.true_positive_rate,
                     "fpr": fm.false_positive_rate},
            y_true=yb, y_pred=pb, sensitive_features=rows[column])
        mine = report["columns"][column]
        for group in frame.by_group.index:
            got = mine["groups"][group]
            assert got["rows"] == int((rows[column] == group).sum())
            assert got["selection_rate"] == pytest.approx(frame.by_group.loc[group,
                                                                               "selection_rate"])
            assert got["true_positive_rate"] == pytest.approx(frame.by_group.loc[group, "tpr"])
            assert got["false_positive_rate"] == pytest.approx(frame.by_group.loc[group, "fpr"])
            assert got["accuracy"] == pytest.approx(
                float(np.mean((yb == pb)[rows[column].to_numpy() == group])))
        kw = {"sensitive_features": rows[column]}
        assert mine["disparities"] == pytest.approx({
            "demographic_parity_difference": fm.demographic_parity_difference(yb, pb, **kw),
            "demographic_parity_ratio": fm.demographic_parity_ratio(yb, pb, **kw),
            "equalized_odds_difference": fm.equalized_odds_difference(yb, pb, **kw),
            "equalized_odds_ratio": fm.equalized_odds_ratio(yb, pb, **kw)})
        codes = pd.Categorical(rows[column]).codes.astype(np.int64)
        rates = fairness.group_rates(yb, pb, codes, codes.max() + 1)
        for name, value in mine["disparities"].items():  # the gate's numpy bootstrap agrees
            assert fairness.disparity_of(rates, name) == pytest.approx(value)


def test_a_small_group_is_insufficient_data_with_its_count() -> None:
    rows = pd.DataFrame({"g": ["a"] * 50 + ["b"] * 50 + ["c"] * 7})
    y = np.arange(len(rows)) % 2
    spec = fairness_spec.FairnessSpec(sensitive=["g"], min_group_rows=30)
    report = fairness.assess(y, y, rows, spec)
    assert report["columns"]["g"]["groups"]["c"] == {"rows": 7, "status": "insufficient data"}
    assert report["columns"]["g"]["judged"]
    alone = fairness.assess(y[:57], y[:57], rows.iloc[43:100].reset_index(drop=True), spec)
    assert not alone["judged"] and alone["breaches"] == []


def test_undeclared_values_are_other_and_groups_are_capped() -> None:
    spec = fairness_spec.FairnessSpec(sensitive=["g"], groups={"g": ["a"]})
    assert fairness.groups_of(pd.Series(["a", "b", None]), "g", spec).tolist() == [
        "a", "other", "other"]
    capped = fairness_spec.FairnessSpec(sensitive=["g"], max_groups=2)
    values = pd.Series(list("aaabbc"))
    assert sorted(set(fairness.groups_of(values, "g", capped))) == ["a", "b", "other"]


def test_a_fairness_only_column_never_reaches_the_trainer(tmp_path: Path) -> None:
    project = write_project(tmp_path)
    for index, frame in enumerate(fairness_data.biased_stream(batches=2, rows=300)):
        frame.to_csv(tmp_path / "data" / f"{index:03}.csv", index=False)
    tick.Controller(project).tick()
    version = project.store.versions.list(project.name)[0]
    model = project.artifacts.get_model(version.artifact_uri, version.sha256)
    assert list(model.feature_names_in_) == ["x1", "x2"]
    stored = project.store.batches.list(project.name)[0]
    assert stored.data_uri is not None and stored.data_sha256 is not None
    kept = project.artifacts.get_frame(stored.data_uri, stored.data_sha256)
    assert "g" in kept.columns  # kept with the batch
    spec = project.spec.model_copy(update={"fairness": None})
    assert spec.feature_columns(["x1", "x2", "g", "y"]) == ["x1", "x2", "g"]


def test_listing_a_sensitive_column_as_a_feature_is_refused() -> None:
    text = SPEC + "features: [x1, g]\n"
    with pytest.raises(errors.ConfigError, match="model_inputs"):
        config.parse_spec(text)
    assert config.parse_spec(specs.overridden(text, add={"fairness": {"model_inputs": ["g"]}}))


def test_the_trigger_fires_within_two_batches_of_the_injected_bias_and_not_before(
        tmp_path: Path) -> None:
    bias_at = 6
    project = write_project(tmp_path)
    controller = tick.Controller(project)
    fired_at = []
    for index, frame in enumerate(fairness_data.biased_stream(batches=10, bias_at=bias_at)):
        frame.to_csv(tmp_path / "data" / f"{index:03}.csv", index=False)
        result = controller.tick()
        if result.decision is not None and result.decision.fired and index > 0:
            fired_at.append(index)
    assert fired_at and bias_at <= fired_at[0] <= bias_at + 1, fired_at
    found = project.store.findings.list(project.name, responsible.FAIRNESS)
    assert len(found) == 9  # every labelled batch the champion scored
    before = [f.value for f in found[: bias_at - 1]]
    assert max(before) < 0.1 < min(f.value for f in found[bias_at - 1: bias_at + 1])


class Fixed:
    """A stand-in model whose predictions are a column of its input."""

    def __init__(self, column: str) -> None:
        self.column = column

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return X[self.column].to_numpy()


def holdout(rows: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.where(rng.random(rows) < 0.3, "B", "A")
    y = (rng.random(rows) < 0.5).astype(int)
    fair = np.where(rng.random(rows) < 0.85, y, 1 - y)
    biased = np.where((g == "B") & (rng.random(rows) < 0.4), 0, fair)  # B selected less
    return pd.DataFrame({"g": g, "y": y, "fair": fair, "biased": biased})


def test_the_gate_refuses_a_biased_challenger_and_passes_a_fair_one() -> None:
    from driftloop.gate import fairness_gate

    rows = holdout()
    spec = fairness_spec.FairnessSpec(sensitive=["g"], thresholds={
        "demographic_parity_difference": 0.1, "equalized_odds_ratio": 0.5})
    refused = fairness_gate.judge(Fixed("biased"), Fixed("fair"), rows, rows["y"], rows, spec)
    assert not refused.passed
    assert "g: demographic_parity_difference" in refused.reason
    evidence = refused.evidence["columns"]["g"]
    dpd = evidence["disparities"]["demographic_parity_difference"]
    low, high = dpd["challenger"]["ci_low"], dpd["challenger"]["ci_high"]
    assert low < dpd["challenger"]["value"] < high and dpd["champion"]["value"] < 0.1
    rate = evidence["groups"]["B"]["challenger"]["selection_rate"]
    assert rate["ci_low"] < rate["value"] < rate["ci_high"]
    assert evidence["groups"]["B"]["rows"] == int((rows["g"] == "B").sum())
    passed = fairness_gate.judge(Fixed("fair"), Fixed("biased"), rows, rows["y"], rows, spec)
    assert passed.passed, passed.reason
    # within the threshold, but worse than the champion by more than the margin
    mild = rows.assign(mild=np.where((rows["g"] == "B") & (np.arange(len(rows)) % 3 == 0), 0,
                                     rows["fair"]))
    loose = spec.model_copy(update={"thresholds": {"demographic_parity_difference": 0.5}})
    worse = fairness_gate.judge(Fixed("mild"), Fixed("fair"), mild, mild["y"], mild, loose)
    assert not worse.passed and "worse than the champion" in worse.reason


TRAIN_PY = """
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder


def make_model():
    columns = make_column_transformer((OneHotEncoder(), ["g"]), remainder="passthrough")
    return make_pipeline(columns, LogisticRegression())
"""


def test_retraining_on_the_biased_stream_promotes_only_a_fair_challenger(tmp_path: Path) -> None:
    spec = specs.overridden(
        SPEC, replace={"gate": {"enabled": specs.DELETE}},
        add={"gate": {"require": "not_worse", "holdout": "1 batch", "bootstrap": 200},
             "trainer": {"window": {"kind": "last", "size": "2 batches"}}})
    blind = write_project(tmp_path / "blind", spec)
    sees = write_project(tmp_path / "sees", specs.overridden(
        spec, replace={"trainer": {"function": "train:make_model"}},
        add={"fairness": {"model_inputs": ["g"]}}))
    (sees.base_dir / "train.py").write_text(TRAIN_PY)
    for project in (blind, sees):
        controller = tick.Controller(project)
        for index, frame in enumerate(fairness_data.biased_stream(batches=10, bias_at=5)):
            frame.to_csv(project.base_dir / "data" / f"{index:03}.csv", index=False)
            controller.tick()
    refused = [v for v in blind.store.versions.list(blind.name)
               if v.gate_report and not v.gate_report["fairness"]["passed"]]
    assert refused and not refused[0].gate_report["passed"]
    assert "refused: fairness: g: demographic_parity_difference" in refused[0].gate_report[
        "reason"]
    promoted = [v for v in sees.store.versions.list(sees.name)[1:]
                if v.gate_report and v.gate_report["passed"]]
    assert promoted and all(v.gate_report["fairness"]["passed"] for v in promoted)
    last = sees.store.findings.list(sees.name, responsible.FAIRNESS)[-1]
    assert last.value is not None and last.value < 0.1


def test_labels_sent_back_for_served_predictions_are_judged_by_group(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from driftloop.store import serving

    text = specs.overridden(SPEC, replace={"trainer": {"function": "train:make_model"}},
                            add={"fairness": {"model_inputs": ["g"]}})
    project = write_project(tmp_path, text)
    (tmp_path / "train.py").write_text(TRAIN_PY)
    frames = fairness_data.biased_stream(batches=2, rows=400, bias_at=1)
    frames[0].to_csv(tmp_path / "data" / "000.csv", index=False)
    controller = tick.Controller(project)
    controller.tick()
    model = controller.models.model_of(1)
    served = frames[1]
    predicted = model.predict(served[["x1", "x2", "g"]])
    store = serving.ServingStore(project.store)
    at = datetime(2024, 1, 1, tzinfo=UTC)
    store.add_predictions([
        serving.Prediction(f"p{i}", project.name, "champion", 1, None,
                           {"x1": row.x1, "x2": row.x2, "g": row.g}, int(p), None, at)
        for i, (row, p) in enumerate(zip(served.itertuples(), predicted, strict=True))])
    store.add_feedback(project.name, [(f"p{i}", int(y)) for i, y in enumerate(served["y"])],
                       actor="test")
    controller.tick()
    (found,) = [f for f in project.store.findings.list(project.name, responsible.FAIRNESS)
                if f.report["source"] == "feedback"]
    expected = fm.demographic_parity_difference(
        served["y"], predicted, sensitive_features=served["g"])
    assert found.value == pytest.approx(expected) and found.batch_id is None
