"""Training windows from evidence (`window: auto`), the gate's holdout refitted into the model,
amounts in the data's units, and specs derived from the data (`driftloop init --data`)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftloop.cli import calibrate
from driftloop.cli import project_commands as scaffold
from driftloop.controller import backtest, policy_replay
from driftloop.core import config
from driftloop.core.amount import Amount

BATCH = 100


def _switching(batches: int = 24, switch: int = 16, seed: int = 0) -> pd.DataFrame:
    """Two features; the label is x0 > 0 before batch `switch` and x0 < 0 from it on."""
    rng = np.random.default_rng(seed)
    rows = batches * BATCH
    x = rng.normal(size=(rows, 2))
    flipped = np.arange(rows) >= switch * BATCH
    y = np.where(flipped, x[:, 0] < 0, x[:, 0] > 0).astype(int)
    times = pd.date_range("2024-01-01", periods=rows, freq="36s", tz="UTC")  # a batch an hour
    return pd.DataFrame({"time": times, "x0": x[:, 0], "x1": x[:, 1], "y": y})


def _spec(**trainer: object) -> config.PipelineSpec:
    return config.PipelineSpec.model_validate({
        "name": "w", "source": {"kind": "files", "path": "x/*.csv"}, "target": "y",
        "timestamp": "time",
        "trainer": {"function": "sklearn.tree:DecisionTreeClassifier", "executor": "inline",
                    "params": {"max_depth": 3, "random_state": 0}, **trainer},
        "triggers": [{"kind": "volume", "every": "1 batch"}],
        "gate": {"enabled": False, "holdout": "1 batch"},
    })


def test_auto_window_picks_the_short_window_after_a_change_and_records_the_candidates(
    tmp_path: Path,
) -> None:
    frame = _switching()
    results = backtest.backtest(
        frame, _spec(window="auto"), {"auto": {}}, base_dir=tmp_path,
        every=timedelta(hours=1), warmup=timedelta(hours=4))
    auto = next(r for r in results if r.policy == "auto")
    fixed = next(r for r in results if r.policy == backtest.FIXED_WINDOW)
    # After the switch the 4-batch fixed window mixes both concepts for a while; auto follows.
    assert auto.score > fixed.score


def test_auto_window_stores_candidates_and_the_winner(tmp_path: Path) -> None:
    """One training at batch 20 of a stream whose concept switched at batch 18: the candidates
    are scored on batch 20 (held out), the winner is refitted with it."""
    frame = _switching(batches=20, switch=18)
    spec = backtest.policy_spec(_spec(window="auto"), {
        "triggers": [{"kind": "volume", "every": "19 batches"}],
        "gate": {"enabled": True, "require": "not_worse", "holdout": "1 batch"}})
    ends = backtest.batch_ends(frame, "time", timedelta(hours=1), timedelta(hours=1))
    replay = policy_replay.Replay(frame, spec, "auto", ends, tmp_path)
    for end in ends:
        replay.step(end)
    store = replay.store
    _, run = store.runs.list("w", status="succeeded")
    version = store.versions.list("w")[-1]
    assert version.run_id == run.id
    trials = store.runs.trials(run.id)
    sizes = [t.params["size"] for t in trials]
    # the holdout (batch 20) is past the switch at 18: the one-batch window knows it, the
    # longer ones mix in the old concept, so the search stops after two of those
    assert sizes == ["1 batch", "4 batches", "16 batches"]
    assert [t.params["rows"] for t in trials] == [100, 400, 1600]
    best = max(trials, key=lambda t: (t.score, t.params["rows"]))
    assert best.params["size"] == "1 batch"
    assert version.metrics["window"] == best.params["size"]
    # refitted with the holdout: the model saw batch 20 too
    assert version.metrics["train_rows"] == best.params["rows"] + BATCH
    assert version.metrics["holdout_rows"] == BATCH
    replay.finish()


def test_auto_window_goes_to_all_data_on_a_stable_stream(tmp_path: Path) -> None:
    frame = _switching(batches=40, switch=40)
    spec = backtest.policy_spec(_spec(window="auto"), {
        "triggers": [{"kind": "volume", "every": "39 batches"}]})
    ends = backtest.batch_ends(frame, "time", timedelta(hours=1), timedelta(hours=1))
    replay = policy_replay.Replay(frame, spec, "auto", ends, tmp_path)
    for end in ends:
        replay.step(end)
    _, run = replay.store.runs.list("w", status="succeeded")
    sizes = [t.params["size"] for t in replay.store.runs.trials(run.id)]
    assert sizes[-1] == "39 batches"  # no drift: longer windows keep helping, all are tried
    replay.finish()


def _replayed(frame: pd.DataFrame, spec: config.PipelineSpec, tmp_path: Path,
              warmup: int = 1) -> policy_replay.Replay:
    ends = backtest.batch_ends(frame, "time", timedelta(hours=1), timedelta(hours=warmup))
    replay = policy_replay.Replay(frame, spec, "p", ends, tmp_path)
    for end in ends:
        replay.step(end)
    return replay


@pytest.mark.parametrize("rechoose", ["on_change", "always"])
def test_a_routine_refresh_tries_no_window_longer_than_the_champions_grown(
    tmp_path: Path, rechoose: str
) -> None:
    """Volume triggers retrain every 5 batches (1, 6, 11, 16) and the concept switches at
    batch 9: the training at 11 chooses a short window; the one at 16 (nothing said that
    anything changed) tries none longer than that window grown by the batches since, unless
    told to choose again."""
    frame = _switching(batches=16, switch=8)  # batch ids count from 1: row 800 is batch 9
    spec = backtest.policy_spec(_spec(window={"kind": "auto", "rechoose": rechoose}), {
        "triggers": [{"kind": "volume", "every": "5 batches"}], "cooldown": 0,
        "gate": {"enabled": True, "require": "not_worse", "holdout": "1 batch"}})
    replay = _replayed(frame, spec, tmp_path)
    runs = sorted(replay.store.runs.list("w", status="succeeded"), key=lambda run: run.id)
    assert len(runs) == 4
    chosen = next(v for v in replay.store.versions.list("w") if v.run_id == runs[2].id)
    start = chosen.metrics["window_from_batch"]
    assert chosen.metrics["window"] in {"1 batch", "2 batches"} and start in {9, 10}
    longest = max(int(t.params["size"].split()[0]) for t in replay.store.runs.trials(runs[3].id))
    grown = 16 - start  # batches from `start` up to 15 (16 is the holdout)
    if rechoose == "on_change":
        assert longest == grown
    else:
        assert longest > grown  # longer candidates too: 8 batches are all of the new concept
    replay.finish()


def test_a_model_poor_from_its_first_live_batch_is_judged_against_its_validation(
    tmp_path: Path,
) -> None:
    """The first model validates at about 1.0 on the end of its warm-up and the concept flips
    with the first live batch: it has no earlier live batches to compare with, so the relative
    performance test compares that batch with the errors the gate measured, and fires at once."""
    frame = _switching(batches=14, switch=10)
    spec = backtest.policy_spec(_spec(), {
        "triggers": [{"kind": "performance", "window": "1 batch"}], "cooldown": 0,
        "gate": {"enabled": True, "require": "not_worse", "holdout": "1 batch"}})
    replay = _replayed(frame, spec, tmp_path, warmup=10)
    assert [step.retrained for step in replay.steps[:2]] == [True, True]
    decision = replay.store.decisions.list("w")[1]
    result = next(r for r in decision.evidence["policy"]["results"] if r["kind"] == "performance")
    assert result["fired"] and result["evidence"]["reference_rows"] == 200  # the holdout
    replay.finish()


def test_after_a_change_a_share_of_the_window_counts_from_the_change(tmp_path: Path) -> None:
    """The concept flips at batch 12 (after a 10-batch warm-up, which is batch 1). The
    performance test fires on it and the retraining there knows one batch of the new concept:
    `every: 150%` then counts the rows since the change, not the whole window the model was
    trained on, so the next training follows within two batches instead of fifteen."""
    frame = _switching(batches=30, switch=20)
    spec = backtest.policy_spec(_spec(window="auto"), {
        "triggers": [{"kind": "performance", "window": "1 batch"},
                     {"kind": "volume", "every": "150%"}], "cooldown": 0,
        "gate": {"enabled": True, "require": "not_worse", "holdout": "1 batch"}})
    replay = _replayed(frame, spec, tmp_path, warmup=10)
    versions = replay.store.versions.list("w")
    changed = next(v for v in versions if "change_from_batch" in v.metrics)
    assert changed.metrics["change_from_batch"] == 12
    assert changed.metrics["rows_since_change"] == BATCH  # the holdout, refitted into it
    trained = [i + 1 for i, step in enumerate(replay.steps) if step.retrained]
    after = [b for b in trained if b > 12]
    assert trained[:2] == [1, 12] and after and after[0] <= 14
    follow = next(v for v in versions if v.version == changed.version + 1)
    assert follow.metrics["change_from_batch"] == 12  # carried through the routine refresh
    replay.finish()


def test_gate_refit_keeps_the_newest_rows_and_not_worse_promotes_an_equal_model() -> None:
    from sklearn.dummy import DummyClassifier

    from driftloop.gate import gate

    X, y = np.zeros((100, 1)), np.array([0, 1] * 50)
    model = DummyClassifier(strategy="most_frequent").fit(X, y)
    spec = config.GateSpec(require="not_worse", bootstrap=200)
    assert gate.evaluate_gate(model, model, X, y, spec, "classification").passed
    better = config.GateSpec(bootstrap=200)
    assert not gate.evaluate_gate(model, model, X, y, better, "classification").passed
    worse = DummyClassifier(strategy="constant", constant=1).fit(X, np.ones(100))
    right = np.zeros(100)
    report = gate.evaluate_gate(worse, model, X, right, spec, "classification")
    assert not report.passed and "significantly worse" in report.reason


@pytest.mark.parametrize(("text", "unit", "value"), [
    ("10 batches", "batches", 10), ("1 batch", "batches", 1), (480, "rows", 480),
    ("480 rows", "rows", 480), ("3d", "seconds", 3 * 86400), ("25%", "share", 0.25),
])
def test_amounts_round_trip_through_the_spec(text: object, unit: str, value: float) -> None:
    amount = Amount.parse(text)
    assert (amount.unit, amount.value) == (unit, value)
    trigger = config.VolumeTrigger(every=text)
    assert config.VolumeTrigger.model_validate(trigger.model_dump(mode="json")) == trigger


def test_a_bad_amount_names_the_field_and_the_forms() -> None:
    text = """name: p
