"""The lineage of one model version, read from the metadata store: the batches it was trained
on, the training run, the decision (and its evidence) that caused the run, the gate report,
and every alias move that involved the version.

`driftloop models show` prints it and the dashboard's model version page (`ui.pages`) renders
it; both answer "why is this model live?" from the same reads.

    >>> from datetime import UTC, datetime
    >>> from driftloop.core.clock import FakeClock
    >>> from driftloop.store.metadata import MetadataStore
    >>> store = MetadataStore.open("sqlite://", clock=FakeClock(datetime(2024, 1, 1, tzinfo=UTC)))
    >>> _ = store.pipelines.ensure("p", {})
    >>> v = store.versions.add("p", run_id=None, artifact_uri="m", sha256="0" * 64,
    ...                             metrics={})
    >>> _ = store.aliases.set("p", "champion", 1, actor="ann", reason="first")
    >>> found = of_version(store, "p", 1)
    >>> found.version.version, found.run, [move.actor for move in found.moves]
    (1, None, ['ann'])
    >>> store.close()
"""

from __future__ import annotations

from dataclasses import dataclass

from driftloop.store import entities, metadata


@dataclass(frozen=True)
class Lineage:
    """Everything a model version came from and went through."""

    version: entities.ModelVersion
    run: entities.TrainingRun | None
    decision: entities.Decision | None
    batches: tuple[entities.Batch, ...]
    moves: tuple[entities.AliasMove, ...]
    aliases: tuple[str, ...]
    """The aliases that point at the version now."""

    @property
    def gate(self) -> dict[str, object]:
        """The gate report ({} when the version was registered without one)."""
        return dict(self.version.gate_report or {})

    @property
    def reason(self) -> str:
        """Why the run was started, in the policy's words ("" without a decision)."""
        if self.decision is None:
            return ""
        policy = self.decision.evidence.get("policy") or {}
        return str(policy.get("reason", "") if isinstance(policy, dict) else "")


def of_version(store: metadata.MetadataStore, pipeline: str, number: int) -> Lineage:
    """The lineage of version `number` of `pipeline`; `NotFoundError` if it does not exist."""
    version = store.versions.get(pipeline, number)
    run = decision = None
    if version.run_id is not None:
        run = store.runs.get(version.run_id)
        if run.decision_id is not None:
            decision = store.decisions.get(run.decision_id)
    wanted = set(version.batch_ids)
    batches = [batch for batch in store.batches.list(pipeline) if batch.id in wanted]
    moves = tuple(
        move for move in store.aliases.history(pipeline) if number in (move.version, move.previous)
    )
    aliases = tuple(sorted(a for a, v in store.aliases.all(pipeline).items() if v == number))
    return Lineage(version, run, decision, tuple(batches), moves, aliases)
