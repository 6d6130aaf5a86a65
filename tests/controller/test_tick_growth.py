"""A tick's database work does not grow with what the store holds: on a SQLite store grown by
many thousand records of every kind that accumulates (evaluations and decisions still inside
`retention.history`, archive records, alias moves, batch records, labelled predictions inside
the label horizon), the same ticks run about as many SQLite virtual-machine instructions as on
a store without them. Counted with SQLite's progress handler: work, not time."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from driftloop.controller import evaluate, tick
from driftloop.controller import project as projects
from driftloop.core import clock as clocks
from driftloop.core import config
from driftloop.data.sources import replay
from driftloop.store import artifacts, metadata, serving

SPEC = """
name: g
source: {kind: files, path: unused/*.csv}
target: y
timestamp: t
trainer:
  function: sklearn.linear_model:LogisticRegression
  executor: inline
  window: {kind: last, size: 4 batches}
triggers: [{kind: schedule, cron: "0 0 * * *"}]
gate: {enabled: false}
retention: {label_horizon: 1d, batches: 2 batches, history: 1000d, archives: null}
"""
EXTRA = 20_000
STEP = timedelta(hours=2)
WARM, MEASURED = 14, 6


def stream(batches: int) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(batches * 40, 2))
    start = pd.Timestamp("2024-01-01", tz="UTC")
    return pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "y": (x[:, 0] > x[:, 1]).astype(int),
                         "t": start + STEP * np.arange(batches * 40) / 40})


def grow(db: Path, rows: int, now: str) -> None:
    """Add `rows` records of each kind that accumulates, all young enough to stay."""
    con = sqlite3.connect(db)
    con.executemany(
        "INSERT INTO evaluations(pipeline_id, batch_id, version, metric, value, rows, errors, at)"
        " VALUES (1, NULL, 1, 'accuracy', 0.5, 1, '[0]', ?)", [(now,)] * rows)
    con.executemany(
        "INSERT INTO decisions(pipeline_id, kind, fired, evidence, caused_by, at)"
        " VALUES (1, ?, 0, '{}', NULL, ?)", [(f"k{i % 50}", now) for i in range(rows)])
    con.executemany(
        "INSERT INTO archives(pipeline_id, kind, day, uri, sha256, rows, bytes, created_at)"
        " VALUES (1, ?, ?, 'file:///gone', 's', 1, 1, ?)",
        [("evaluations", f"2023-{1 + i % 12:02d}-{1 + i % 28:02d}", now) for i in range(rows)])
    con.executemany(
        "INSERT INTO alias_moves(pipeline_id, alias, version, previous, actor, reason, at, action)"
        " VALUES (1, 'shadow', NULL, NULL, 'ops', 'r', ?, 'promote')", [(now,)] * rows)
    con.executemany(
        "INSERT INTO batches(pipeline_id, source_uri, fingerprint, rows, status, reasons,"
        " data_uri, data_sha256, created_at, archived_at)"
        " VALUES (1, 'old', ?, 1, 'rejected', '[]', NULL, ?, ?, ?)",
        [(f"f{i}", f"{i:064d}", now, now) for i in range(rows)])
    con.executemany(
        "INSERT INTO predictions(id, pipeline_id, alias, version, features, prediction, at)"
        " VALUES (?, 1, 'champion', 1, '{\"x0\": 0, \"x1\": 0}', '1', ?)",
        [(f"old-{i}", now) for i in range(rows)])
    con.executemany("INSERT INTO feedback(prediction_id, label, actor, at) VALUES (?, '1', 'a', ?)",
                    [(f"old-{i}", now) for i in range(rows)])
    con.commit()
    con.close()


def instructions(tmp_path: Path, extra: int) -> list[int]:
    """VM instructions (thousands) of each measured tick, after `extra` records were added."""
    spec = config.parse_spec(SPEC)
    data = stream(WARM + MEASURED)
    ends = [data["t"].iloc[0] + STEP * (k + 1) for k in range(WARM + MEASURED)]
    clock = clocks.FakeClock(ends[0].to_pydatetime())
    db = tmp_path / "g.db"
    store = metadata.MetadataStore.open(f"sqlite:///{db}", clock=clock)
    store.pipelines.ensure(spec.name, spec.model_dump(mode="json"))
    project = projects.Project(
        spec=spec, base_dir=tmp_path, store=store,
        artifacts=artifacts.ArtifactStore(str(tmp_path / "artifacts")),
        source=replay.ReplaySource(data, "t", ends, clock), clock=clock)
    controller = tick.Controller(project, holder="g")
    for end in ends[:WARM]:
        clock.set(end.to_pydatetime())
        controller.tick()
    grow(db, extra, f"{clock.now():%Y-%m-%d %H:%M:%S.%f}")
    labels = serving.ServingStore(store)
    top = store.engine.connect().execute(sa.text("SELECT max(id) FROM feedback")).scalar()
    store.batches.set_cursor(spec.name, evaluate.FEEDBACK_CURSOR, {"after": int(top or 0)})
    count = [0]

    def counting(conn: Any, *_: Any) -> None:
        conn.set_progress_handler(lambda: count.__setitem__(0, count[0] + 1) or 0, 1000)

    sa.event.listen(store.engine, "checkout", counting)
    clock.set(ends[WARM].to_pydatetime())
    controller.tick()  # reads what was added once (the evaluations' new rows)
    done = []
    for k, end in enumerate(ends[WARM + 1:]):
        clock.set(end.to_pydatetime() - STEP / 2)
        new = [serving.Prediction(f"new-{k}-{i}", spec.name, "champion", 1, None,
                                  {"x0": 0.1, "x1": 0.2}, 1, None, clock.now())
               for i in range(20)]
        labels.add_predictions(new)
        labels.add_feedback(spec.name, [(p.id, 1) for p in new], actor="a")
        clock.set(end.to_pydatetime())
        count[0] = 0
        controller.tick()
        done.append(count[0])
    store.close()
    return done


def test_a_ticks_database_work_does_not_grow_with_the_store(tmp_path: Path) -> None:
    small = instructions(tmp_path / "small", 0)
    grown = instructions(tmp_path / "grown", EXTRA)
    assert sum(grown) <= 1.5 * sum(small) + 200, (small, grown)
