"""The spec loader: every mistake names the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import specs

from driftloop.core import config, errors

GOOD = """\
name: demo
source:
  kind: files
  path: data/*.csv
target: y
trainer:
  function: train:make_model
  timeout: 90s
triggers:
  - kind: schedule
    cron: "0 3 * * 1"
    timezone: Europe/Berlin
cooldown: 2d
"""


def load(tmp_path: Path, text: str) -> config.PipelineSpec:
    path = tmp_path / "driftloop.yaml"
    path.write_text(text)
    return config.load_spec(path)


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(errors.ConfigError) as caught:
        load(tmp_path, text)
    return str(caught.value)


def test_a_good_spec_loads_with_durations(tmp_path: Path) -> None:
    spec = load(tmp_path, GOOD)
    assert spec.trainer.timeout.total_seconds() == 90
    assert spec.cooldown.duration.days == 2
    assert spec.triggers[0].kind == "schedule"


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    message = error_of(tmp_path, specs.edited(GOOD, {"  path: data/*.csv": "  path: [data/*.csv"}))
    assert message.startswith(f"{tmp_path / 'driftloop.yaml'}:")
    assert "malformed YAML" in message
    assert ":5:" in message or ":4:" in message


def test_unknown_field_names_line_and_field(tmp_path: Path) -> None:
    retries = specs.edited(GOOD, {"  timeout: 90s": "  timeout: 90s\n  retries: 3"})
    message = error_of(tmp_path, retries)
    assert "driftloop.yaml:9: trainer.retries: Extra inputs are not permitted" in message


def test_wrong_type_names_line_and_field(tmp_path: Path) -> None:
    message = error_of(tmp_path, specs.edited(GOOD, {"timeout: 90s": "timeout: soon"}))
    assert "driftloop.yaml:8: trainer.timeout:" in message


def test_error_inside_a_list_names_the_item(tmp_path: Path) -> None:
    message = error_of(tmp_path, specs.edited(GOOD, {'    cron: "0 3 * * 1"\n': ""}))
    assert "driftloop.yaml:10: triggers[0].cron: Field required" in message


def test_missing_required_field_and_missing_file(tmp_path: Path) -> None:
    untargeted = specs.overridden(GOOD, replace={"target": specs.DELETE})
    assert "target: Field required" in error_of(tmp_path, untargeted)
    with pytest.raises(errors.ConfigError, match="cannot read spec"):
        config.load_spec(tmp_path / "absent.yaml")


def test_source_kind_defaults_to_files_and_unknown_kind_is_named(tmp_path: Path) -> None:
    kindless = specs.overridden(GOOD, replace={"source": {"kind": specs.DELETE}})
    assert load(tmp_path, kindless).source.kind == "files"
    ftp = specs.overridden(GOOD, replace={"source": {"kind": "ftp"}})
    assert "source:" in error_of(tmp_path, ftp)


def test_a_spec_that_is_not_a_mapping(tmp_path: Path) -> None:
    assert "must be a mapping" in error_of(tmp_path, "- just\n- a list\n")


def test_cross_field_checks_name_the_problem(tmp_path: Path) -> None:
    assert "needs `rows`" in error_of(
        tmp_path, specs.overridden(GOOD, add={"trainer": {"window": {"kind": "last_rows"}}}))
    assert "needs `timestamp:`" in error_of(
        tmp_path, specs.overridden(GOOD, add={"trainer": {"window": {"kind": "since_drift"}}}))
    regression = load(tmp_path, GOOD + "task: regression\n")
    assert regression.gate.metric == "rmse"  # metrics follow the task when left out
    assert "is for regression" in error_of(
        tmp_path, GOOD + "task: classification\ngate: {metric: mae}\n")
