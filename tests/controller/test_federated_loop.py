"""The `trainer.federated` mode in the loop: each region's controller trains on its own rows,
only parameters reach the coordinator, and the global model is gated, versioned and promoted
in every region with its lineage (rounds, regions, row counts)."""

from __future__ import annotations

import threading
from multiprocessing import Pipe
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import specs

from driftloop.controller import federated_backtest, federation, tick
from driftloop.controller import project as projects
from driftloop.core import config, errors
from driftloop.data.sources import base as sources
from driftloop.store import metadata
from driftloop.train import federated
from driftloop.train import federated_rounds as rounds

SPEC = """\
name: churn
source: {{kind: files, path: "unused/*.csv"}}
target: y
trainer:
  function: "sklearn.linear_model:SGDClassifier"
  params: {{loss: log_loss, random_state: 0}}
  executor: inline
  federated: {{rounds: 4, min_regions: {min_regions}}}
triggers: [{{kind: volume, rows: 1}}]
regions:
  - {{name: eu, store: "sqlite:///eu/meta.db", artifacts: eu/artifacts,
     source: {{kind: files, path: "eu/in/*.csv"}}}}
  - {{name: us, store: "sqlite:///us/meta.db", artifacts: us/artifacts,
     source: {{kind: files, path: "us/in/*.csv"}}}}
"""
ROWS = {"eu": 240, "us": 600}


def write_day(folder: Path, region: str, day: int, rows: int) -> None:
    rng = np.random.default_rng(day * 10 + len(region))
    shift = 0.0 if region == "eu" else 1.0
    x = rng.normal(shift, 1, size=(rows, 2))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": (x.sum(axis=1) > 2 * shift)})
    (folder / region / "in").mkdir(parents=True, exist_ok=True)
    frame.astype({"y": int}).to_csv(folder / region / "in" / f"day{day}.csv", index=False)


def project_folder(folder: Path, regions: tuple[str, ...] = ("eu", "us"),
                   min_regions: int = 2) -> Path:
    for region in regions:
        write_day(folder, region, 1, ROWS[region])
    (folder / "driftloop.yaml").write_text(SPEC.format(min_regions=min_regions))
    return folder / "driftloop.yaml"


@pytest.mark.parametrize(("trainer", "regions", "problem"), [
    ("federated: {rounds: 0}", True,
     "driftloop.yaml:7: trainer.federated.rounds: Input should be greater than or equal to 1"),
    ("segment_by: a\n  federated: {rounds: 2}", True,
     "driftloop.yaml:8: trainer.federated: `segment_by` does not combine with `federated`"),
    ("federated: {rounds: 2}", False,
     "driftloop.yaml:7: trainer.federated: federated training needs `regions:` (at least 2"),
    ("federated: {rounds: 2, min_regions: 3}", True,
     "driftloop.yaml:7: trainer.federated: min_regions 3 is more than the 2 regions"),
])
def test_a_spec_that_cannot_train_federated_is_refused_at_its_line(
    tmp_path: Path, trainer: str, regions: bool, problem: str,
) -> None:
    text = specs.edited(SPEC.format(min_regions=2),
                        {"executor: inline\n  federated: {rounds: 4, min_regions: 2}": trainer})
    if not regions:
        text = text[: text.index("regions:")]
    (tmp_path / "driftloop.yaml").write_text(text)
    with pytest.raises(errors.ConfigError) as caught:
        config.load_spec(tmp_path / "driftloop.yaml")
    assert problem in str(caught.value)


def test_a_plain_tick_of_a_federated_pipeline_leaves_the_training_to_the_round(
    tmp_path: Path,
) -> None:
    spec = project_folder(tmp_path)
    project = projects.open_project(spec, region="eu")
    result = tick.Controller(project).tick()
    assert result.decision is not None and result.decision.fired
    assert result.outcome is None and project.store.runs.list("churn") == []
    assert tick.Controller(project).tick().outcome is None  # it still waits, untried
    project.close()


class Spy:
    """An aggregator that keeps what it was given."""

    def __init__(self) -> None:
        self.seen: list[federated.Update] = []

    def __call__(self, updates: Any) -> dict[str, Any]:
        self.seen.extend(updates)
        return federated.aggregate(updates)


