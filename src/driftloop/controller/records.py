"""Retention of the loop's own records: evaluations, decisions and profiles past
`retention.history` go to the archive (`store.retire`), so the database stops growing with
the pipeline's age. Called by `controller.retention_tick` in the same bounded slices as the rest.

`retention.history` is an amount in the data's units: a record is kept while less than that
came after it (a duration, or the batches or rows accepted since), and always while younger
than the label horizon. Whatever its age, never retired:

- the evaluations a version an alias holds (champion, canary, shadow...) is judged on: its
  newest ones covering the widest performance window (the live metric, the estimate), its
  first ones up to `gather.REFERENCE_ROWS` errors (the reference of the error test), and its
  newest one; and the newest evaluation of a batch (where scoring continues);
- a decision that caused a run (the lineage of a version), or the newest of its kind, fired
  or not;
- the profile (drift reference) of a version whose training batches retention keeps: held by
  an alias, a rollback target, or one of the newest `retention.versions`;
- an online snapshot (a model version stored at a checkpoint, with its run and model file)
  held by an alias, a rollback target, or one of the newest `retention.versions`, and one a
  person noted or exported (`store.snapshots`); an older one goes with its model file.

A version's other evaluations, the profile of an old version nothing holds, and an old
snapshot's version, run and model bytes are in the archive afterwards (`driftloop gc` deletes
them with the other archived files); a process that starts later rebuilds its concept-drift
detector from the evaluations kept.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime

from driftloop.controller import evaluate, gather
from driftloop.controller import history as histories
from driftloop.controller import project as projects
from driftloop.core import clock as clocks
from driftloop.core.amount import Amount
from driftloop.store import archive, entities, retire, snapshots
from driftloop.store import retention as stored

PROFILES = 10
"""Profiles one step looks at at most (one is made per training; each is large)."""
SNAPSHOTS = 10
"""Online snapshots one step looks at at most (each moves its model file)."""


@dataclass(frozen=True)
class Retired:
    """How many records one step moved out of the database."""

    evaluations: int = 0
    decisions: int = 0
    profiles: int = 0
    snapshots: int = 0

    def __bool__(self) -> bool:
        return bool(self.evaluations or self.decisions or self.profiles or self.snapshots)


class Records:
    """Retires one pipeline's evaluations, decisions and profiles, a slice per `step`."""

    def __init__(
        self,
        project: projects.Project,
        history: histories.History,
        evaluations: evaluate.Evaluations | None,
        files: archive.Archive,
        rollbacks: stored.Rollbacks | None = None,
    ) -> None:
        self.project = project
        self.history = history
        self.evaluations = evaluations
        self.files = files
        self.rollbacks = rollbacks or stored.Rollbacks(project.store, project.name)
        self._decisions_after = 0  # every decision up to this id is retired or kept for good
        self._profiles_after = 0  # every profile up to this id is retired
        self._snapshots_after = 0  # every version up to this number is retired or kept for good
        self._seen_batches = -1  # accepted batches when the last step ran
        self._full = False  # the last step moved a whole slice: more may be waiting
        self.before: datetime | None = None  # records before this time were due last step

    def due(self, versions: bool = False) -> bool:
        """Whether a step may find something: records come with batches (and with `versions`,
        new online snapshots), so only after a new batch or snapshot (or when the last step
        left some behind): a tick that ingests nothing costs nothing here."""
        return versions or self._full or len(self.history.accepted) != self._seen_batches

    def step(self, now: datetime) -> Retired:
        """Retire at most a slice of each kind of record."""
        self._seen_batches = len(self.history.accepted)
        spec = self.project.spec.retention
        before = self.cutoff(spec.history, now)
        horizon = now - spec.label_horizon.duration
        if before is None:
            self._full = False
            return Retired()
        before = self.before = min(before, horizon)
        files = self.files if spec.then == "archive" else None
        store, name, limit = self.project.store, self.project.name, spec.slice_rows
        evaluations = self.retire_evaluations(files, before, now)
        due, self._decisions_after = retire.due_decisions(
            store, name, before=before, after_id=self._decisions_after, limit=limit
        )
        decisions = retire.retire(store, files, name, "decisions", due)
        waiting, self._profiles_after = retire.due_profiles(
            store,
            name,
            before=before,
            after_id=self._profiles_after,
            limit=PROFILES,
            keep=lambda: stored.needed_versions(store, name, spec.versions, self.rollbacks),
        )
        profiles = retire.retire(store, files, name, "profiles", waiting)
        retired = self.retire_snapshots(files, before)
        self._full = decisions >= limit or evaluations >= limit or retired >= SNAPSHOTS
        return Retired(evaluations, decisions, profiles, retired)

    def retire_snapshots(self, files: archive.Archive | None, before: datetime) -> int:
        """Retire the online snapshots stored before `before` that nothing keeps, at most
        `SNAPSHOTS`."""
        if self.project.spec.online is None:
            return 0
        store, name = self.project.store, self.project.name
        due, self._snapshots_after = snapshots.due_snapshots(
            store, name, before=before, after=self._snapshots_after, limit=SNAPSHOTS,
            keep=lambda: stored.needed_versions(
                store, name, self.project.spec.retention.versions, self.rollbacks),
        )
        return snapshots.retire_snapshots(store, self.project.artifacts, files, name, due)

    def cutoff(self, amount: Amount, now: datetime) -> datetime | None:
        """Records made before this time have `amount` after them (None: none has yet)."""
        if amount.unit == "seconds":
            return now - amount.duration
        batches, sizes = self.history.accepted, self.history.sizes
        if amount.unit == "batches":
            count = int(amount.value)
            if count == 0:
                return now
            return clocks.as_utc(batches[-count].created_at) if len(batches) >= count else None
        # rows: the newest batch i with at least `amount` rows in batches i, i+1, ...
        i = bisect.bisect_right(sizes, sizes[-1] - amount.value) - 1
        return clocks.as_utc(batches[i].created_at) if 0 <= i < len(batches) else None

    def retire_evaluations(
        self,
        files: archive.Archive | None,
        before: datetime,
        now: datetime,
    ) -> int:
        """Retire the oldest evaluations made before `before` that nothing needs, up to
        `slice_rows` of their rows."""
        if self.evaluations is None:
            return 0
        items = self.evaluations.items
        if not items or items[0].at >= before:
            return 0
        keep = self.kept_evaluations(now)
        due, rows = [], 0
        for evaluation in items:
            if evaluation.at >= before or rows >= self.project.spec.retention.slice_rows:
                break
            if evaluation.id not in keep:
                due.append(evaluation.id)
                rows += max(1, evaluation.rows)
        moved = retire.retire(self.project.store, files, self.project.name, "evaluations", due)
        self.evaluations.forget(set(due))
        return moved

    def kept_evaluations(self, now: datetime) -> set[int]:
        """Ids of the evaluations kept whatever their age (see the module's docstring)."""
        assert self.evaluations is not None  # the caller checked
        items = self.evaluations.items
        keep = {next((e.id for e in reversed(items) if e.batch_id is not None), 0)}
        windows = [t.window for t in self.project.spec.triggers if t.kind == "performance"]
        for version in set(self.project.store.aliases.all(self.project.name).values()):
            mine = [e for e in items if e.version == version]
            keep.update(e.id for e in _covering(mine[::-1], windows, now))
            errors = 0
            for evaluation in mine:
                if errors >= gather.REFERENCE_ROWS:
                    break
                keep.add(evaluation.id)
                errors += len(evaluation.errors)
        return keep


def _covering(
    newest_first: list[entities.Evaluation], windows: list[Amount], now: datetime
) -> list[entities.Evaluation]:
    """What `signals` reads of one version's evaluations: the newest one, the newest labelled
    ones until every window is covered (the live metric), and the newest unlabelled ones before
    them until every window is covered in estimated rows (the estimate)."""
    taken = newest_first[:1]
    rows = count = estimated = guessed = 0
    estimating = True
    for evaluation in newest_first:
        elapsed = now - evaluation.at
        if evaluation.value is not None:
            estimating = False
            taken.append(evaluation)
            rows, count = rows + evaluation.rows, count + 1
            if all(w.reached(rows=rows, batches=count, elapsed=elapsed) for w in windows):
                break
        elif estimating and evaluation.estimated_value is not None:
            taken.append(evaluation)
            estimated, guessed = estimated + evaluation.estimated_rows, guessed + 1
            estimating = not all(
                w.reached(rows=estimated, batches=guessed, elapsed=elapsed) for w in windows
            )
    return taken
