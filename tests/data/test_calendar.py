"""Calendar features from the timestamp: the spec's forms (old list, `features: {calendar:
true}`, `calendar:`), the derived values in the pipeline's time zone, holiday flags from the
offline `holidays` package, and one derivation for training, the controller and the server."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import specs
from conftest import replay_project

from driftloop.controller import backtest, tick
from driftloop.core import config, errors
from driftloop.data import calendar
from driftloop.server import scoring, state

BASE = """
name: cal
source: {kind: files, path: unused/*.csv}
target: y
timestamp: t
trainer: {function: "sklearn.ensemble:HistGradientBoostingClassifier", executor: inline,
          params: {max_iter: 20}}
triggers: [{kind: volume, rows: 100000}]
gate: {enabled: false}
"""


def spec_of(extra: str) -> config.PipelineSpec:
    return config.parse_spec(BASE + extra, "driftloop.yaml")


def test_the_old_feature_list_still_works_and_calendar_is_off_by_default() -> None:
    spec = spec_of("features: [x]\n")
    assert spec.features == ["x"] and spec.calendar is None and spec.timezone == "UTC"
    rows = pd.DataFrame({"t": pd.to_datetime(["2024-01-01"], utc=True), "x": [1.0], "z": [2]})
    assert list(calendar.model_input(spec, rows).columns) == ["x"]


def test_features_calendar_true_and_the_calendar_section_are_the_same() -> None:
    short = spec_of("features: {calendar: true}\n")
    assert short.features is None and short.calendar == config.CalendarSpec()
    both = spec_of("features: {columns: [x], calendar: {country: AU}}\n")
    assert both.features == ["x"] and both.calendar is not None
    assert both.calendar.country == "AU"
    assert spec_of("calendar: true\n").calendar == config.CalendarSpec()
    assert spec_of("calendar: false\n").calendar is None


def test_calendar_needs_a_timestamp_and_a_known_time_zone() -> None:
    with pytest.raises(errors.ConfigError, match="come from `timestamp:`"):
        config.parse_spec(specs.overridden(BASE, replace={"timestamp": specs.DELETE},
                                             add={"calendar": True}))
    with pytest.raises(errors.ConfigError, match=r"driftloop.yaml:\d+: timezone: .*unknown time"):
        spec_of("timezone: Mars/Olympus\ncalendar: true\n")


def test_hour_day_and_month_are_local_and_holidays_come_from_the_country() -> None:
    spec = spec_of("timezone: Australia/Sydney\ncalendar: {country: AU, subdivision: NSW}\n")
    rows = pd.DataFrame({
        # 14:00 UTC on Christmas Eve is 01:00 on Christmas Day in Sydney (a Wednesday)
        "t": pd.to_datetime(["1996-12-24 14:00", "1996-12-27 02:00"], utc=True),
        "x": [0.1, 0.2],
    })
    derived = calendar.model_input(spec, rows)
    assert derived.to_dict("list") == {
        "x": [0.1, 0.2], "t_hour": [1, 13], "t_day_of_week": [2, 4], "t_month": [12, 12],
        "t_holiday": [1, 0],
    }
    assert calendar.holiday_note(spec) is None


def test_without_a_country_or_the_package_there_is_no_holiday_flag(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = spec_of("calendar: true\n")
    assert calendar.derived_columns(spec) == ["t_hour", "t_day_of_week", "t_month"]
    assert "calendar.country" in (calendar.holiday_note(spec) or "")
    with_country = spec_of("calendar: {country: AU}\n")
    monkeypatch.setattr(calendar, "_have_holidays", lambda: False)
    assert "not installed" in (calendar.holiday_note(with_country) or "")
    assert "t_holiday" not in calendar.derived_columns(with_country)


def test_an_unknown_country_is_a_config_error() -> None:
    spec = spec_of("calendar: {country: XX}\n")
    rows = pd.DataFrame({"t": pd.to_datetime(["2024-01-01"], utc=True), "x": [1.0]})
    with pytest.raises(errors.ConfigError, match=r"calendar\.country 'XX'"):
        calendar.model_input(spec, rows)


def hourly(days: int, seed: int = 0) -> pd.DataFrame:
    """A label that depends on the hour of day (night: 0, day: mostly 1) and on noise x."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2024-01-01", periods=days * 24, freq="h", tz="UTC")
    x = rng.normal(size=len(t))
    day = (t.hour >= 8) & (t.hour < 20)
    y = (day & (rng.random(len(t)) < 0.9)).astype(int)
    return pd.DataFrame({"t": t, "x": x, "y": y})


def trained(tmp_path: Path, spec: config.PipelineSpec) -> tick.Controller:
    data = hourly(40)
    ends = backtest.batch_ends(data, "t", timedelta(days=1), timedelta(days=30))
    project = replay_project(tmp_path, spec, data, ends)
    controller = tick.Controller(project)
    for end in ends[:3]:
        project.clock.set(end.to_pydatetime())
        controller.tick()
    return controller


def test_training_scoring_and_serving_derive_the_same_columns(tmp_path: Path) -> None:
    spec = spec_of("calendar: {features: [hour, day_of_week]}\n")
    controller = trained(tmp_path, spec)
    version = controller.models.champion()
    assert version is not None
    model = controller.models.live_model(version)
    assert list(model.feature_names_in_) == ["x", "t_hour", "t_day_of_week"]
    # the controller scored the two batches after training with the calendar columns
    scored = controller.project.store.evaluations.list(spec.name)
    assert len(scored) == 2 and all(e.value is not None and e.value > 0.85 for e in scored)

    server = state.ServerState(controller.project, state.Settings())
    server.poll_once()
    inputs = server.inputs
    assert inputs is not None and inputs.features == ["x", "t"]
    records = [{"x": 0.3, "t": "2024-02-12T03:00:00+00:00"},
               {"x": -1.0, "t": "2024-02-12T14:00:00+00:00"}]
    frame = inputs.frame(inputs.check(records))
    expected = calendar.model_input(spec, pd.DataFrame({
        "x": [0.3, -1.0], "t": pd.to_datetime([r["t"] for r in records], utc=True)}))
    pd.testing.assert_frame_equal(frame, expected, check_dtype=False)
    live = server.holder.get("champion")
    assert live is not None and live.number == version.version
    answers = scoring.score(live, frame)
    assert [a.prediction for a in answers] == model.predict(expected).tolist() == [0, 1]
    with pytest.raises(errors.ValidationError, match="field 't': missing"):
        inputs.check([{"x": 0.3}])
