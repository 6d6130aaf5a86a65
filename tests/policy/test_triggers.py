"""Triggers and the policy that combines them (cooldown, bootstrap, evidence)."""

from __future__ import annotations

import json
import typing
from datetime import UTC, datetime, timedelta

import pytest

from driftloop.core import config, errors
from driftloop.policy import policy, signals, triggers

NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)


def _signals(**changes: typing.Any) -> signals.Signals:
    return signals.Signals(now=NOW, **changes)


def test_every_spec_kind_has_a_registered_trigger() -> None:
    union = typing.get_args(typing.get_args(config.TriggerSpec)[0])
    kinds = {typing.get_args(model.model_fields["kind"].annotation)[0] for model in union}
    assert kinds == set(triggers.Trigger.registry)
    assert isinstance(triggers.build_trigger(config.DriftTrigger()), triggers.DriftTrigger)
    built = triggers.build_trigger(config.ScheduleTrigger(cron="0 3 * * *", timezone="Asia/Tokyo"))
    assert isinstance(built, triggers.ScheduleTrigger)
    assert built.timezone == "Asia/Tokyo"


def test_subclass_registers_itself() -> None:
    class Nightly(triggers.Trigger):
        kind = "test-nightly"

        @classmethod
        def from_spec(cls, spec: typing.Any) -> Nightly:
            return cls()

        def evaluate(self, signals: signals.Signals) -> signals.TriggerResult:
            return self.result(True, "always")

    try:
        spec = type("Spec", (), {"kind": "test-nightly"})()
        assert isinstance(triggers.build_trigger(spec), Nightly)
    finally:
        del triggers.Trigger.registry["test-nightly"]
    with pytest.raises(errors.ConfigError, match="unknown kind 'test-nightly'"):
        triggers.build_trigger(spec)


def test_drift_trigger_fires_on_data_or_concept_drift() -> None:
    trigger = triggers.DriftTrigger()
    report = {"dataset_drift": True, "drifted_share": 0.5, "columns": []}
    data = trigger.evaluate(_signals(drift=report))
    assert data.fired
    assert "50% of columns drifted" in data.reason
    assert data.evidence["dataset_drift"] is True
    concept = trigger.evaluate(_signals(concept_drift=True))
    assert concept.fired
    assert "concept drift" in concept.reason
    calm = trigger.evaluate(_signals(drift={"dataset_drift": False, "drifted_share": 0.1}))
    assert not calm.fired
    assert "10%" in calm.reason
    assert not trigger.evaluate(_signals()).fired


@pytest.mark.parametrize(("live", "rows", "champion", "fired"), [
    (0.70, 600, 0.90, True),   # below the floor
    (0.82, 600, 0.90, True),   # above the floor but 0.08 below the champion's validation
    (0.88, 600, 0.90, False),  # within both
    (0.60, 400, 0.90, False),  # too few rows to judge
    (0.82, 600, None, False),  # no champion score: only the floor applies
])
def test_performance_trigger_greater_is_better(live: float, rows: int,
                                               champion: float | None, fired: bool) -> None:
    trigger = triggers.PerformanceTrigger(metric="accuracy", floor=0.75, drop=0.05, window=500)
    result = trigger.evaluate(_signals(live_metric=live, live_rows=rows, champion_metric=champion))
    assert result.fired is fired
    assert result.evidence["live_metric"] == live


@pytest.mark.parametrize(("live", "fired"), [(0.40, False), (0.56, True), (0.80, True)])
def test_performance_trigger_lower_is_better_flips(live: float, fired: bool) -> None:
    trigger = triggers.PerformanceTrigger(metric="log_loss", floor=0.7, drop=0.1, window=100)
    result = trigger.evaluate(_signals(live_metric=live, live_rows=100, champion_metric=0.45))
    assert result.fired is fired
    assert result.evidence["greater_is_better"] is False
    if live == 0.80:
        assert "above the ceiling 0.7" in result.reason


@pytest.mark.parametrize(("live_error", "fired"), [(0.10, False), (0.13, False), (0.25, True)])
def test_relative_performance_trigger_tests_the_rise_of_the_error(
    live_error: float, fired: bool
) -> None:
    """No floor, no drop: the live error against the model's own earlier error (10% on 2000
    rows), one-sided Welch test at alpha 0.01 over one batch of 400 rows."""
    trigger = triggers.build_trigger(config.PerformanceTrigger())
    live = (1.0,) * int(400 * live_error) + (0.0,) * (400 - int(400 * live_error))
    reference = (1.0,) * 200 + (0.0,) * 1800
    result = trigger.evaluate(_signals(live_metric=1 - live_error, live_rows=400,
                                       live_errors=live, reference_errors=reference))
    assert result.fired is fired
    assert result.evidence["reference_rows"] == 2000
    assert (result.evidence["p_value"] < 0.01) is fired
    from scipy import stats
    expected = stats.ttest_ind(live, reference, equal_var=False, alternative="greater").pvalue
    assert result.evidence["p_value"] == pytest.approx(expected)


def test_relative_performance_trigger_waits_for_a_reference() -> None:
    trigger = triggers.PerformanceTrigger()
    result = trigger.evaluate(_signals(live_metric=0.2, live_rows=100, live_errors=(1.0,) * 100))
    assert not result.fired
    assert "no earlier live batches" in result.reason


