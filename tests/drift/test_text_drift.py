"""Multilingual text columns: the language identifier works offline, text drift is found when
the language mix changes and not between two samples of the same mix, text checks signal what
the reference did not have, and the tick reports text drift with its evidence.

The text comes from Faker's lorem providers: word lists of each locale, shipped inside the
package (nothing is downloaded)."""

from __future__ import annotations

import random
import shutil
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import replay_project

from driftloop.controller import backtest, tick
from driftloop.core import config, text_spec
from driftloop.data import text_profile
from driftloop.drift import text
from driftloop.validation import text_checks

faker = pytest.importorskip("faker", reason="Faker (the dev extra) makes the multilingual text")
pytest.importorskip("py3langid", reason="the language identifier: pip install -e '.[text]'")

STABLE = {"en_US": 0.5, "de_DE": 0.3, "fr_FR": 0.2}
CHANGED = {"en_US": 0.3, "de_DE": 0.2, "fr_FR": 0.1, "ru_RU": 0.2, "ja_JP": 0.2}
SPEC = text_spec.TextSpec(columns=["review"])


def texts(mix: dict[str, float], n: int, seed: int) -> list[tuple[str, str]]:
    """`n` (locale, sentence) pairs drawn from `mix`."""
    rng = random.Random(seed)
    fakers = {}
    for i, locale in enumerate(mix):
        fakers[locale] = faker.Faker(locale)
        fakers[locale].seed_instance(seed * 100 + i)
    found = []
    for _ in range(n):
        locale = rng.choices(list(mix), list(mix.values()))[0]
        found.append((locale, fakers[locale].sentence(nb_words=rng.randint(4, 14))))
    return found


def sentences(mix: dict[str, float], n: int, seed: int) -> list[str]:
    return [sentence for _, sentence in texts(mix, n, seed)]


def test_the_language_identifier_needs_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    text_profile._identifier.cache_clear()
    found = text_profile.languages_of([s for _, s in texts({"ru_RU": 1}, 5, 0)]
                                      + [s for _, s in texts({"de_DE": 1}, 5, 0)])
    assert found == ["ru"] * 5 + ["de"] * 5


def test_two_samples_of_the_same_mix_do_not_drift() -> None:
    for seed in range(3):
        found = text.detect_text_drift(
            "review", sentences(STABLE, 600, seed), sentences(STABLE, 300, 100 + seed), SPEC)
        assert not found.drifted, found.to_json()
        assert {t.name for t in found.tests} == {"languages", "vocabulary", "classifier"}


def test_a_changed_language_mix_drifts_with_evidence() -> None:
    found = text.detect_text_drift(
        "review", sentences(STABLE, 600, 1), sentences(CHANGED, 300, 2), SPEC)
    tests = {t.name: t for t in found.tests}
    assert found.drifted and tests["languages"].drifted and tests["classifier"].drifted
    assert tests["languages"].effect is not None and tests["languages"].effect > 0.3
    assert {"ru", "ja"} <= set(tests["languages"].evidence["current"])
    assert tests["classifier"].effect is not None and tests["classifier"].effect > 0.6  # AUC
    ngrams = tests["classifier"].evidence["current_ngrams"]
    assert any(text_profile.script_of(g) in {"CYRILLIC", "CJK", "KANA"} for g in ngrams), ngrams
    assert tests["vocabulary"].drifted
    assert tests["vocabulary"].evidence["oov_current"] > tests["vocabulary"].evidence[
        "oov_reference"]


def test_too_few_texts_run_no_test() -> None:
    found = text.detect_text_drift("review", sentences(STABLE, 30, 1), sentences(STABLE, 30, 2),
                                   SPEC)
    assert found.tests == () and not found.drifted


def test_text_checks_signal_new_scripts_and_empty_texts() -> None:
    reference = text_checks.profiles({"review": sentences(STABLE, 300, 1)}, SPEC)
    same = text_checks.text_signals({"review": sentences(STABLE, 200, 2)}, SPEC, reference)
    assert same == {}
    batch = sentences(CHANGED, 200, 3) + [""] * 250
    signals = text_checks.text_signals({"review": batch}, SPEC, reference)["review"]
    assert any("empty" in s for s in signals)
    assert any("scripts the reference did not have (CJK, CYRILLIC" in s for s in signals)
    assert reference["review"]["scripts"] == {"LATIN": 300}


# -- through the tick -----------------------------------------------------------------------

PIPELINE = """\
name: reviews
source: {kind: files, path: "unused/*.csv"}
target: y
timestamp: t
features: [review]
text: {columns: [review]}
trainer:
  function: train:make_text_model
  params: {column: review}
  executor: inline
triggers: [{kind: drift}]
gate: {enabled: false}
"""


def test_the_tick_reports_text_drift_and_the_drift_trigger_fires(tmp_path: Path) -> None:
    scaffold = Path(__file__).resolve().parents[2] / "src/driftloop/cli/scaffold/train.py"
    shutil.copy(scaffold, tmp_path / "train.py")
    days = [texts(STABLE, 300, 1), texts(STABLE, 300, 2), texts(CHANGED, 300, 3)]
    rows = [(locale, sentence) for day in days for locale, sentence in day]
    data = pd.DataFrame({
        "review": [sentence for _, sentence in rows],
        "y": [int(locale == "de_DE") for locale, _ in rows],
        "t": pd.date_range("2026-01-01", periods=len(rows), freq=timedelta(days=1) / 300,
                           tz="UTC"),
    })
    spec = config.parse_spec(PIPELINE)
    ends = backtest.batch_ends(data, "t", timedelta(days=1), timedelta(days=1))
    project = replay_project(tmp_path, spec, data, ends)
    controller = tick.Controller(project)
    decisions = []
    for end in ends:
        project.clock.set(end.to_pydatetime())
        decisions.append(controller.tick().decision)
    first, calm, changed = decisions
    assert first is not None and first.fired  # no champion yet
    assert calm is not None and not calm.fired
    assert calm.evidence["drift"]["text"][0]["drifted"] is False
    assert changed is not None and changed.fired
    (drift,) = [r for r in changed.evidence["policy"]["results"] if r["kind"] == "drift"]
    assert drift["reason"] == "text drift in review"
    (review,) = changed.evidence["drift"]["text"]
    assert review["column"] == "review" and review["drifted"]
    assert [c["name"] for c in changed.evidence["drift"]["columns"]] == []  # not tabular
    batches = project.store.batches.list("reviews")
    assert "review" in batches[-1].quality and not batches[1].quality
    project.close()
