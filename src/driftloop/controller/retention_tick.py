"""Retention in the tick: one bounded slice of each kind of clean-up per tick (`retention:`
in the spec, `core.retention_spec`).

Each `step` moves at most `slice_rows` predictions to the archive, merges at most as many
per-minute serving-stats rows into hours (and deletes as many hourly rows past their time),
archives at most `BATCH_FILES` batch files after looking at at most `SCAN` batch records,
retires at most a slice of evaluations, decisions, profiles and online snapshots
(`controller.records`), merges the small archived files of at most one finished day into one
(`Archive.merge`, up to `retention.merge_rows` rows; it looks from the last day it found
merged on, so a file retired later into an older day stays as it is), and returns at most
`VACUUM_PAGES` free SQLite pages: a tick's cost does not depend on the backlog, which shrinks
by a slice per tick, nor on what the store has kept.

Never removed (the tests hold retention to this):

- a prediction younger than the label horizon, one served since a rollout under evaluation
  began (its canary, shadow or challenger is compared on them), or one whose label the
  controller has not scored yet;
- a batch file in the training lineage of a version an alias holds, of a rollback target or
  of one of the newest `versions` versions; one the next training's window reaches (windows
  ``all``, ``auto`` and ``since_drift`` reach every accepted batch: then no accepted file
  goes); one an online pipeline's champion snapshot has not learned yet; one younger than the
  label horizon (late labels join its rows); one within `retention.batches` (quarantined:
  `retention.quarantine`) of the newest.

The drift reference is the champion's training profile, stored in the database from its
training batches, which its lineage keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from driftloop.controller import evaluate, records
from driftloop.controller import history as histories
from driftloop.controller import project as projects
from driftloop.core import clock as clocks
from driftloop.core import config, errors
from driftloop.core.amount import Amount
from driftloop.store import archive, entities
from driftloop.store import retention as stored

BATCH_FILES = 5
"""Batch files one step archives at most (a batch is one file: reading and writing it is the
step's largest cost)."""
SCAN = 200
"""Batch records one step looks at at most."""
VACUUM_PAGES = 2000
"""Free SQLite pages one step returns at most (8 MB at the default page size)."""


@dataclass(frozen=True)
class Swept:
    """What one retention step did."""

    predictions: int = 0
    stats_merged: int = 0
    stats_dropped: int = 0
    batches: tuple[int, ...] = ()
    compacted: str | None = None
    retired: records.Retired = field(default_factory=records.Retired)
    merged_file: archive.ArchiveFile | None = None

    def __bool__(self) -> bool:
        return bool(self.predictions or self.stats_merged or self.stats_dropped or self.batches
                    or self.retired or self.merged_file)


class Retention:
    """Applies `project.spec.retention` to one pipeline, a slice per `step`."""

    def __init__(self, project: projects.Project, history: histories.History,
                 evaluations: evaluate.Evaluations | None = None) -> None:
        self.project = project
        self.history = history
        self._archive = archive.Archive(project.store, project.artifacts)
        self._rollbacks = stored.Rollbacks(project.store, project.name)
        self._records = records.Records(project, history, evaluations, self._archive,
                                        self._rollbacks)
        self._position = 0  # index in `history.accepted` where the next scan starts
        self._floor = 0  # every batch below this index is archived: scans start here
        self._quarantine_after = 0  # quarantined batches up to this id are archived
        self._archived: set[int] = set()
        self._merged_upto = ""  # archived days before this one are merged (`Archive.merge`)

    def step(self, versions: bool = False) -> Swept:
        """One slice of every kind of clean-up; `versions`: new versions were stored since the
        last step (an online learner's snapshots), old ones may be due even without a batch."""
        spec, store, name = self.project.spec.retention, self.project.store, self.project.name
        now = self.project.clock.now()
        before = now - spec.label_horizon.duration
        started = stored.rollout_start(store, name)
        if started is not None:
            before = min(before, started)
        cursor = store.batches.get_cursor(name, evaluate.FEEDBACK_CURSOR) or {}
        evaluated = int(cursor.get("after", 0))
        files = self._archive if spec.predictions == "archive" else None
        moved = stored.archive_predictions(
            store, files, name, before=before, evaluated=evaluated, limit=spec.slice_rows)
        merged = stored.downsample_stats(
            store, name, before=now - spec.minute_stats, limit=spec.slice_rows)
        dropped = 0
        if spec.hourly_stats is not None:
            dropped = stored.drop_hourly_stats(
                store, name, before=now - spec.hourly_stats, limit=spec.slice_rows)
        batches = tuple(self.quarantined(now)) + tuple(self.accepted(now))
        retired = self._records.step(now) if self._records.due(versions) else records.Retired()
        joined = None
        if moved or retired:  # a day's archive is complete once retention moved past it
            oldest = min(before, self._records.before or before)
            day = f"{oldest:%Y-%m-%d}"
            joined = self._archive.merge(name, before_day=day, rows=spec.merge_rows,
                                         from_day=self._merged_upto)
            if joined is None:  # every day before `day` is merged: later calls start there
                self._merged_upto = max(self._merged_upto, day)
        compacted = stored.compact(store, pages=VACUUM_PAGES)
        return Swept(moved, merged, dropped, batches, compacted, retired, joined)

    def accepted(self, now: datetime) -> list[int]:
        """Archive (or delete) the files of accepted batches nothing needs any more."""
        spec = self.project.spec
        reach = window_reach(spec)
        found = self.history.accepted
        if reach is None or not found:
            return []
        needed: set[int] | None = None
        learned = 0.0
        done: list[int] = []
        while self._floor < len(found) and self.gone(found[self._floor]):
            self._floor += 1
        self._position = max(self._position, self._floor)
        end = min(len(found), self._position + SCAN)
        for i in range(self._position, end):
            batch = found[i]
            if not self.due(i, batch, now, reach):
                self._position = self._floor  # newer ones are not due either: start over
                return done
            if not self.gone(batch):
                if needed is None:
                    needed = stored.needed_batches(
                        self.project.store, self.project.name, spec.retention.versions,
                        self._rollbacks)
                    learned = self.learned_upto()
                if batch.id > learned:  # an online learner learns it again after a restart
                    self._position = self._floor
                    return done
                if batch.id not in needed:
                    if len(done) == BATCH_FILES:
                        self._position = i
                        return done
                    self.archive_batch(batch)
                    done.append(batch.id)
        self._position = self._floor if end == len(found) else end
        return done

    def learned_upto(self) -> float:
        """The newest batch an online pipeline's champion snapshot has learned (a process that
        starts later continues from it and learns the batches after it again); no limit for a
        pipeline that trains in batches."""
        if self.project.spec.online is None:
            return float("inf")
        store, name = self.project.store, self.project.name
        number = store.aliases.get(name, "champion")
        if number is None:
            return 0.0
        return float(store.versions.get(name, number).metrics.get("data_upto_batch", 0))

    def gone(self, batch: entities.Batch) -> bool:
        """Whether the batch's file has left already (by this process or an earlier one)."""
        return batch.archived_at is not None or batch.id in self._archived

    def due(self, i: int, batch: entities.Batch, now: datetime, reach: list[Amount]) -> bool:
        """Whether accepted batch `i` of the history is past every amount that keeps it."""
        spec = self.project.spec.retention
        sizes = self.history.sizes
        newer_rows = sizes[-1] - sizes[i + 1]
        newer_batches = len(self.history.accepted) - 1 - i
        last = batch.end or batch.created_at
        if clocks.as_utc(batch.created_at) > now - spec.label_horizon.duration:
            return False
        return all(amount.reached(rows=newer_rows, batches=newer_batches,
                                  elapsed=now - clocks.as_utc(last))
                   for amount in [spec.batches, *reach])

    def quarantined(self, now: datetime) -> list[int]:
        """Archive (or delete) the files of quarantined and requeued batches past
        `retention.quarantine`, oldest first."""
        keep = self.project.spec.retention.quarantine
        done: list[int] = []
        count = int(keep.value) + 1 if keep.unit == "batches" else 0
        waiting = stored.quarantined(self.project.store, self.project.name,
                                     after_id=self._quarantine_after, limit=BATCH_FILES,
                                     count=count)
        for batch, newer in waiting:
            if not keep.reached(
                    rows=0, batches=newer, elapsed=now - clocks.as_utc(batch.created_at)):
                break
            self.archive_batch(batch)
            done.append(batch.id)
            self._quarantine_after = batch.id
        return done

    def archive_batch(self, batch: entities.Batch) -> None:
        """Move one batch's file to the archive (or delete it: `retention.then`). A file that
        is already gone is recorded as deleted; one whose bytes changed raises
        `errors.IntegrityError` and stays where it is."""
        data: Any = None
        if self.project.spec.retention.then == "archive" and batch.data_sha256 is not None \
                and batch.data_uri is not None:
            try:
                data = self.project.artifacts.get_frame(batch.data_uri, batch.data_sha256)
            except errors.NotFoundError:
                data = None
        stored.mark_archived(self.project.store, self._archive, self.project.name, batch.id, data)
        self._archived.add(batch.id)


def window_reach(spec: config.PipelineSpec) -> list[Amount] | None:
    """How far back the next training's window reaches, as amounts; None when it may reach
    every accepted batch (``all``, ``auto``, ``since_drift``). An online learner has no
    window: it has learned them (`Retention.learned_upto`)."""
    if spec.online is not None:
        return []
    window = spec.trainer.window
    if window.kind == "last" and window.size is not None:
        return [window.size]
    if window.kind == "last_rows" and window.rows is not None:
        return [Amount(window.rows, "rows")]
    if window.kind == "last_duration" and window.duration is not None:
        return [Amount(window.duration.total_seconds(), "seconds")]
    return None
