"""Retention of the loop's records on SQLite and the live PostgreSQL: evaluations, decisions and
profiles past `retention.history` leave for the archive without changing a single decision of
the loop, every version keeps its lineage, and a day's small archived files merge into one with
the same rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import replay_project, two_feature_days

from driftloop.controller import backtest, gather, tick
from driftloop.core import config
from driftloop.core.clock import FakeClock
from driftloop.store import archive, artifacts
from driftloop.store.metadata import MetadataStore

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
SPEC = """
name: p
source: {kind: files, path: unused/*.csv}
target: y
timestamp: t
trainer:
  function: sklearn.linear_model:LogisticRegression
  executor: inline
  window: {kind: last, size: 3 batches}
triggers:
  - {kind: schedule, cron: "0 0 * * 1"}
  - {kind: performance, floor: 0.85, window: 4 batches}
gate: {enabled: false}
retention: {label_horizon: 1d, history: %s, versions: 1}
"""


def stream(days: int) -> pd.DataFrame:
    import numpy as np

    rng = np.random.default_rng(5)
    x = rng.normal(size=(days * 50, 2))
    turn = np.linspace(0, 2.5, days * 50)  # the concept turns: the performance trigger fires
    return pd.DataFrame(
        {
            "x0": x[:, 0],
            "x1": x[:, 1],
            "y": (x[:, 0] * np.cos(turn) + x[:, 1] * np.sin(turn) > 0).astype(int),
            "t": pd.date_range(
                "2024-01-01", periods=days * 50, freq=timedelta(days=1) / 50, tz="UTC"
            ),
        }
    )


def run(tmp_path: Path, history: str, url: str | None) -> tuple[Any, list[Any]]:
    """Replay 30 days, a batch a day; returns the project and each tick's decision."""
    spec = config.parse_spec(SPEC % history)
    data = two_feature_days(30)
    ends = backtest.batch_ends(data, "t", timedelta(days=1), timedelta(days=1))
    project = replay_project(tmp_path, spec, data, ends, url)
    controller = tick.Controller(project)
    decided = []
    for end in ends:
        project.clock.set(end.to_pydatetime())
        decided.append(controller.tick().decision)
    return project, decided


def policy(decision: Any) -> Any:
    """What the policy saw and chose (ids of records aside)."""
    if decision is None:
        return None
    return decision.fired, json.dumps(decision.evidence, sort_keys=True, default=str)


@pytest.mark.parametrize("backend", BACKENDS)
def test_records_leave_for_the_archive_and_the_loop_decides_the_same(
    tmp_path: Path,
    backend: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = None if backend == "sqlite" else request.getfixturevalue("pg_url")
    # a reference of two batches' errors: the champion's window is kept for its own sake
    monkeypatch.setattr(gather, "REFERENCE_ROWS", 100)
    kept, kept_decided = run(tmp_path / "kept", "1000d", None)
    project, decided = run(tmp_path / "retired", "1 batch", url)
    store, name = project.store, project.name
    assert [policy(d) for d in decided] == [policy(d) for d in kept_decided]
    assert [v.batch_ids for v in store.versions.list(name)] == [
        v.batch_ids for v in kept.store.versions.list(name)
    ]
    assert sum(d is not None and d.fired for d in decided) >= 4

    everything = kept.store.evaluations.list(name)
    left = store.evaluations.list(name)
    assert len(left) < len(everything) / 2
    files = archive.Archive(store, project.artifacts)
    gone = pd.concat([files.read(f) for f in files.files_of(name, "evaluations")])
    assert sorted([*gone["id"], *(e.id for e in left)]) == [e.id for e in everything]
    by_id = {e.id: e for e in everything}
    for row in gone.itertuples():  # archived as they were
        assert json.loads(row.errors) == list(by_id[row.id].errors)
        assert row.value == pytest.approx(by_id[row.id].value)
    champion = store.versions.get(name, store.aliases.get(name, "champion") or 0)
    mine = [e for e in left if e.version == champion.version]
    assert mine and mine[-1].id == max(e.id for e in everything if e.version == champion.version)

    for version in store.versions.list(name):  # lineage: why each version exists
        run_ = store.runs.get(version.run_id)  # type: ignore[arg-type]
        if run_.decision_id is not None:
            assert store.decisions.get(run_.decision_id).fired
    assert champion.profile_id is not None and store.profiles.get(champion.profile_id)
    retired = files.files_of(name, "decisions") + files.files_of(name, "profiles")
    assert {f.kind for f in retired} == {"decisions", "profiles"}
    assert len(store.decisions.list(name)) < len(kept.store.decisions.list(name))
    for record in files.files_of(name):  # every archived file matches its recorded sha256
        project.artifacts.get_bytes(record.uri, record.sha256)
    kept.close()
    project.close()


def test_a_days_small_files_merge_into_one_with_the_same_rows(tmp_path: Path) -> None:
    start = datetime(2024, 3, 1, tzinfo=UTC)
    meta = MetadataStore.open("sqlite://", clock=FakeClock(start + timedelta(days=3)))
    meta.pipelines.ensure("p", {})
    files = archive.Archive(meta, artifacts.ArtifactStore(str(tmp_path / "artifacts")))
    sizes = [4, 2, 7, 3, 5]
    n = 0
    for day, count in [(0, size) for size in sizes] + [(1, 3), (2, 1), (2, 1)]:
        frame = pd.DataFrame(
            {
                "id": [f"r{n + i:03d}" for i in range(count)],
                "at": [start + timedelta(days=day, minutes=n + i) for i in range(count)],
                "features": [json.dumps({"x": n + i}) for i in range(count)],
            }
        )
        n += count
        with meta.db.write() as conn:
            files.write(conn, "p", "predictions", frame)
    before = files.read_predictions("p")
    parts = files.files_of("p")
    merged = files.merge("p", before_day="2024-03-03", rows=10)  # day 2 is not finished
    assert merged is not None and (merged.day, merged.rows) == ("2024-03-01", 9)  # 2 + 3 + 4
    assert merged.created_at == min(p.created_at for p in parts)
    assert files.merge("p", before_day="2024-03-03", rows=10) is not None  # 5 + 7
    assert files.merge("p", before_day="2024-03-03", rows=10) is None  # 9 and 12: done
    assert [(f.day, f.rows) for f in files.files_of("p")] == [
        ("2024-03-01", 9),
        ("2024-03-01", 12),
        ("2024-03-02", 3),
        ("2024-03-03", 1),
        ("2024-03-03", 1),
    ]
    pd.testing.assert_frame_equal(files.read_predictions("p"), before)
    on_disk = sorted(p.name for p in (tmp_path / "artifacts").rglob("*.parquet"))
    assert on_disk == sorted(Path(f.uri).name for f in files.files_of("p"))
    meta.close()


ONLINE = """
name: p
source: {kind: files, path: unused/*.csv}
target: y
timestamp: t
online:
  learner: river.naive_bayes:GaussianNB
  checkpoint: {every_events: 100, window: 50}
  drift: {detector: adwin, action: reset}
retention: {label_horizon: 1d, batches: 2 batches, history: %s, versions: 1}
"""


def run_online(tmp_path: Path, history: str) -> tuple[Any, list[Any]]:
    """An online pipeline fed a batch a day for 30 days; the project and each tick's result."""
    from driftloop.controller import online_tick

    spec = config.parse_spec(ONLINE % history)
    data = two_feature_days(30)
    ends = backtest.batch_ends(data, "t", timedelta(days=1), timedelta(days=1))
    project = replay_project(tmp_path, spec, data, ends)
    controller = online_tick.OnlineController(project)
    results = []
    for end in ends:
        project.clock.set(end.to_pydatetime())
        results.append(controller.tick())
    return project, results


def test_an_online_pipeline_is_bounded_the_same_way(tmp_path: Path) -> None:
    kept, _ = run_online(tmp_path / "kept", "1000d")
    project, results = run_online(tmp_path / "retired", "2 batches")
    store, name = project.store, project.name
    learned = {
        (v.version, v.metrics["accuracy"], v.metrics["data_upto_batch"])
        for v in kept.store.versions.list(name)
    }
    left = store.versions.list(name)  # old snapshots retire too (test_snapshot_retention)
    assert left and {
        (v.version, v.metrics["accuracy"], v.metrics["data_upto_batch"]) for v in left
    } <= learned  # learned exactly the same
    assert left[-1].version == max(version for version, _, _ in learned)
    assert len(store.evaluations.list(name)) <= 4 < len(kept.store.evaluations.list(name))
    assert any(r.swept and r.swept.retired.evaluations for r in results)
    champion = store.versions.get(name, store.aliases.get(name, "champion") or 0)
    upto = champion.metrics["data_upto_batch"]
    batches = store.batches.list(name, status="accepted")
    archived = [b.id for b in batches if b.archived_at is not None]
    assert archived and max(archived) <= upto  # what the snapshot learned, never what follows
    assert all(b.archived_at is None for b in batches[-2:])
    files = archive.Archive(store, project.artifacts)
    assert {f.kind for f in files.files_of(name)} >= {"batch", "evaluations"}
    kept.close()
    project.close()