def test_volume_trigger_in_batches_and_durations() -> None:
    every = triggers.VolumeTrigger("3 batches")
    assert not every.evaluate(_signals(new_labelled_rows=9, batches_since_training=2)).fired
    assert every.evaluate(_signals(new_labelled_rows=9, batches_since_training=3)).fired
    weekly = triggers.VolumeTrigger("7d")
    old = NOW - timedelta(days=8)
    assert weekly.evaluate(_signals(new_labelled_rows=1, last_training_at=old)).fired
    assert not weekly.evaluate(_signals(new_labelled_rows=0, last_training_at=old)).fired
    share = triggers.VolumeTrigger("50%")
    assert share.evaluate(_signals(new_labelled_rows=500, window_rows=1000)).fired
    assert not share.evaluate(_signals(new_labelled_rows=499, window_rows=1000)).fired


def test_no_new_labelled_rows_holds_back_a_schedule() -> None:
    due = policy.Policy([triggers.ScheduleTrigger("0 * * * *")])
    trained = NOW - timedelta(hours=2)
    assert not due.decide(_signals(last_training_at=trained)).fire
    assert "nothing new to learn" in due.decide(_signals(last_training_at=trained)).reason
    assert due.decide(_signals(last_training_at=trained, new_labelled_rows=1)).fire


def test_cooldown_in_batches() -> None:
    held = policy.Policy([triggers.VolumeTrigger(1)], cooldown="2 batches")
    trained = NOW - timedelta(days=30)
    assert held.decide(_signals(last_training_at=trained, new_labelled_rows=5,
                                batches_since_training=1)).blocked_by_cooldown
    assert held.decide(_signals(last_training_at=trained, new_labelled_rows=5,
                                batches_since_training=2)).fire


def test_volume_and_manual_triggers() -> None:
    volume = triggers.VolumeTrigger(1000)
    assert not volume.evaluate(_signals(new_labelled_rows=999)).fired
    assert volume.evaluate(_signals(new_labelled_rows=1000)).fired
    manual = triggers.ManualTrigger()
    assert manual.evaluate(_signals(manual=True)).fired
    assert not manual.evaluate(_signals()).fired


def _policy(cooldown: timedelta = timedelta(hours=6)) -> policy.Policy:
    return policy.Policy([triggers.DriftTrigger(), triggers.VolumeTrigger(100),
                          triggers.ManualTrigger()], cooldown=cooldown)


def test_no_champion_bootstraps() -> None:
    decision = _policy().decide(_signals(has_champion=False, last_training_at=NOW))
    assert decision.fire
    assert decision.reason == "no champion"
    assert len(decision.results) == 3


def test_nothing_fired_means_no_training() -> None:
    decision = _policy().decide(_signals(new_labelled_rows=10))
    assert not decision.fire
    assert not decision.blocked_by_cooldown
    assert [r.kind for r in decision.results] == ["drift", "volume", "manual"]
    assert not any(r.fired for r in decision.results)


def test_cooldown_blocks_then_releases() -> None:
    recent = _signals(new_labelled_rows=500, last_training_at=NOW - timedelta(hours=2))
    blocked = _policy().decide(recent)
    assert not blocked.fire
    assert blocked.blocked_by_cooldown
    assert "would fire on volume" in blocked.reason
    later = _signals(new_labelled_rows=500, last_training_at=NOW - timedelta(hours=6))
    decision = _policy().decide(later)
    assert decision.fire
    assert decision.fired_kinds == ("volume",)
    assert decision.reason.startswith("volume: 500 new labelled rows")


def test_manual_request_ignores_the_cooldown() -> None:
    decision = _policy().decide(_signals(manual=True, last_training_at=NOW - timedelta(minutes=1)))
    assert decision.fire
    assert not decision.blocked_by_cooldown


def test_decision_json_carries_every_result() -> None:
    decision = _policy().decide(_signals(drift={"dataset_drift": True, "drifted_share": 0.4},
                                         new_labelled_rows=5))
    evidence = json.loads(json.dumps(decision.to_json()))
    assert evidence["fire"] is True
    assert [(r["kind"], r["fired"]) for r in evidence["results"]] == [
        ("drift", True), ("volume", False), ("manual", False)]


def test_policy_from_spec() -> None:
    spec = config.parse_spec("""
name: demo
source: {kind: files, path: data/*.csv}
target: y
task: regression
trainer: {function: "train:make_model"}
cooldown: 12h
triggers:
  - {kind: schedule, cron: "0 2 * * *", timezone: Europe/Berlin}
  - {kind: performance, metric: rmse, drop: 0.5, window: 50}
  - {kind: volume, rows: 200}
""")
    built = policy.Policy.from_spec(spec)
    assert built.cooldown.duration == timedelta(hours=12)
    assert [t.kind for t in built.triggers] == ["schedule", "performance", "volume", "manual"]
    rising = _signals(live_metric=3.0, live_rows=50, champion_metric=2.0, new_labelled_rows=50,
                      last_training_at=NOW - timedelta(hours=12))
    decision = built.decide(rising)
    assert decision.fire
    assert decision.fired_kinds == ("performance",)
