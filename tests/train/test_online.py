"""Online learning: the locked learner under concurrent predict + learn, snapshot cadence,
rollback of a worse snapshot, ADWIN on the error stream, the online backtest (deterministic and
equal to a bare river loop under the same daily test-then-train protocol), partial_fit
learners, and the allow-listed pickle format for river models."""

from __future__ import annotations

import pickle
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from river import tree

from driftloop.controller import backtest, online_session, policy_replay
from driftloop.controller import project as projects
from driftloop.core import clock as clocks
from driftloop.core import config, errors
from driftloop.data import elec2
from driftloop.data.sources import base as sources
from driftloop.store import artifacts, metadata
from driftloop.train import online as learners

FEATURES = list(elec2.FEATURES)
HAT = "river.tree:HoeffdingAdaptiveTreeClassifier"


class TwoStep:
    """A river-style learner whose update writes two fields with a thread switch in between:
    a reader that is not kept out during `learn_one` sees them differ."""

    def __init__(self) -> None:
        self.a = 0
        self.b = 0

    def learn_one(self, x: dict[str, Any], y: Any) -> None:
        self.a += 1
        time.sleep(0)  # give other threads the chance to run mid-update
        self.b += 1

    def predict_one(self, x: dict[str, Any]) -> int:
        return int(self.a != self.b)  # 1 = saw a half-done update

    def predict_proba_one(self, x: dict[str, Any]) -> dict[int, float]:
        time.sleep(0)
        return {0: float(self.a == self.b), 1: float(self.a != self.b)}


def hammer(predict: Any, learn: Any, seconds: float = 1.0) -> list[int]:
    """Four threads predict while one learns; the predictions they saw."""
    seen: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.extend(predict())

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        learn()
    stop.set()
    for thread in threads:
        thread.join()
    return seen


def test_predictions_never_see_half_an_update() -> None:
    frame = pd.DataFrame({"x": [0.5, 0.1]})
    model = learners.OnlineModel(TwoStep(), ["x"])
    model.learn_many([{"x": 0.5}], [0])

    def predict() -> list[int]:
        values, proba, classes = model.predict_and_proba(frame)
        assert proba is not None and classes == [0]
        return [int(v) for v in values] + [int(row[0] != 1.0) for row in proba]

    seen = hammer(predict, lambda: model.learn_many([{"x": 0.5}] * 50, [0] * 50))
    assert len(seen) > 100 and model.n_learned_ > 100
    assert set(seen) == {0}
    # The same hammering without the lock does see half-done updates: the test can fail.
    bare = TwoStep()
    unlocked = hammer(lambda: [bare.predict_one({})], lambda: bare.learn_one({}, 0))
    assert 1 in unlocked


def project_for(tmp_path: Path, online_spec: dict[str, Any], clock: clocks.FakeClock
                ) -> projects.Project:
    spec = config.PipelineSpec.model_validate({
        "name": "stream", "source": {"kind": "files", "path": "none/*.csv"},
        "target": "y", "online": online_spec,
    })
    store = metadata.MetadataStore.open("sqlite://", clock=clock)
    store.pipelines.ensure("stream", spec.model_dump(mode="json"))
    return projects.Project(spec=spec, base_dir=tmp_path, store=store,
                            artifacts=artifacts.ArtifactStore(str(tmp_path / "artifacts")),
                            source=sources.build_source(spec.source, tmp_path), clock=clock)


def concept(n: int, flipped: bool, seed: int) -> list[online_session.Event]:
    """y = x > 0.5 (or its opposite) on uniform x."""
    xs = np.random.default_rng(seed).random(n)
    return [online_session.Event({"x": float(x)}, int((x > 0.5) != flipped)) for x in xs]


