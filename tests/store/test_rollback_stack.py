"""Alias rollbacks as a stack, on SQLite and on the live PostgreSQL: successive rollbacks walk
back through the promotions, each move keeps its action, and revision 0006 gives the moves of
an existing database their actions from the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from driftloop.core import errors
from driftloop.core.clock import FakeClock
from driftloop.store import _alias_stack, migrations, tables
from driftloop.store.metadata import MetadataStore

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
PIPELINE = "churn"


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path}/meta.db"  # a file: the migration test reopens it


@pytest.fixture
def store(url: str) -> Iterator[MetadataStore]:
    opened = MetadataStore.open(url, clock=FakeClock(T0))
    opened.pipelines.ensure(PIPELINE, {"trainer": "sklearn"})
    for _ in range(4):
        run = opened.runs.start(PIPELINE, trainer="sklearn", params={}, batch_ids=[])
        opened.versions.add(
            PIPELINE, run_id=run.id, artifact_uri=f"file:///m/{run.id}.skops", sha256="ab" * 32,
            metrics={"accuracy": 0.9},
        )
    yield opened
    opened.close()


def promote(store: MetadataStore, *versions: int | None, alias: str = "champion") -> None:
    for version in versions:
        store.aliases.set(PIPELINE, alias, version, actor="gate", reason=f"to {version}")


def rollback(store: MetadataStore, alias: str = "champion") -> int | None:
    return store.aliases.rollback(PIPELINE, alias, actor="ana", reason="bad model").version


def test_successive_rollbacks_walk_back_through_the_promotions(store: MetadataStore) -> None:
    promote(store, 1, 2, 3)
    assert rollback(store) == 2
    assert rollback(store) == 1
    with pytest.raises(errors.ConflictError, match="no earlier version to roll back to"):
        rollback(store)
    assert store.aliases.get(PIPELINE, "champion") == 1
    history = store.aliases.history(PIPELINE, "champion")
    assert [(m.action, m.previous, m.version) for m in history] == [
        ("promote", None, 1), ("promote", 1, 2), ("promote", 2, 3),
        ("rollback", 3, 2), ("rollback", 2, 1)]
    actions = [e.action for e in store.audit.list(target_prefix=f"{PIPELINE}/")]
    assert actions == [m.action for m in history]


def test_a_promotion_after_a_rollback_goes_on_the_stack(store: MetadataStore) -> None:
    promote(store, 1, 2)
    assert rollback(store) == 1
    promote(store, 3)
    assert rollback(store) == 1  # v2 was rolled back from: it is not a version to go back to
    with pytest.raises(errors.ConflictError):
        rollback(store)


def test_rollbacks_skip_cleared_entries_and_other_aliases(store: MetadataStore) -> None:
    promote(store, 1, None, 2)
    promote(store, 4, alias="challenger")
    assert rollback(store) == 1
    with pytest.raises(errors.ConflictError):
        rollback(store)  # the cleared entry v1 went over is gone with v2
    with pytest.raises(errors.ConflictError):
        rollback(store, "challenger")
    store.aliases.set(PIPELINE, "canary", 3, actor="ctl", reason="test", action="rollout")
    store.aliases.set(PIPELINE, "canary", None, actor="ctl", reason="failed", action="rollback")
    with pytest.raises(errors.ConflictError):
        rollback(store, "canary")
    moved = store.aliases.set(PIPELINE, "canary", 4, actor="ctl", reason="test", action="rollout")
    assert moved.action == "rollout"
    assert [m.action for m in store.aliases.history(PIPELINE, "canary")] == [
        "rollout", "rollback", "rollout"]


def test_retention_protects_the_version_a_rollback_really_goes_to(store: MetadataStore) -> None:
    """With v3 retired, a rollback from v4 goes to v2, so v2 is what retention must keep."""
    from driftloop.store import retention

    promote(store, 1, 2, 3, 4)
    with store.db.write() as conn:
        conn.execute(sa.delete(tables.model_versions).where(tables.model_versions.c.version == 3))
    assert retention.Rollbacks(store, PIPELINE).targets() == {2}
    assert retention.needed_versions(store, PIPELINE, 0) >= {2, 4}
    assert rollback(store) == 2


@pytest.mark.parametrize(("moves", "target"), [
    ([], None),
    ([("promote", 1)], None),
    ([("promote", 1), ("promote", 2), ("promote", 3), ("rollback", 2)], 1),
    ([("promote", 1), ("promote", 2), ("promote", 1), ("promote", 3), ("rollback", 1)], 2),
    ([("promote", 1), ("promote", 2), ("promote", 3), ("rollback", 1)], None),  # chose v1
    ([("promote", 1), ("promote", None)], 1),
    ([("rollout", 5), ("rollback", None), ("rollout", 6)], None),
])
def test_rollback_target_of_a_history(
    moves: list[tuple[str, int | None]], target: int | None,
) -> None:
    assert _alias_stack.rollback_target(moves) == target


def test_migration_0006_on_an_existing_database_backfills_actions(
    store: MetadataStore, url: str,
) -> None:
    promote(store, 1, 2, 3)
    rollback(store)  # v2
    promote(store, 4, alias="challenger")
    _downgrade(store, "0005")
    with store.engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("alias_moves")}
    assert "action" not in columns and store.schema_revision() == "0005"
    store.close()

    reopened = MetadataStore.open(url, clock=FakeClock(T0))
    assert reopened.schema_revision() == migrations.head_revision()
    assert [m.action for m in reopened.aliases.history(PIPELINE)] == [
        "promote", "promote", "promote", "rollback", "promote"]
    assert rollback(reopened) == 1  # the rollback made before the upgrade counts as one
    reopened.close()


def test_moves_without_an_audit_row_read_as_promotions(
    store: MetadataStore, url: str,
) -> None:
    promote(store, 1, 2, 3)
    rollback(store)  # v2
    _downgrade(store, "0005")
    with store.engine.begin() as conn:
        conn.execute(sa.delete(tables.audit_log))
    store.close()

    reopened = MetadataStore.open(url, clock=FakeClock(T0))
    with reopened.engine.connect() as conn:
        stored = conn.execute(sa.select(tables.alias_moves.c.action)).scalars().all()
    assert stored == [None, None, None, None]
    assert [m.action for m in reopened.aliases.history(PIPELINE)] == ["promote"] * 4
    assert rollback(reopened) == 3  # without its action, the old rollback was a promotion
    reopened.close()


def _downgrade(store: MetadataStore, revision: str) -> None:
    with store.engine.begin() as conn:
        command.downgrade(migrations.alembic_config(conn), revision)  # type: ignore[arg-type]


def test_newest_runs_and_moves_only_when_asked(store: MetadataStore) -> None:
    promote(store, 1, 2, 3, 4)
    runs = store.runs.list(PIPELINE)
    assert [r.id for r in store.runs.list(PIPELINE, last=2)] == [r.id for r in runs[-2:]]
    moves = store.aliases.history(PIPELINE)
    assert store.aliases.history(PIPELINE, last=3) == moves[-3:]
    assert store.aliases.history(PIPELINE, "champion", last=10) == moves