def test_a_round_across_region_processes_serves_the_global_model_in_each_region(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = project_folder(tmp_path)
    spy = Spy()
    with monkeypatch.context() as patched:  # the coordinator opens no region's store or source
        def refuse(*_args: Any, **_kwargs: Any) -> Any:
            raise AssertionError("the coordinator opened a region's store or source")
        patched.setattr(metadata.MetadataStore, "open", classmethod(refuse))
        patched.setattr(sources, "build_source", refuse)
        done = federation.run_round(spec, aggregator=spy)
    assert done.summary.aborted is None and done.summary.rounds == 4
    assert set(done.summary.joined) == {"eu", "us"}
    # each region trained on its own training rows (the newest fifth is its gate's holdout)
    assert done.summary.joined == {"eu": 192, "us": 480}
    # what reached the aggregator: parameter arrays whose shapes do not depend on the rows
    assert len(spy.seen) == 4 * 2
    for update in spy.seen:
        assert {k: v.shape for k, v in update.params.items()} == {
            "coef": (1, 2), "intercept": (1,), "steps": (1,)}
    models = []
    for region in ("eu", "us"):
        project = projects.open_project(spec, region=region)
        (version,) = project.store.versions.list("churn")
        assert done.regions[region].version == 1 and done.regions[region].promoted
        assert project.store.aliases.get("churn", "champion") == 1
        assert version.metrics["federated_rounds"] == 4
        assert version.metrics["federated_rows.eu"] == 192
        assert version.metrics["federated_rows.us"] == 480
        batches = project.store.batches.list("churn")
        assert [b.rows for b in batches] == [ROWS[region]]  # its own data only
        assert all(f"/{region}/in/" in b.source_uri for b in batches)
        models.append(project.artifacts.get_model(version.artifact_uri, version.sha256))
        project.close()
    eu, us = (m[-1] for m in models)  # one global model, gated in each region
    np.testing.assert_array_equal(eu.coef_, us.coef_)
    np.testing.assert_array_equal(models[0][0].mean_, models[1][0].mean_)


def workers_for(spec: Path) -> dict[str, federation.RegionWorker]:
    def build(region: str) -> federation.RegionWorker:
        def make(executor: Any) -> tick.Controller:
            return tick.Controller(projects.open_project(spec, region=region),
                                   executor=executor)
        return federation.RegionWorker(region, make)
    return {region: build(region) for region in ("eu", "us")}


def test_a_region_that_does_not_train_sits_the_round_out_and_the_round_waits(
    tmp_path: Path,
) -> None:
    spec = project_folder(tmp_path, regions=("eu",))  # us has no data yet
    workers = workers_for(spec)
    rules = config.load_spec(spec).trainer.federated
    assert rules is not None
    try:
        summary, results = federation.tick_regions(workers, rules, 60, lambda c: c.tick())
        assert summary.declined == {"us": "its policy did not fire and no decision waits"}
        assert summary.aborted == "1 region(s) trained this round (eu); min_regions is 2"
        eu = results["eu"]
        assert eu is not None and eu.outcome is not None and eu.outcome.version is None
        assert "min_regions is 2" in eu.outcome.reason
        write_day(tmp_path, "us", 1, ROWS["us"])
        summary, results = federation.tick_regions(workers, rules, 60, lambda c: c.tick())
        assert summary.aborted is None and set(summary.joined) == {"eu", "us"}
        for region in ("eu", "us"):  # eu's waiting decision trained in this round
            outcome = results[region].outcome  # type: ignore[union-attr]
            assert outcome is not None and outcome.version is not None and outcome.promoted
    finally:
        for worker in workers.values():
            worker.start(lambda controller, _executor: controller.project.close())
            worker.result()
            worker.close()


@pytest.mark.parametrize(("message", "refused"), [
    (pd.DataFrame({"a": [1.0]}), "sent a DataFrame; expected Join or Decline"),
    (rounds.Join(federated.Update(1, {"sum": np.array(["row text"], dtype=object)})),
     "sent something other than parameter arrays"),
])
def test_the_coordinator_takes_parameters_only(message: Any, refused: str) -> None:
    mine, theirs = Pipe()
    sender = threading.Thread(target=theirs.send, args=(message,))
    sender.start()
    summary = rounds.coordinate({"eu": mine}, rounds=1, min_regions=1, timeout=10)
    sender.join()
    assert refused in summary.declined["eu"] and summary.aborted is not None


def test_the_backtest_replays_the_regions_three_ways(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    times = pd.date_range("2024-01-01", periods=8 * 24, freq="h", tz="UTC")
    frames = {}
    for region, shift in (("eu", 0.0), ("us", 1.0)):
        x = rng.normal(shift, 1, size=(len(times), 2))
        frames[region] = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "time": times,
                                       "y": (x.sum(axis=1) > 2 * shift).astype(int)})
    text = specs.overridden(SPEC.format(min_regions=2), add={"timestamp": "time"})
    spec = config.parse_spec(text)
    ends = list(pd.date_range("2024-01-03", periods=6, freq="D", tz="UTC"))
    results = federated_backtest.compare(frames, spec, ends, tmp_path)
    assert set(results) == set(federated_backtest.MODES)
    assert set(results["federated"]) == {"eu", "us"} and set(results["pooled"]) == {"all"}
    for region, replay in results["federated"].items():
        assert replay.trainings == results["per-region"][region].trainings == len(ends)
        assert 0.6 < replay.score <= 1.0
    assert 0.6 < federated_backtest.overall(results["pooled"]) <= 1.0