def test_snapshots_on_a_cadence_of_events_and_of_time(tmp_path: Path) -> None:
    clock = clocks.FakeClock(datetime(2024, 1, 1, tzinfo=UTC))
    project = project_for(tmp_path, {
        "learner": "river.naive_bayes:GaussianNB",
        "checkpoint": {"every_events": 100, "every": "10m", "window": 50},
        "drift": {"detector": "none"}}, clock)
    session = online_session.OnlineSession(project, ["x"], "test")
    events = concept(350, False, 0)
    for start in range(0, 350, 50):
        session.learn(events[start:start + 50])
    versions = project.store.versions.list("stream")
    # The first snapshot as soon as there is something to serve, then every 100 events.
    assert [v.metrics["events_learned"] for v in versions] == [50, 150, 250, 350]
    assert project.store.aliases.get("stream", "champion") == 4
    assert versions[-1].metrics["accuracy"] > 0.9 and versions[-1].metrics["live_rows"] == 50
    assert versions[-1].artifact_uri.endswith(".pickle")
    stored = project.artifacts.get_model(versions[-1].artifact_uri, versions[-1].sha256)
    assert stored.n_learned_ == 350 and stored.predict_many([{"x": 0.9}]) == [1]

    session.learn(concept(10, False, 1))  # 10 events: not due by count ...
    assert len(project.store.versions.list("stream")) == 4
    clock.advance(timedelta(minutes=11))  # ... but by time
    session.learn(concept(1, False, 2))
    assert len(project.store.versions.list("stream")) == 5
    project.close()


def test_a_worse_snapshot_is_rolled_back_then_a_changed_stream_is_accepted(
    tmp_path: Path,
) -> None:
    clock = clocks.FakeClock(datetime(2024, 1, 1, tzinfo=UTC))
    project = project_for(tmp_path, {
        "learner": "river.naive_bayes:GaussianNB",
        "checkpoint": {"every_events": 200, "window": 100, "tolerance": 0.1},
        "drift": {"detector": "none"}}, clock)
    session = online_session.OnlineSession(project, ["x"], "test")
    session.learn(concept(200, False, 0))  # v1: the first snapshot
    session.learn(concept(200, False, 1))  # v2: accurate
    good = project.store.versions.get("stream", 2)
    assert good.metrics["accuracy"] > 0.9

    report = session.learn(concept(200, True, 2))  # the concept flips: v3 is much worse
    (checkpoint,) = report.checkpoints
    assert checkpoint.version.version == 3 and not checkpoint.promoted
    assert checkpoint.metric is not None and checkpoint.metric < 0.6
    rollback = checkpoint.decision
    assert rollback is not None and rollback.kind == "online" and rollback.fired
    assert rollback.evidence["action"] == "rollback"
    assert rollback.evidence["last_good"] == 2 and rollback.evidence["version"] == 3
    assert rollback.evidence["last_good_metric"] == good.metrics["accuracy"]
    assert project.store.aliases.get("stream", "champion") == 2
    assert session.model.n_learned_ == 400  # back to the state of v2

    # The restored snapshot does no better on the flipped stream: accept, do not loop.
    report = session.learn(concept(200, True, 3))
    (checkpoint,) = report.checkpoints
    assert checkpoint.promoted and checkpoint.decision is not None
    assert checkpoint.decision.evidence["action"] == "accept"
    assert project.store.aliases.get("stream", "champion") == 4
    kinds = [d.evidence["action"] for d in project.store.decisions.list("stream", kind="online")]
    assert sorted(kinds) == ["accept", "rollback"]
    project.close()


@pytest.mark.parametrize("action", ["reset", "retrain"])
def test_adwin_on_the_error_stream_records_a_decision_and_acts(
    tmp_path: Path, action: str
) -> None:
    clock = clocks.FakeClock(datetime(2024, 1, 1, tzinfo=UTC))
    project = project_for(tmp_path, {
        "learner": "river.naive_bayes:GaussianNB",
        "checkpoint": {"every_events": None, "tolerance": 1.0},
        "drift": {"detector": "adwin", "action": action, "window": 300}}, clock)
    session = online_session.OnlineSession(project, ["x"], "test")
    stable, flipped = concept(1500, False, 0), concept(1000, True, 1)
    events = stable + flipped
    for start in range(0, len(events), 100):
        session.learn(events[start:start + 100])
    decisions = project.store.decisions.list("stream", kind="online")
    assert decisions, "ADWIN saw no change"
    first = decisions[-1] if decisions[0].id > decisions[-1].id else decisions[0]
    evidence = first.evidence
    assert evidence["action"] == "drift" and evidence["then"] == action and first.fired
    assert evidence["detector"] == {"kind": "adwin"}
    # Errors are counted from the first scored event (the first 100 are not scored).
    change = len(stable) - 100
    assert change < evidence["positions"][0] < change + 300
    # After the action the learner follows the new concept.
    assert session.model.predict_many([{"x": 0.9}, {"x": 0.1}]) == [0, 1]
    if action == "reset":
        assert session.model.n_learned_ < len(flipped)
    project.close()