source: {kind: files, path: d/*.csv}
target: y
trainer: {function: "train:make_model"}
cooldown: 3 weeks
"""
    with pytest.raises(config.errors.ConfigError, match=r"<spec>:5: cooldown: .*'10 batches'"):
        config.parse_spec(text)


def test_old_spellings_still_load() -> None:
    spec = config.parse_spec("""name: p
source: {kind: files, path: d/*.csv}
target: y
trainer: {function: "train:make_model"}
triggers: [{kind: volume, rows: 480}, {kind: performance, floor: 0.55, window: 48}]
cooldown: 3d
gate: {holdout_rows: 96}
""")
    assert spec.gate.holdout == Amount(96, "rows")
    assert spec.cooldown == Amount(3 * 86400, "seconds")
    assert spec.triggers[0].amount == Amount(480, "rows")  # type: ignore[union-attr]


def test_calibration_writes_a_spec_in_batches_with_its_reasons(tmp_path: Path) -> None:
    frame = _switching(batches=2)
    text = calibrate.spec_text(frame, name="p", target="y", timestamp="time")
    spec = config.parse_spec(text)
    assert spec.task == "classification" and spec.trainer.window.kind == "auto"
    assert spec.gate.enabled and spec.gate.require == "not_worse"
    assert "200 rows a batch" in text  # the whole sample is one batch
    numeric = frame.assign(y=frame["x1"] * 2.5)
    regression = config.parse_spec(calibrate.spec_text(numeric, name="r", target="y",
                                                       timestamp="time"))
    assert regression.task == "regression" and regression.gate.metric == "rmse"
    with pytest.raises(ValueError, match="did you mean 'y'"):
        calibrate.describe(frame, "Y", "time")


def test_init_from_data_makes_a_project_that_checks(tmp_path: Path) -> None:
    data = tmp_path / "sample.csv"
    _switching(batches=3).to_csv(data, index=False)
    scaffold.init(tmp_path / "p", weeks=6, data_file=data, target="y", timestamp=None)
    spec = config.load_spec(tmp_path / "p" / "driftloop.yaml")
    assert spec.timestamp == "time" and (tmp_path / "p" / "data" / "sample.csv").exists()
    assert (tmp_path / "p" / "train.py").exists()
