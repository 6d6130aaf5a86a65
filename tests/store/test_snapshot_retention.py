"""Retention of an online pipeline's snapshots on SQLite and the live PostgreSQL: old snapshot
versions, their runs and their model files leave for the archive (or are deleted), so the store
stops growing with every checkpoint; the champion, its rollback target, the newest
`retention.versions`, a noted version and what is younger than `retention.history` stay, and
the learner learns exactly what a twin that keeps everything learns."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import replay_project, two_feature_days

from driftloop.controller import backtest, online_tick
from driftloop.core import config
from driftloop.store import archive, notes

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
SPEC = """
name: p
source: {kind: files, path: unused/*.csv}
target: y
timestamp: t
online:
  learner: river.naive_bayes:GaussianNB
  checkpoint: {every_events: 40, window: 40}
  drift: {detector: none}
retention: {label_horizon: 1d, batches: 2 batches, history: %s, versions: 2, then: %s}
"""



def run(tmp_path: Path, history: str, then: str, url: str | None, days: int = 20,
        noted: int | None = None) -> tuple[Any, list[Any]]:
    """Feed an online pipeline a batch a day; the project and each tick's result."""
    spec = config.parse_spec(SPEC % (history, then))
    data = two_feature_days(days)
    ends = backtest.batch_ends(data, "t", timedelta(days=1), timedelta(days=1))
    project = replay_project(tmp_path, spec, data, ends, url)
    controller = online_tick.OnlineController(project)
    results = []
    for end in ends:
        project.clock.set(end.to_pydatetime())
        results.append(controller.tick())
        if noted is not None and project.store.versions.list(project.name)[-1:] and \
                project.store.versions.list(project.name)[-1].version == noted:
            notes.Notes(project.store).add(project.name, "version", noted, author="ops",
                                           text="keep this one")
    return project, results


def model_files(project: Any) -> set[str]:
    root = Path(project.artifacts.root)
    return {p.name for p in root.rglob("*.pickle") if "archive" not in p.parts}


@pytest.mark.parametrize("backend", BACKENDS)
def test_old_snapshots_leave_for_the_archive_and_the_learner_learns_the_same(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest,
) -> None:
    url = None if backend == "sqlite" else request.getfixturevalue("pg_url")
    kept, _ = run(tmp_path / "kept", "1000d", "archive", None)
    project, results = run(tmp_path / "retired", "2 batches", "archive", url, noted=3)
    store, name = project.store, project.name
    everything = kept.store.versions.list(name)
    left = store.versions.list(name)
    assert len(everything) >= 20
    assert len(left) <= 8  # the newest 2, the champion, its rollback target, a noted one...
    assert any(r.swept and r.swept.retired.snapshots for r in results)

    by_number = {v.version: v for v in everything}

    def learned(metrics: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in metrics.items() if k != "cpu_seconds"}

    for version in left:  # the learner learned exactly the same
        assert learned(version.metrics) == learned(by_number[version.version].metrics)
    champion = store.aliases.get(name, "champion")
    assert champion == kept.store.aliases.get(name, "champion")
    numbers = [v.version for v in left]
    assert champion in numbers and 3 in numbers  # live, and noted
    for _ in range(2):  # rollbacks go to the versions left, past the retired ones
        assert store.aliases.rollback(name, "champion", actor="t", reason="t").version in numbers
    assert numbers[-2:] == [v.version for v in everything][-2:]  # the newest `versions`

    files = archive.Archive(store, project.artifacts)
    gone = pd.concat([files.read(f) for f in files.files_of(name, "snapshots")])
    assert sorted([*gone["version"], *numbers]) == sorted(by_number)
    for row in gone.itertuples():  # the model as it was, with its run's lineage
        assert hashlib.sha256(row.model).hexdigest() == row.sha256
        assert json.loads(row.batch_ids) == list(by_number[row.version].batch_ids)
        assert row.trainer == "river.naive_bayes:GaussianNB"
    assert {Path(v.artifact_uri).name for v in left} == model_files(project)
    for version in left:  # every version left still loads
        project.artifacts.get_model(version.artifact_uri, version.sha256)
    kept.close()
    project.close()


def test_then_delete_drops_snapshots_without_a_copy(tmp_path: Path) -> None:
    project, _ = run(tmp_path, "2 batches", "delete", None, days=12)
    store, name = project.store, project.name
    left = store.versions.list(name)
    assert len(left) <= 6
    assert not archive.Archive(store, project.artifacts).files_of(name, "snapshots")
    assert {Path(v.artifact_uri).name for v in left} == model_files(project)
    project.close()


def test_young_snapshots_stay(tmp_path: Path) -> None:
    project, _ = run(tmp_path, "30d", "archive", None, days=12)
    assert len(project.store.versions.list(project.name)) >= 12
    project.close()
