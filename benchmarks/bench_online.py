"""Online learning throughput: events learned and served per second by driftloop's
`OnlineSession` vs a bare river loop, on the same model and the same stream.

Workload: the Elec2 stream (45 312 events, in time order) through a Hoeffding Adaptive Tree
(river, seed 42). Each event is predicted, then learned (test-then-train, one event at a time):

- river: ``model.predict_one(x); model.learn_one(x, y)``;
- driftloop: ``session.model.predict_one(x)`` (the locked predict a server request makes) then
  ``session.learn([Event(x, y, prediction)])`` with all of its bookkeeping: the model lock, the
  prequential window, ADWIN on the error stream, the snapshot cadence, and a snapshot every
  `--every` events (the spec's default 5 000, and 1 000) stored for real (pickled, sha256,
  artifact file, run + model version rows in a SQLite file, the champion alias moved).
  Rollback and drift actions are off (tolerance 1, drift action none) so both sides train the
  very same model; the run checks that both made the same predictions.

Runs alternate (river, then driftloop at each snapshot cadence, ...); prints the median of
`--repeats` as a Rich table, one row per cadence, with the ratio driftloop / river (goal: at
least 80%). The cadence matters beyond the time it takes to store a snapshot: on CPython 3.11,
pickling an object reads its `__dict__`, which turns its attributes from the fast inline layout
into a plain dict for the rest of its life, and a Hoeffding tree's leaves, touched on every
event, run measurably slower after each snapshot until they split (a bare river loop that
pickles its model every 1 000 events slows by the same ~12%).

    python benchmarks/bench_online.py [--repeats 3] [--rows 45312] [--every 1000 5000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from driftloop.controller import online_session
from driftloop.controller import project as projects
from driftloop.core import clock as clocks
from driftloop.core import config
from driftloop.data import elec2
from driftloop.data.sources import base as sources
from driftloop.store import artifacts, metadata
from driftloop.train import online as learners

LEARNER = "river.tree:HoeffdingAdaptiveTreeClassifier"
PARAMS = {"seed": 42}
GOAL = 0.8


def stream(rows: int) -> tuple[list[dict[str, Any]], list[Any]]:
    frame = elec2.load_elec2().iloc[:rows]
    return learners.records_of(frame, list(elec2.FEATURES)), frame["class"].tolist()


def river_repeat(records: list[dict[str, Any]], labels: list[Any]) -> tuple[float, list[Any]]:
    """Seconds for the bare loop, and its predictions."""
    from river import tree

    model = tree.HoeffdingAdaptiveTreeClassifier(**PARAMS)
    predictions = []
    started = time.perf_counter()
    for x, y in zip(records, labels, strict=True):
        predictions.append(model.predict_one(x))
        model.learn_one(x, y)
    return time.perf_counter() - started, predictions


def driftloop_repeat(
    records: list[dict[str, Any]], labels: list[Any], every: int = 5000
) -> tuple[float, list[Any], int, float]:
    """Seconds for the same events through an `OnlineSession`, its predictions, how many
    snapshots it stored and the seconds those took."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = config.PipelineSpec.model_validate({
            "name": "bench", "source": {"path": "none/*.csv"}, "target": "class",
            "online": {"learner": LEARNER, "params": PARAMS,
                       "checkpoint": {"every_events": every, "tolerance": 1.0},
                       "drift": {"detector": "adwin", "action": "none"}},
        })
        clock = clocks.SystemClock()
        store = metadata.MetadataStore.open(f"sqlite:///{Path(tmp) / 'meta.db'}", clock=clock)
        store.ensure_pipeline("bench", spec.model_dump(mode="json"))
        project = projects.Project(
            spec=spec, base_dir=Path(tmp), store=store,
            artifacts=artifacts.ArtifactStore(str(Path(tmp) / "artifacts")),
            source=sources.build_source(spec.source, Path(tmp)), clock=clock)
        session = online_session.OnlineSession(project, list(elec2.FEATURES), "bench")
        snapshot_seconds = [0.0]
        checkpoint = session.checkpoint

        def timed_checkpoint() -> online_session.Checkpoint:
            started = time.perf_counter()
            try:
                return checkpoint()
            finally:
                snapshot_seconds[0] += time.perf_counter() - started

        session.checkpoint = timed_checkpoint  # type: ignore[method-assign]
        predictions = []
        started = time.perf_counter()
        for x, y in zip(records, labels, strict=True):
            served = session.model.predict_one(x)
            predictions.append(served)
            session.learn([online_session.Event(x, y, served)])
        seconds = time.perf_counter() - started
        snapshots = len(store.list_model_versions("bench"))
        store.close()
    return seconds, predictions, snapshots, snapshot_seconds[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=45_312)
    parser.add_argument("--every", type=int, nargs="+", default=[1000, 5000],
                        help="events per snapshot, one row each (the spec's default: 5000)")
    args = parser.parse_args()
    records, labels = stream(args.rows)

    theirs: list[float] = []
    ours: dict[int, list[float]] = {every: [] for every in args.every}
    snapshots: dict[int, int] = {}
    stored: dict[int, list[float]] = {every: [] for every in args.every}
    for _ in range(args.repeats):
        seconds, bare = river_repeat(records, labels)
        theirs.append(seconds)
        for every in args.every:
            seconds, served, snapshots[every], took = driftloop_repeat(records, labels, every)
            ours[every].append(seconds)
            stored[every].append(took)
            if served != bare:
                raise SystemExit("driftloop and river made different predictions: not comparable")

    their_rate = len(records) / statistics.median(theirs)
    table = Table(title=f"Online learning, predict + learn per event, one event at a time: "
                        f"median of {args.repeats} runs ({len(records):,} Elec2 events, river HAT)")
    for column in ("snapshot every", "snapshots", "of which storing", "driftloop events/s",
                   "river events/s", "driftloop / river"):
        table.add_column(column, justify="right")
    for every in args.every:
        ratio = len(records) / statistics.median(ours[every]) / their_rate
        style = "green" if ratio >= GOAL else "red"
        table.add_row(f"{every:,} events", str(snapshots[every]),
                      f"{statistics.median(stored[every]):.2f} s",
                      f"{len(records) / statistics.median(ours[every]):,.0f}",
                      f"{their_rate:,.0f}", f"[{style}]{ratio:.1%}[/{style}]")
    Console().print(table)
    print(f"goal: driftloop >= {GOAL:.0%} of bare river; started {datetime.now(UTC):%H:%M} UTC")


if __name__ == "__main__":
    main()
