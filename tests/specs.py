"""Spec edits for tests that fail loudly when the spec they edit has changed.

`override(path, replace={...}, add={...})` loads a YAML spec, merges nested mappings (lists and
scalars are replaced whole) and writes it back. Every key under `replace` must already be in
the spec and every key under `add` must not be, else KeyError names the dotted path: a scaffold
change cannot silently make a test edit nothing. `DELETE` under `replace` removes a key.

`edited(text, {old: new})` is the text edit for what YAML cannot say (malformed YAML, a line
number in an error): each `old` must be in the text.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

DELETE = object()


def override(path: Path, replace: Mapping[str, Any] | None = None,
             add: Mapping[str, Any] | None = None) -> None:
    """Write the spec at `path` back with `replace` and `add` merged in."""
    path.write_text(overridden(path.read_text(), replace, add))


def overridden(text: str, replace: Mapping[str, Any] | None = None,
               add: Mapping[str, Any] | None = None) -> str:
    """The YAML `text` with `replace` and `add` merged in (comments are not kept)."""
    data = yaml.safe_load(text)
    _merge(data, replace or {}, existing=True, where="")
    _merge(data, add or {}, existing=False, where="")
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def edited(text: str, changes: Mapping[str, str]) -> str:
    """`text` with each `old` of `changes` replaced by its `new`; each `old` must occur."""
    for old, new in changes.items():
        if old not in text:
            raise KeyError(f"{old!r} is not in the text to edit")
        text = text.replace(old, new)
    return text


def _merge(data: dict[str, Any], overrides: Mapping[str, Any], *, existing: bool,
           where: str) -> None:
    for key, value in overrides.items():
        path = f"{where}.{key}" if where else str(key)
        present = key in data
        if present and isinstance(data[key], dict) and isinstance(value, Mapping):
            _merge(data[key], value, existing=existing, where=path)
        elif present != existing:
            raise KeyError(f"{path} is {'not ' if existing else 'already '}in the spec")
        elif value is DELETE:
            del data[key]
        else:
            data[key] = value