def elec2_days(days: int) -> pd.DataFrame:
    return elec2.load_elec2().iloc[: days * elec2.ROWS_PER_DAY]


def online_policy(frame: pd.DataFrame, overrides: dict[str, Any], tmp_path: Path
                  ) -> policy_replay.PolicyResult:
    spec = config.PipelineSpec.model_validate({
        "name": "elec", "source": {"path": "x"}, "target": "class", "timestamp": "time",
        "trainer": {"function": "driftloop.train.models:hist_gradient_boosting"},
    })
    spec = backtest.policy_spec(spec, {"online": overrides})
    ends = backtest.batch_ends(frame, "time", timedelta(days=1), timedelta(days=30))
    return policy_replay.replay_policy(frame, spec, "online", ends, tmp_path)


def test_online_backtest_is_deterministic(tmp_path: Path) -> None:
    frame = elec2_days(60)
    policy = {"learner": HAT, "params": {"seed": 7}, "checkpoint": {"every_events": 300}}
    first, second = (online_policy(frame, policy, tmp_path) for _ in range(2))
    assert first.score == second.score and first.trainings == second.trainings
    assert [s.metric for s in first.steps] == [s.metric for s in second.steps]
    assert first.trainings >= 5 and first.cpu_seconds > 0
    # A snapshot on the cadence, plus the last one the replay takes at its end.
    assert sum(s.retrained for s in first.steps) in (first.trainings - 1, first.trainings)


def test_online_policy_matches_a_bare_river_loop(tmp_path: Path) -> None:
    """Each day scored by the learner as it was at the start of the day, then learned: the
    driftloop policy and river alone make the very same predictions."""
    frame = elec2_days(70)
    result = online_policy(frame, {
        "learner": HAT, "params": {"seed": 42},
        "checkpoint": {"every_events": 500, "tolerance": 1.0}, "drift": {"detector": "none"},
    }, tmp_path)

    model = tree.HoeffdingAdaptiveTreeClassifier(seed=42)
    rows = learners.records_of(frame, FEATURES)
    labels = frame["class"].tolist()
    warm = 30 * elec2.ROWS_PER_DAY
    for x, y in zip(rows[:warm], labels[:warm], strict=True):
        model.learn_one(x, y)
    daily = []
    for start in range(warm, len(rows), elec2.ROWS_PER_DAY):
        xs, ys = rows[start:start + elec2.ROWS_PER_DAY], labels[start:start + elec2.ROWS_PER_DAY]
        daily.append(float(np.mean([model.predict_one(x) == y for x, y in zip(xs, ys,
                                                                              strict=True)])))
        for x, y in zip(xs, ys, strict=True):
            model.learn_one(x, y)
    ours = [s.metric for s in result.steps if s.metric is not None]
    assert ours == daily
    assert result.score == pytest.approx(float(np.mean(daily)), abs=1e-12)


def sgd_learned(tmp_path: Path) -> learners.OnlineModel:
    """A partial_fit learner in mini-batches of 32, after 1000 events (992 learned)."""
    spec = config.OnlineSpec(learner="sklearn.linear_model:SGDClassifier",
                             params={"loss": "log_loss", "random_state": 0}, batch_size=32)
    model = learners.build_model(spec, ["x"], tmp_path)
    events = concept(1000, False, 0)
    model.learn_many([e.features for e in events], [e.label for e in events])
    return model


