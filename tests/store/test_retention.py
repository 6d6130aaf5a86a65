"""Retention on SQLite and the live PostgreSQL: predictions leave for the archive only past the
label horizon and once their label is scored, the archive gives them back unchanged, serving
stats keep their totals when merged into hours, and batch files that a live version, a rollback
target or the next training window needs are never archived."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import replay_project, two_feature_days

from driftloop.controller import tick
from driftloop.core import config
from driftloop.core.clock import FakeClock
from driftloop.store import archive, artifacts, retention, serving, serving_stats
from driftloop.store.metadata import MetadataStore

START = datetime(2024, 3, 1, tzinfo=UTC)
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def meta(url: str) -> Iterator[MetadataStore]:
    store = MetadataStore.open(url, clock=FakeClock(START))
    store.pipelines.ensure("p", {})
    yield store
    store.close()


def predictions(n: int, at: datetime, step: timedelta) -> list[serving.Prediction]:
    return [
        serving.Prediction(str(uuid.uuid4()), "p", "champion", 1, f"k{i}",
                           {"x": float(i), "c": "a" if i % 2 else None}, i % 2,
                           {"0": 0.25, "1": 0.75}, at + i * step)
        for i in range(n)
    ]


def test_predictions_leave_after_the_horizon_and_come_back_from_the_archive(
    meta: MetadataStore, tmp_path: Path,
) -> None:
    store = serving.ServingStore(meta)
    rows = predictions(48, START, timedelta(hours=1))  # two days, one an hour
    store.add_predictions(rows)
    scored = store.add_feedback("p", [(rows[0].id, 0), (rows[5].id, 1)], actor="t")
    pending = store.add_feedback("p", [(rows[10].id, 1)], actor="t")  # not scored yet
    evaluated = max(item.feedback_id for item in store.labelled("p")
                    if item.prediction.id in scored.stored)
    assert pending.stored
    files = archive.Archive(meta, artifacts.ArtifactStore(str(tmp_path / "artifacts")))
    before = START + timedelta(hours=24)  # a one-day horizon, a day after the first
    moved = retention.archive_predictions(meta, files, "p", before=before, evaluated=evaluated,
                                          limit=7)
    assert moved == 7  # a slice; the rest goes in the next calls
    while retention.archive_predictions(meta, files, "p", before=before, evaluated=evaluated,
                                        limit=7):
        pass
    left = {p.id for p in store.list_predictions("p")}
    assert rows[10].id in left, "a label not scored yet keeps its prediction"
    assert all(p.id in left for p in rows[24:]), "the label horizon keeps the young ones"
    assert not any(p.id in left for p in rows[:10])
    # the next tick's cursor passed the label: the rest of the day goes
    evaluated = max(item.feedback_id for item in store.labelled("p"))
    retention.archive_predictions(meta, files, "p", before=before, evaluated=evaluated, limit=99)
    assert store.count_predictions("p") == 24
    back = files.read_predictions("p")
    assert back["id"].tolist() == [p.id for p in rows[:24]]
    assert [json.loads(f) for f in back["features"]] == [p.features for p in rows[:24]]
    assert back["at"].tolist() == [pd.Timestamp(p.at) for p in rows[:24]]
    labels = dict(zip(back["id"], back["label"], strict=True))
    assert (labels[rows[5].id], labels[rows[10].id]) == ("1", "1")  # JSON text
    assert pd.isna(labels[rows[1].id])
    (day,) = {f.day for f in files.files_of("p", "predictions")}
    assert day == "2024-03-01"
    for record in files.files_of("p", "predictions"):  # recorded with the sha256 of its bytes
        assert files.files.get_bytes(record.uri, record.sha256)


def test_minute_stats_become_hours_with_the_same_totals(meta: MetadataStore) -> None:
    store = serving.ServingStore(meta)
    stats = serving_stats.ServingStats(store)
    rows = [
        serving_stats.StatRow(START + timedelta(minutes=m), process, "champion", 1, 10 + m, m % 3,
                              {serving_stats.bucket(1.0 + m % 7): 10 + m})
        for m in range(150) for process in ("a:1", "b:2")
    ]
    stats.write("p", rows)
    before = stats.read("p", alias="champion", version=1)
    cut = START + timedelta(minutes=125)
    merged = 0
    while step := retention.downsample_stats(meta, "p", before=cut, limit=37):
        merged += step
    assert merged == 250  # two processes' minutes before the cut
    after = stats.read("p", alias="champion", version=1)
    assert (after.requests, after.errors, dict(after.latency)) == (
        before.requests, before.errors, dict(before.latency))
    minutes = stats.minutes("p")
    assert [m.minute for m in minutes[:3]] == [START, START + timedelta(hours=1),
                                              START + timedelta(hours=2)]
    assert len(minutes) == 3 + 25  # hours 0-1, the 5 minutes of hour 2 before the cut, then
    # 25 minutes after it (hour 2's minute 5 onwards are still per minute)
    dropped = retention.drop_hourly_stats(meta, "p", before=START + timedelta(hours=1), limit=9)
    assert dropped == 1  # the first hour's single row


SPEC = """
name: p
source: {kind: files, path: unused/*.csv}
target: y
timestamp: t
trainer:
  function: sklearn.linear_model:LogisticRegression
  executor: inline
  window: {kind: last, size: 3 batches}
triggers: [{kind: schedule, cron: "0 0 * * *"}]
gate: {enabled: false}
retention: {label_horizon: 1d, batches: 2 batches, quarantine: 2d, versions: 1}
"""



@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_files_a_version_or_the_window_needs_are_never_archived(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest,
) -> None:
    from driftloop.controller import backtest

    spec = config.parse_spec(SPEC)
    data = two_feature_days(20)
    ends = backtest.batch_ends(data, "t", timedelta(days=1), timedelta(days=1))
    project = replay_project(tmp_path, spec, data, ends)
    if backend == "postgres":
        project.store.close()
        project.store = MetadataStore.open(request.getfixturevalue("pg_url"), clock=project.clock)
        project.store.pipelines.ensure(spec.name, spec.model_dump(mode="json"))
    controller = tick.Controller(project)
    store, name = project.store, project.name
    for i, end in enumerate(ends):
        project.clock.set(end.to_pydatetime())  # type: ignore[attr-defined]
        controller.tick()
        if i == 8:  # pin today's champion as a canary for a while: its batches must stay
            number = store.aliases.get(name, "champion")
            assert number is not None
            store.aliases.set(name, "canary", number, actor="t", reason="test")
            pinned = set(store.versions.get(name, number).batch_ids)
        if i == 14:
            store.aliases.set(name, "canary", None, actor="t", reason="test")
        champion = store.aliases.get(name, "champion")
        target = retention.needed_batches(store, name, 1)
        for batch in store.batches.list(name, status="accepted"):
            live = champion is not None and batch.id in set(
                store.versions.get(name, champion).batch_ids)
            if live or batch.id in target or (8 <= i < 14 and batch.id in pinned):
                assert batch.archived_at is None, (i, batch.id)
                project.artifacts.get_frame(batch.data_uri, batch.data_sha256)  # type: ignore[arg-type]
    batches = store.batches.list(name, status="accepted")
    archived = [b for b in batches if b.archived_at is not None]
    assert archived, "old batches nothing needs were archived"
    newest = batches[-3:]  # the next training's window
    assert all(b.archived_at is None for b in newest)
    for batch in archived:  # readable from the archive, hash-checked
        assert batch.data_uri is not None and "/archive/p/batches/day=" in batch.data_uri
        assert len(project.artifacts.get_frame(batch.data_uri, batch.data_sha256)) == 50  # type: ignore[arg-type]
    # a new process trains on the same window as the old one
    fresh = tick.Controller(project)
    fresh.history.refresh()
    assert len(fresh.history.rows()) < len(controller.history.rows())  # archived: not read
    assert fresh.history.rows()["t"].iloc[-150:].tolist() == (
        controller.history.rows()["t"].iloc[-150:].tolist())
    store.close()


def test_a_pending_rollout_keeps_its_predictions(meta: MetadataStore, tmp_path: Path) -> None:
    store = serving.ServingStore(meta)
    rows = predictions(10, START, timedelta(hours=1))
    store.add_predictions(rows)
    meta.clock.set(START + timedelta(hours=3))  # type: ignore[attr-defined]
    meta.versions.add("p", run_id=None, artifact_uri="file:///m", sha256="ab" * 32,
                           metrics={})
    meta.aliases.set("p", "canary", 1, actor="t", reason="rollout")
    started = retention.rollout_start(meta, "p")
    assert started == START + timedelta(hours=3)
    files = archive.Archive(meta, artifacts.ArtifactStore(str(tmp_path / "a")))
    retention.archive_predictions(meta, files, "p", before=min(START + timedelta(days=5), started),
                                  evaluated=0, limit=100)
    assert store.count_predictions("p") == 7  # hours 3.. stay for the rollout's comparison


def test_sqlite_gives_freed_pages_back(tmp_path: Path) -> None:
    meta = MetadataStore.open(f"sqlite:///{tmp_path / 's.db'}", clock=FakeClock(START))
    meta.pipelines.ensure("p", {})
    store = serving.ServingStore(meta)
    store.add_predictions(predictions(3000, START, timedelta(seconds=1)))
    size = (tmp_path / "s.db").stat().st_size + (tmp_path / "s.db-wal").stat().st_size
    retention.archive_predictions(meta, None, "p", before=START + timedelta(days=1),
                                  evaluated=0, limit=5000)
    with meta.engine.connect() as conn:
        free = conn.execute(sa.text("PRAGMA freelist_count")).scalar()
    assert free and free > 100
    assert retention.compact(meta, pages=10_000) is not None
    with meta.engine.connect() as conn:
        conn.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))
        assert conn.execute(sa.text("PRAGMA freelist_count")).scalar() == 0
    assert (tmp_path / "s.db").stat().st_size < size / 2
    meta.close()
