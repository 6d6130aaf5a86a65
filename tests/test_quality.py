"""Data-quality signals: a batch beyond what the first data showed is accepted and its signals
recorded; only hard failures, or signals the spec makes strict, quarantine it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftloop.controller import ingest
from driftloop.controller import project as projects
from driftloop.core import clock as clocks
from driftloop.core import config
from driftloop.data.sources import replay
from driftloop.store import artifacts, metadata

BATCHES = 101
ROWS = 40
SPEC = """
name: trend
source: {kind: files, path: unused/*.csv}
target: y
timestamp: t
trainer: {function: train:make_model}
"""


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
        spec=config.parse_spec(SPEC + extra), base_dir=tmp_path, store=store,
        artifacts=artifacts.ArtifactStore(str(tmp_path / "artifacts")),
        source=replay.ReplaySource(frame, "t", ends, clock), clock=clock,
    )
    store.ensure_pipeline(project.name, project.spec.model_dump(mode="json"))
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
    stored = [project.store.get_batch(b.id) for b in batches]
    assert sum(b.rows for b in stored if b.status == "accepted") == BATCHES * ROWS
    assert stored[-1].quality == last.quality  # read back from the store as written


def test_a_strict_range_quarantines_the_same_stream(tmp_path: Path) -> None:
    strict = "validation: {per_column: {x: {strict: [range]}}}\n"
    batches = ingest.ingest(project_on(tmp_path, trend(), strict))
    statuses = [b.status for b in batches]
    assert statuses == ["accepted"] * 26 + ["quarantined"] * (BATCHES - 26)
    assert batches[26].reasons == {"x": [
        "x: 1 value above the allowed maximum 1.5 (max seen 1, tolerance 50%): row 1080"]}
    assert not batches[26].quality


def test_quarantined_rows_are_kept_as_read_for_a_requeue(tmp_path: Path) -> None:
    frame = trend().iloc[: 2 * ROWS].assign(note=["a", 1] * ROWS)  # mixed types, as from JSON
    bounded = "validation: {bounds: {x: [0, 1]}}\n"
    project = project_on(tmp_path, frame, bounded)
    first, bad = ingest.ingest(project)
    assert (first.status, bad.status) == ("accepted", "quarantined")
    assert bad.reasons == {"x": [
        "x: 1 value above the allowed maximum 1 (max seen 1, validation.bounds): row 80"]}
    kept: Any = ingest.read_as_read(project, bad)
    rows, names = kept
    assert len(rows) == ROWS and rows["x"].iloc[-1] == 1.02 and rows.attrs == {}
    assert rows["note"].tolist()[:2] == ["a", "1"]  # a mixed column is kept as text
    assert names.one(39) == "row 80"  # replayed rows are named from the frame's start