def test_partial_fit_learner_in_mini_batches_stored_with_skops(tmp_path: Path) -> None:
    model = sgd_learned(tmp_path)
    assert model.n_learned_ == 992 and len(model.pending) == 8  # whole mini-batches only
    frame = pd.DataFrame({"x": [0.05, 0.95]})
    values, proba, classes = model.predict_and_proba(frame)
    assert values == [0, 1] and classes == [0, 1] and proba is not None
    store = artifacts.ArtifactStore(str(tmp_path / "a"))
    stored = store.put_model(model.snapshot(), model.artifact_format)
    assert stored.uri.endswith(".skops")
    loaded = store.get_model(stored.uri, stored.sha256)
    assert list(loaded.predict(frame)) == [0, 1]
    with pytest.raises(errors.TrainingError, match=r"online\.classes"):
        model.learn_many([{"x": 0.5}] * 32, [2] * 32)


def test_a_model_stored_with_the_old_attribute_names_loads(tmp_path: Path) -> None:
    """Files stored when `learner`, `pending` and the internal flags ended in `_` still load."""
    model = sgd_learned(tmp_path)
    old = model.snapshot()
    for name in ("learner", "pending", "_river", "_fitted"):
        old.__dict__[name.lstrip("_") + "_"] = old.__dict__.pop(name)
    store = artifacts.ArtifactStore(str(tmp_path / "a"))
    stored = store.put_model(old, "skops")
    loaded = store.get_model(stored.uri, stored.sha256)
    frame = pd.DataFrame({"x": [0.05, 0.95]})
    assert list(loaded.predict(frame)) == list(model.predict(frame)) == [0, 1]
    assert len(loaded.pending) == 8 and loaded.n_learned_ == 992


def test_river_models_are_stored_as_allow_listed_verified_pickle(tmp_path: Path) -> None:
    model = learners.OnlineModel(tree.HoeffdingAdaptiveTreeClassifier(seed=1), FEATURES)
    frame = elec2_days(10)
    model.learn_many(learners.records_of(frame, FEATURES), frame["class"].tolist())
    store = artifacts.ArtifactStore(str(tmp_path / "a"))
    stored = store.put_model(model.snapshot(), model.artifact_format)
    loaded = store.get_model(stored.uri, stored.sha256)
    assert loaded.predict_many(learners.records_of(frame, FEATURES)) == model.predict_many(
        learners.records_of(frame, FEATURES))
    path = Path(stored.uri.removeprefix("file://"))
    path.write_bytes(pickle.dumps(model, protocol=5) + b"x")  # tampered: hash mismatch
    with pytest.raises(errors.IntegrityError, match="does not match its recorded hash"):
        store.get_model(stored.uri, stored.sha256)
    evil = store.put_bytes(pickle.dumps(print), suffix=".pickle")  # even with a good hash
    with pytest.raises(errors.IntegrityError, match="not an allowed type"):
        store.get_model(evil.uri, evil.sha256)


def test_online_spec_is_checked() -> None:
    base = {"name": "p", "source": {"path": "x"}, "target": "y"}
    spec = config.PipelineSpec.model_validate({**base, "online": {"learner": HAT}})
    assert spec.online is not None and spec.trainer.function == HAT
    with pytest.raises(errors.ConfigError, match="prequential accuracy"):
        config.parse_spec("name: p\nsource: {path: x}\ntarget: y\ntask: regression\n"
                          f"online: {{learner: '{HAT}'}}\n")
    with pytest.raises(errors.ConfigError, match=r"online\.checkpoint\.tolerance"):
        config.parse_spec("name: p\nsource: {path: x}\ntarget: y\n"
                          f"online: {{learner: '{HAT}', checkpoint: {{tolerance: 2}}}}\n")
    with pytest.raises(errors.ConfigError, match="neither `learn_one`"):
        learners.build_model(config.OnlineSpec(learner="sklearn.tree:DecisionTreeClassifier"),
                             ["x"], Path("."))
