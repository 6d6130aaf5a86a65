"""Data-quality signals: a batch beyond what the first data showed is accepted and its signals
recorded; only hard failures, or signals the spec makes strict, quarantine it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from driftloop.controller import ingest, kept_rows, tick
from driftloop.controller import project as projects
from driftloop.core import clock as clocks
from driftloop.core import config, errors
from driftloop.data.sources import replay
from driftloop.policy import signals, triggers
from driftloop.store import artifacts, metadata
from driftloop.ui import views

BATCHES = 101
ROWS = 40
SPEC = """
name: trend
source: {kind: files, path: unused/*.csv}
target: y
timestamp: t
"""
TRAINER = "trainer: {function: train:make_model}\n"


def trend() -> pd.DataFrame:
    """101 batches of 40 rows; `x` spans [0, 1] in the first and moves up by 2 % of that range
    with every batch, so batch 100 lies wholly in [2, 3]: three times past the first range."""
    rng = np.random.default_rng(0)
    parts = []
    for k in range(BATCHES):
        x = np.linspace(0.0, 1.0, ROWS) + 0.02 * k
        parts.append(pd.DataFrame({"x": x, "y": (x + rng.normal(0, 0.1, ROWS) > 1.0 + 0.02 * k)
                                   .astype(int)}))
    frame = pd.concat(parts, ignore_index=True)
    frame.insert(0, "t", pd.date_range("2024-01-01", periods=len(frame), freq="h", tz="UTC"))
    return frame


def project_on(tmp_path: Path, frame: pd.DataFrame, extra: str = "") -> projects.Project:
    clock = clocks.FakeClock(datetime(2030, 1, 1, tzinfo=UTC))
    ends = list(frame["t"].iloc[ROWS - 1 :: ROWS])
    store = metadata.MetadataStore.open("sqlite://", clock=clock)
    project = projects.Project(
        spec=config.parse_spec(SPEC + (extra or TRAINER)), base_dir=tmp_path, store=store,
        artifacts=artifacts.ArtifactStore(str(tmp_path / "artifacts")),
        source=replay.ReplaySource(frame, "t", ends, clock), clock=clock,
    )
    store.pipelines.ensure(project.name, project.spec.model_dump(mode="json"))
    return project


def test_a_slowly_growing_range_is_never_quarantined_but_signalled(tmp_path: Path) -> None:
    project = project_on(tmp_path, trend())
    batches = ingest.ingest(project)
    assert len(batches) == BATCHES
    assert [b.status for b in batches] == ["accepted"] * BATCHES
    signalled = [b for b in batches if b.quality]
    # The allowed maximum is 1.5 (range 1 + 50 %): batch k reaches 1 + 0.02 k, so from k = 26 on.
    assert [b.id for b in signalled] == [b.id for b in batches[26:]]
    first = signalled[0]
    assert first.quality == {"x": [
        "x: 1 value above the allowed maximum 1.5 (max seen 1, tolerance 50%): row 1080"]}
    assert first.quality_rows == 1
    last = batches[-1]
    assert last.quality_rows == ROWS and list(last.quality) == ["x"]
    # the accepted rows are all kept: nothing was lost
    stored = [project.store.batches.get(b.id) for b in batches]
    assert sum(b.rows for b in stored if b.status == "accepted") == BATCHES * ROWS
    assert stored[-1].quality == last.quality  # read back from the store as written


def test_a_strict_range_quarantines_the_same_stream(tmp_path: Path) -> None:
    strict = TRAINER + "validation: {per_column: {x: {strict: [range]}}}\n"
    batches = ingest.ingest(project_on(tmp_path, trend(), strict))
    statuses = [b.status for b in batches]
    assert statuses == ["accepted"] * 26 + ["quarantined"] * (BATCHES - 26)
    assert batches[26].reasons == {"x": [
        "x: 1 value above the allowed maximum 1.5 (max seen 1, tolerance 50%): row 1080"]}
    assert not batches[26].quality


def test_quarantined_rows_are_kept_as_read_for_a_requeue(tmp_path: Path) -> None:
    frame = trend().iloc[: 2 * ROWS].assign(note=["a", 1] * ROWS)  # mixed types, as from JSON
    bounded = TRAINER + "validation: {bounds: {x: [0, 1]}}\n"
    project = project_on(tmp_path, frame, bounded)
    first, bad = ingest.ingest(project)
    assert (first.status, bad.status) == ("accepted", "quarantined")
    assert bad.reasons == {"x": [
        "x: 1 value above the allowed maximum 1 (max seen 1, validation.bounds): row 80"]}
    kept: Any = kept_rows.read_as_read(project, bad)
    rows, names = kept
    assert len(rows) == ROWS and rows["x"].iloc[-1] == 1.02 and rows.attrs == {}
    assert rows["note"].tolist()[:2] == ["a", "1"]  # a mixed column is kept as text
    assert names.one(39) == "row 80"  # replayed rows are named from the frame's start


def test_quality_trigger_fires_on_enough_columns_or_rows() -> None:
    now = datetime(2024, 6, 1, tzinfo=UTC)
    trigger = triggers.build_trigger(config.QualityTrigger(columns=2, share=0.25))
    assert isinstance(trigger, triggers.QualityTrigger)

    def answer(columns: tuple[str, ...], rows: int, total: int) -> signals.TriggerResult:
        quality = signals.Quality(columns, rows, total)
        return trigger.evaluate(signals.Signals(now=now, quality=quality))

    quiet = answer((), 0, 40)
    assert not quiet.fired and quiet.reason == "no data-quality signal in 40 new rows"
    few = answer(("x",), 4, 40)
    assert not few.fired and few.reason.endswith("< 2 columns and < 25% of rows")
    assert answer(("x", "color"), 2, 40).fired
    many = answer(("x",), 10, 40)
    assert many.fired and many.reason.endswith(">= 25% of rows")
    assert many.evidence == {"columns": ["x"], "rows": 10, "total_rows": 40, "min_columns": 2,
                             "min_share": 0.25}
    with pytest.raises(errors.ConfigError, match="`columns` >= 1"):
        triggers.QualityTrigger(columns=0)


def test_a_tick_gathers_the_quality_of_the_new_batches_for_the_trigger(tmp_path: Path) -> None:
    extra = """
task: classification
trainer: {function: "sklearn.linear_model:LogisticRegression", executor: inline}
triggers: [{kind: quality, columns: 2, share: 0.5}]  # x is the one column
gate: {enabled: false}
"""
    frame = trend()
    project = project_on(tmp_path, frame, extra)
    clock: Any = project.clock
    controller = tick.Controller(project)
    ends = list(frame["t"].iloc[ROWS - 1 :: ROWS])
    reasons = []
    for k in (0, 25, 27, 28, 80):  # the newest batch of each tick: no signal up to 25
        clock.set(ends[k].to_pydatetime())
        decision = controller.tick().decision
        assert decision is not None
        (result,) = [r for r in decision.evidence["policy"]["results"] if r["kind"] == "quality"]
        reasons.append((result["fired"], result["evidence"]["columns"]))
    # the first tick bootstraps (no champion); then the quality of the batches new since the
    # last decision: 25 clean ones, 2 with 3 of 80 rows beyond, 1 with 3 of 40, then 52 with
    # 59 % of their rows beyond (from 3 to 40 a batch)
    assert reasons == [(False, []), (False, []), (False, ["x"]), (False, ["x"]), (True, ["x"])]


def test_the_timeline_shows_signals_and_requeues() -> None:
    store = metadata.MetadataStore.open("sqlite://")
    store.pipelines.ensure("p", {})
    signal = "x: 3 values above the allowed maximum 1.5 (max seen 1, tolerance 50%): rows 1, 2, 3"

    def add(fingerprint: str, **values: Any) -> None:
        store.batches.add("p", source_uri=f"file:///in/{fingerprint}.csv", fingerprint=fingerprint,
                        rows=40, start=None, end=None, **{"status": "accepted", "reasons": {},
                                                          **values})

    add("a", quality={"x": [signal]}, quality_rows=3)
    add("b", status="quarantined", reasons={"y": ["y: required column is missing"]})
    add("c", requeued_from=2)
    texts = {e.text: (e.kind, e.tone) for e in views.timeline(store, "p")}
    assert texts == {
        "batch 1 (a.csv): 40 rows accepted, with data-quality signals in x (3 rows): " + signal:
            ("data quality", "warn"),
        "batch 2 (b.csv): 40 rows quarantined, later requeued as a new batch": ("quarantine", ""),
        "batch 3 (c.csv): 40 rows accepted, requeued from batch 2": ("batch", ""),
    }
    store.close()


def test_strict_names_are_checked_where_they_are_written() -> None:
    with pytest.raises(errors.ConfigError) as typo:
        config.parse_spec(SPEC + TRAINER + "validation:\n  strict: [rnage]\n", "p.yaml")
    assert str(typo.value) == (
        "p.yaml:8: validation.strict[0]: Input should be 'range', 'categories' or 'missing'")
    with pytest.raises(errors.ConfigError, match=r"p.yaml:9: validation.per_column.x.strict"):
        config.parse_spec(
            SPEC + TRAINER + "validation:\n  per_column:\n    x: {strict: [ranges]}\n", "p.yaml")
    with pytest.raises(errors.ConfigError, match=r"per_column\.c\.strict makes new categories"):
        config.parse_spec(SPEC + TRAINER + "validation: {allow_new_categories: true, "
                          "per_column: {c: {strict: [categories]}}}\n", "p.yaml")
    spec = config.ValidationSpec(strict=["range", "missing"], per_column={"x": {"strict": []}})
    assert spec.strict_for("x") == frozenset() and spec.strict_for("y") == {"range", "missing"}