def test_a_regressor_trains_federated_too(tmp_path: Path) -> None:
    spec = project_folder(tmp_path)
    specs.override(spec, replace={"trainer": {"function": "sklearn.linear_model:SGDRegressor",
                                              "params": {"loss": specs.DELETE}}},
                   add={"task": "regression"})
    workers = workers_for(spec)
    rules = config.load_spec(spec).trainer.federated
    assert rules is not None
    try:
        summary, results = federation.tick_regions(workers, rules, 60, lambda c: c.tick())
        assert summary.aborted is None and summary.rounds == 4
        for result in results.values():
            assert result is not None and result.outcome is not None
            assert result.outcome.version is not None
            assert result.outcome.version.metrics["federated_regions"] == 2
    finally:
        for worker in workers.values():
            worker.start(lambda controller, _executor: controller.project.close())
            worker.result()
            worker.close()


def test_a_round_that_did_not_run_is_no_failed_attempt_of_the_waiting_region(
    tmp_path: Path,
) -> None:
    from driftloop.controller import attempts

    spec = project_folder(tmp_path, regions=("eu",))  # us has no data for a while
    workers = workers_for(spec)
    rules = config.load_spec(spec).trainer.federated
    assert rules is not None
    try:
        for _ in range(attempts.MAX_ATTEMPTS + 1):  # more rounds than a trainer may fail
            summary, results = federation.tick_regions(workers, rules, 60, lambda c: c.tick())
            assert summary.aborted is not None and set(summary.joined) == {"eu"}
            eu = results["eu"]
            assert eu is not None and eu.outcome is not None and eu.outcome.version is None
            assert "postponed" in eu.outcome.reason and "min_regions is 2" in eu.outcome.reason
        store = metadata.MetadataStore.open(f"sqlite:///{tmp_path / 'eu' / 'meta.db'}")
        runs = store.runs.list("churn")
        assert [run.status for run in runs] == ["postponed"] * (attempts.MAX_ATTEMPTS + 1)
        assert attempts.latest_give_up(store, "churn") is None
        store.close()
        write_day(tmp_path, "us", 1, ROWS["us"])
        summary, results = federation.tick_regions(workers, rules, 60, lambda c: c.tick())
        assert summary.aborted is None and set(summary.joined) == {"eu", "us"}
        outcome = results["eu"].outcome  # type: ignore[union-attr]
        assert outcome is not None and outcome.version is not None  # eu's decision trained
    finally:
        for worker in workers.values():
            worker.start(lambda controller, _executor: controller.project.close())
            worker.result()
            worker.close()
