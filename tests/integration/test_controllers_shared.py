"""Several controllers on one PostgreSQL store: real `driftloop run` processes race over a
pipeline whose data keeps arriving and drifting, and one is killed with SIGKILL mid-training.

What must hold is read back from the store afterwards: every file ingested once, one decision
per new evidence, one training per fired decision, one version per successful training, and a
champion alias whose move history (and audit log) is one unbroken chain.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from driftloop.controller import project as projects
from driftloop.controller import tick
from driftloop.core import errors
from driftloop.data import elec2
from driftloop.store.metadata import MetadataStore

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DAY = elec2.ROWS_PER_DAY
DRIFTLOOP = [sys.executable, "-c", "from driftloop.cli.main import app; app()"]

SPEC = """\
name: race
store: {store}
artifacts: ./artifacts
source: {{kind: files, path: data/*.csv}}
target: class
timestamp: time
validation:
  bounds: {{nswprice: [0, 1], nswdemand: [0, 1], vicprice: [0, 1], vicdemand: [0, 1],
           transfer: [0, 1]}}
trainer:
  function: train:make_model
  params: {{max_iter: 5}}
  window: {{kind: last_duration, duration: 7d}}
  executor: inline
triggers:
  - {{kind: drift}}
  - {{kind: performance, floor: 0.62, window: 48}}
  - {{kind: volume, rows: 96}}
cooldown: 0s
lease_timeout: {lease}
gate: {{enabled: false, holdout_rows: 48}}
"""

TRAINER = """\
import os
import time
from pathlib import Path

from sklearn.ensemble import HistGradientBoostingClassifier


def make_model(max_iter=5):
    pause = float(os.environ.get("SLOW_TRAINING", "0"))
    if pause:  # a long training, announced so the test knows when to kill the controller
        Path(os.environ["TRAINING_MARK"]).write_text(str(os.getpid()))
        time.sleep(pause)
    return HistGradientBoostingClassifier(max_iter=max_iter, random_state=0)
"""


def make_project(root: Path, store: str, lease: str) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "driftloop.yaml").write_text(SPEC.format(store=store, lease=lease))
    (root / "train.py").write_text(TRAINER)
    return root / "driftloop.yaml"


@functools.cache
def stream() -> pd.DataFrame:
    return elec2.load_elec2().iloc[: 60 * DAY]


def write_day(root: Path, day: int) -> Path:
    """Day `day` of Elec2 as one CSV file, written under a hidden name and renamed into place."""
    part = stream().iloc[day * DAY : (day + 1) * DAY]
    path = root / "data" / f"{part['time'].iloc[0]:%Y-%m-%d}.csv"
    hidden = path.with_name("." + path.name)
    part.to_csv(hidden, index=False)
    hidden.rename(path)
    return path


def start(spec: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*DRIFTLOOP, "run", "--spec", str(spec), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200", **env},
    )


def test_four_controllers_race_and_every_action_happens_once(pg_url: str, tmp_path: Path) -> None:
    root = tmp_path / "race"
    spec = make_project(root, pg_url, lease="5s")
    for day in range(3):  # a first model can be trained at once
        write_day(root, day)
    days = 24
    began = time.perf_counter()
    # Enough ticks to outlive the first training: a tick that finds the lease taken costs a
    # few milliseconds, so 100 of them can be over before the holder's first model is trained.
    controllers = [start(spec, "--ticks", "400", "--every", "0.1") for _ in range(4)]
    watcher = MetadataStore(pg_url)

    def ingested() -> int:
        try:
            return len(watcher.batches.list("race"))
        except (errors.NotFoundError, sa.exc.ProgrammingError):  # not created yet
            return 0

    def feed() -> None:  # a new day as soon as the last one was ingested, by any controller
        for day in range(3, days):
            while ingested() < day and any(p.poll() is None for p in controllers):
                time.sleep(0.05)
            write_day(root, day)

    feeding = threading.Thread(target=feed)
    feeding.start()
    outputs = [process.communicate(timeout=300)[0] for process in controllers]
    feeding.join()
    watcher.close()
    elapsed = time.perf_counter() - began
    for process, output in zip(controllers, outputs, strict=True):
        assert process.returncode == 0, output
        assert "tick failed" not in output and "Traceback" not in output, output
    acting = [out for out in outputs if out.count("ingested") or out.count("decision")]
    assert len(acting) >= 2, "the lease never changed hands"

    project = projects.open_project(spec)
    try:
        store, name = project.store, project.name
        raced = (len(store.batches.list(name)), len(store.runs.list(name)))
        # On a loaded machine the controllers may use up their ticks before the feeder is done;
        # a last tick takes in the rest, so that "every file once" can be checked.
        tick.Controller(project).tick()
        check_exactly_once(project, root, days)
        runs = store.runs.list(name)
        print(
            f"\nrace: 4 controllers x 100 ticks in {elapsed:.1f}s; {raced[0]} batches and "
            f"{raced[1]} trainings by them ({days} and {len(runs)} after a last tick), "
            f"{len(store.decisions.list(name, kind='retrain'))} decisions, "
            f"{len(store.versions.list(name))} versions; ticks "
            "skipped / idle / ingesting per controller: "
            + ", ".join(
                f"{o.count('skipped:')}/{o.count('nothing new')}/{o.count('ingested')}"
                for o in outputs
            )
        )
        # how much the racers get through depends on the machine's load (trainings hold the
        # lease); what matters is that they ingested and retrained while racing
        assert raced[0] >= 4 and raced[1] >= 2, "the race should ingest and retrain"
    finally:
        project.close()


def check_exactly_once(project: projects.Project, root: Path, days: int) -> None:
    """The store's own account of what happened shows each action once."""
    store, name = project.store, project.name
    batches = store.batches.list(name)
    assert len(batches) == days  # every file, and each once
    assert all(b.status == "accepted" for b in batches)
    assert len({b.fingerprint for b in batches}) == len({b.source_uri for b in batches}) == days
    assert {Path(b.source_uri).name for b in batches} == {p.name for p in root.glob("data/*.csv")}

    decisions = store.decisions.list(name, kind="retrain")
    seen = [int(d.evidence["last_batch_id"]) for d in decisions]
    assert seen == sorted(set(seen)), f"two decisions on the same evidence: {seen}"

    scored = Counter((e.batch_id, e.version) for e in store.evaluations.list(name))
    assert all(count == 1 for count in scored.values()), scored.most_common(3)

    runs = store.runs.list(name)
    fired = [d.id for d in decisions if d.fired]
    assert [r.status for r in runs] == ["succeeded"] * len(runs)
    assert sorted(r.decision_id for r in runs if r.decision_id is not None) == fired
    versions = store.versions.list(name)
    assert sorted(v.run_id for v in versions if v.run_id is not None) == [r.id for r in runs]
    assert [v.version for v in versions] == list(range(1, len(runs) + 1))

    moves = store.aliases.history(name, "champion")  # gate off, replace: every version goes live
    assert [m.version for m in moves] == [v.version for v in versions]
    assert [m.previous for m in moves] == [None] + [m.version for m in moves[:-1]]
    audited = store.audit.list(action="promote", target_prefix=f"{name}/champion")
    assert [(a.details["from"], a.details["to"]) for a in audited] == [
        (m.previous, m.version) for m in moves
    ]
    assert store.aliases.get(name, "champion") == len(versions)


def test_a_controller_killed_mid_training_is_replaced_after_the_lease_timeout(
    pg_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "kill"
    lease = timedelta(seconds=2)
    spec = make_project(root, pg_url, lease="2s")
    for day in range(4):
        write_day(root, day)
    mark = tmp_path / "training-started"
    doomed = start(spec, "--ticks", "1", SLOW_TRAINING="60", TRAINING_MARK=str(mark))
    deadline = time.monotonic() + 60
    while not mark.exists():
        assert doomed.poll() is None, doomed.communicate()[0]
        assert time.monotonic() < deadline, "the first controller never started training"
        time.sleep(0.05)

    rescuer = start(spec, "--every", "0.1", PYTHONUNBUFFERED="1")  # ticks until stopped
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(rescuer.stdout.readline, "")))
    reader.start()
    while not any("skipped" in line for line in lines):  # it is up, and finds the lease taken
        assert rescuer.poll() is None and time.monotonic() < deadline + 60, lines
        time.sleep(0.05)
    time.sleep(3 * lease.total_seconds())  # the training outlives its lease: the heartbeat keeps it
    project = projects.open_project(spec)
    try:
        store, name = project.store, project.name
        assert [r.status for r in store.runs.list(name)] == ["running"]
        holder = store.leases.get(name)
        assert holder is not None and f":{doomed.pid}:" in holder.holder
        assert rescuer.poll() is None

        doomed.send_signal(signal.SIGKILL)
        doomed.communicate(timeout=10)
        killed_at = project.clock.now()
        deadline = time.monotonic() + 60
        taken_at = None
        while store.aliases.get(name, "champion") is None:
            assert rescuer.poll() is None, lines
            assert time.monotonic() < deadline, "no controller took over"
            now = store.leases.get(name)
            if taken_at is None and now is not None and now.token > holder.token:
                taken_at = project.clock.now()
            time.sleep(0.05)
        rescuer.send_signal(signal.SIGINT)
        rescuer.wait(60)
        reader.join()
        assert rescuer.returncode == 0, lines

        runs = store.runs.list(name)
        assert [r.status for r in runs] == ["interrupted", "succeeded"]
        assert "interrupted" in str(runs[0].error)  # repaired by the rescuer
        assert runs[0].decision_id == runs[1].decision_id  # the same decision, carried out once
        # The rescuer waited for the dead holder's lease to lapse: at least two thirds of the
        # timeout (the holder renewed every third), at most the timeout and a few of its ticks.
        assert taken_at is not None and runs[1].started_at >= taken_at - timedelta(seconds=0.1)
        waited = taken_at - killed_at
        assert lease * 2 / 3 - timedelta(seconds=0.3) < waited < lease + timedelta(seconds=5)
        print(f"\nkill -9: lease {lease.total_seconds():g}s, taken over {waited} after the kill")
        versions = store.versions.list(name)
        assert [(v.version, v.run_id) for v in versions] == [(1, runs[1].id)]
        assert store.aliases.get(name, "champion") == 1
        assert len(store.decisions.list(name, kind="retrain", fired=True)) == 1
        assert len(store.aliases.history(name, "champion")) == 1
    finally:
        project.close()
        for process in (doomed, rescuer):
            if process.poll() is None:
                process.kill()
            process.wait()
        reader.join()
        for process in (doomed, rescuer):
            if process.stdout is not None:
                process.stdout.close()
