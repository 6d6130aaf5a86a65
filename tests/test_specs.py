"""The tests' spec edits fail loudly when the spec no longer has what they edit."""

from __future__ import annotations

from pathlib import Path

import pytest
import specs
import yaml

TEXT = """\
name: x
trainer:
  function: train:make_model
  params: {max_iter: 50}
triggers: [a, b]
"""


def test_nested_mappings_merge_lists_are_replaced_and_keys_are_added_or_deleted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "driftloop.yaml"
    path.write_text(TEXT)
    specs.override(path, replace={"trainer": {"params": {"max_iter": specs.DELETE}},
                                  "triggers": ["c"]},
                   add={"trainer": {"executor": "inline"}, "gate": {"enabled": False}})
    assert yaml.safe_load(path.read_text()) == {
        "name": "x",
        "trainer": {"function": "train:make_model", "params": {}, "executor": "inline"},
        "triggers": ["c"],
        "gate": {"enabled": False},
    }


def test_replacing_a_missing_key_or_adding_a_present_one_is_an_error() -> None:
    with pytest.raises(KeyError, match=r"trainer\.executor is not in the spec"):
        specs.overridden(TEXT, replace={"trainer": {"executor": "inline"}})
    with pytest.raises(KeyError, match=r"trainer\.function is already in the spec"):
        specs.overridden(TEXT, add={"trainer": {"function": "other:make_model"}})


def test_a_text_edit_of_what_is_not_there_is_an_error() -> None:
    assert specs.edited(TEXT, {"max_iter: 50": "max_iter: [50"}).count("[50") == 1
    with pytest.raises(KeyError, match="'executor: local' is not in the text"):
        specs.edited(TEXT, {"executor: local": "executor: inline"})
