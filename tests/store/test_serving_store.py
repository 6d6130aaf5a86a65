"""The serving store (prediction log, feedback, tokens) on SQLite and the live PostgreSQL, its
migration, and the batched prediction log writer."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from driftloop.core import errors
from driftloop.core.clock import FakeClock
from driftloop.server import auth, predictions
from driftloop.store import migrations, serving, serving_stats, serving_tables, tables
from driftloop.store.metadata import MetadataStore

START = datetime(2024, 3, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def meta(request: pytest.FixtureRequest) -> Iterator[MetadataStore]:
    url = "sqlite://" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    store = MetadataStore.open(url, clock=FakeClock(START))
    store.pipelines.ensure("p", {})
    yield store
    store.close()


def rows(n: int, *, pipeline: str = "p", version: int = 1, at: datetime = START) -> list[
        serving.Prediction]:
    return [
        serving.Prediction(str(uuid.uuid4()), pipeline, "champion", version, f"k{i}",
                           {"x": float(i), "c": "a"}, i % 2, {"0": 0.25, "1": 0.75},
                           at + timedelta(seconds=i))
        for i in range(n)
    ]


def test_migration_creates_the_serving_tables(meta: MetadataStore) -> None:
    assert meta.schema_revision() == migrations.head_revision()
    assert {"predictions", "feedback", "tokens"} <= set(tables.metadata.tables)
    assert serving_tables.predictions.metadata is tables.metadata
    with meta.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), tables.metadata)
    assert diff == [], "the migrations and the table definitions disagree"


def test_predictions_round_trip_and_retries_are_harmless(meta: MetadataStore) -> None:
    store = serving.ServingStore(meta)
    logged = rows(5)
    assert store.add_predictions(logged) == 5
    store.add_predictions(logged[:2])  # a retried batch
    assert store.count_predictions("p") == 5
    back = store.get_prediction(logged[3].id)
    assert back == logged[3]
    assert [p.id for p in store.list_predictions("p")] == [p.id for p in logged]
    assert [p.id for p in store.list_predictions("p", limit=2)] == [p.id for p in logged[3:]]
    assert store.list_predictions("p", version=2) == []
    with pytest.raises(errors.NotFoundError, match="does not exist"):
        store.get_prediction(str(uuid.uuid4()))
    with pytest.raises(errors.NotFoundError, match="pipeline 'nope'"):
        store.add_predictions(rows(1, pipeline="nope"))


def test_feedback_first_label_wins_and_unknown_ids_store_nothing(meta: MetadataStore) -> None:
    store = serving.ServingStore(meta)
    logged = rows(4)
    store.add_predictions(logged)
    done = store.add_feedback("p", [(logged[0].id, 1), (logged[1].id, 0), (logged[0].id, 0)],
                              actor="labeller")
    assert done.stored == (logged[0].id, logged[1].id)
    assert done.duplicates == (logged[0].id,)
    again = store.add_feedback("p", [(logged[1].id, 1), (logged[2].id, 1)], actor="labeller")
    assert again == serving.FeedbackResult((logged[2].id,), (logged[1].id,))
    unknown = str(uuid.uuid4())
    with pytest.raises(errors.NotFoundError, match=unknown) as caught:
        store.add_feedback("p", [(logged[3].id, 1), (unknown, 0)], actor="labeller")
    assert caught.value.context["missing"] == [unknown]
    joined = store.labelled("p")
    assert [(j.prediction.id, j.label) for j in joined] == [
        (logged[0].id, 1), (logged[1].id, 0), (logged[2].id, 1)]
    assert joined[0].prediction.features == {"x": 0.0, "c": "a"} and joined[0].actor == "labeller"
    newer = store.labelled("p", after_id=joined[1].feedback_id)
    assert [j.prediction.id for j in newer] == [logged[2].id]
    assert store.labelled("p", version=7) == []


def test_tokens_are_stored_hashed_revoked_and_audited(meta: MetadataStore) -> None:
    store = serving.ServingStore(meta)
    token, secret = auth.create_token(store, "ci", ["predict", "feedback"], actor="ops")
    assert token.roles == ("predict", "feedback") and token.active
    with meta.engine.connect() as conn:
        stored = conn.execute(sa.select(serving_tables.tokens)).one()
    assert stored.sha256 == auth.hash_secret(secret) and secret not in str(tuple(stored))
    cache = auth.TokenCache(store)
    assert cache.authenticate(secret).name == "ci"  # a miss falls back to the store
    with pytest.raises(errors.ConflictError, match="already exists"):
        auth.create_token(store, "ci", ["admin"], actor="ops")
    with pytest.raises(errors.ConfigError, match="roles must be some of"):
        auth.create_token(store, "x", ["root"], actor="ops")
    store.revoke_token("ci", actor="ops")
    assert not store.list_tokens()[0].active
    assert store.token_hashes() == {}
    cache.refresh()
    with pytest.raises(errors.AuthError, match="unknown or revoked"):
        cache.authenticate(secret)
    with pytest.raises(errors.AuthError, match="needs a token"):
        cache.authenticate(None)
    assert [(e.actor, e.action, e.target) for e in meta.audit.list(target_prefix="token/")] == [
        ("ops", "token.create", "token/ci"), ("ops", "token.revoke", "token/ci")]


class FlakyStore(serving.ServingStore):
    """Refuses the first `failures` writes, as a store that is briefly unreachable does."""

    def __init__(self, meta: MetadataStore, failures: int) -> None:
        super().__init__(meta)
        self.failures = failures
        self.batches: list[int] = []

    def add_predictions(self, rows: Any) -> int:
        if self.failures > 0:
            self.failures -= 1
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))
        self.batches.append(len(rows))
        return super().add_predictions(rows)


def test_prediction_log_writes_in_batches_and_survives_store_errors(tmp_path: Any) -> None:
    meta = MetadataStore.open(f"sqlite:///{tmp_path / 'm.db'}")
    meta.pipelines.ensure("p", {})
    store = FlakyStore(meta, failures=2)
    log = predictions.PredictionLog(store, flush_interval=0.02, batch_rows=100)
    log.start()
    for chunk in range(10):
        log.submit(rows(50, at=START + timedelta(minutes=chunk)))
    assert log.flush(timeout=10)
    assert store.count_predictions("p") == 500 and log.failures == 2
    assert max(store.batches) > 1, "rows are written in batches, not one by one"
    log.submit(rows(7))
    log.close()
    assert store.count_predictions("p") == 507 and log.queued == 0
    meta.close()


def test_prediction_log_counts_what_it_cannot_keep() -> None:
    meta = MetadataStore.open("sqlite://")
    meta.pipelines.ensure("p", {})
    log = predictions.PredictionLog(serving.ServingStore(meta), max_queued=10)  # not started
    assert log.submit(rows(8)) == 8
    assert log.submit(rows(5)) == 2  # never refuses: the rest is counted
    assert (log.queued, log.unlogged) == (10, 3)
    meta.close()


class HeldStore(serving.ServingStore):
    """Holds each write until `release` is set, then refuses it."""

    def __init__(self, meta: MetadataStore) -> None:
        super().__init__(meta)
        self.writing = threading.Event()
        self.release = threading.Event()

    def add_predictions(self, rows: Any) -> int:
        self.writing.set()
        self.release.wait(10)
        raise sa.exc.OperationalError("INSERT", {}, Exception("database or disk is full"))


def test_rows_being_written_count_against_what_the_log_keeps() -> None:
    meta = MetadataStore.open("sqlite://")
    meta.pipelines.ensure("p", {})
    store = HeldStore(meta)
    log = predictions.PredictionLog(store, flush_interval=0.01, batch_rows=5, max_queued=10)
    log.start()
    log.submit(rows(8))
    assert store.writing.wait(10)  # the writer thread holds the 8 rows
    assert log.submit(rows(8)) == 2  # 10 in memory at most, wherever they are
    assert log.unlogged == 6
    store.release.set()
    log.close(timeout=1)
    meta.close()


def test_fast_input_frame_equals_the_training_coercion() -> None:
    import numpy as np
    import pandas as pd

    from driftloop.server import scoring
    from driftloop.validation import schema as schemas

    rng = np.random.default_rng(0)
    data = pd.DataFrame(
        {"a": rng.random(50), "b": rng.normal(size=50), "y": rng.integers(0, 2, 50)})
    data.loc[3, "b"] = np.nan
    inputs = scoring.InputSchema(schemas.infer_schema(data, target="y"), ["b", "a"])
    assert inputs.plain_numbers  # the fast path is taken
    records = [{"a": 0.5, "b": -1.0}, {"a": 1, "b": None}, {"a": 2.5e10, "b": 3}]
    fast = inputs.frame(inputs.check(records))
    slow = schemas.coerce(pd.DataFrame(records), inputs.schema)[["b", "a"]]
    pd.testing.assert_frame_equal(fast, slow)


def test_serving_stats_are_replaced_per_minute_and_process_and_summed_across_them(
    meta: MetadataStore,
) -> None:
    stats = serving_stats.ServingStats(serving.ServingStore(meta))
    fast, slow = serving_stats.bucket(1.0), serving_stats.bucket(80.0)
    minute, later = START, START + timedelta(minutes=1)
    stats.write("p", [serving_stats.StatRow(minute, "a:1", "canary", 2, 50, 0, {fast: 50})])
    # the same minute and process again: replaced with the newer totals, not added
    stats.write("p", [
        serving_stats.StatRow(minute, "a:1", "canary", 2, 100, 1, {fast: 99, slow: 1}),
        serving_stats.StatRow(minute, "b:7", "canary", 2, 100, 3, {fast: 97, slow: 3}),
        serving_stats.StatRow(later, "a:1", "canary", 2, 100, 0, {fast: 100}),
        serving_stats.StatRow(later, "a:1", "champion", 1, 400, 0, {fast: 400}),
    ])
    found = stats.read("p", alias="canary", version=2)
    assert (found.requests, found.errors) == (300, 4)
    assert found.latency == {fast: 296, slow: 4}
    assert found.p99_ms == serving_stats.BOUNDS_MS[slow]  # 4 of 300 are slow: above the 99th
    assert found.quantile_ms(0.5) == serving_stats.BOUNDS_MS[fast]
    since = stats.read("p", alias="canary", version=2, since=later + timedelta(seconds=30))
    assert (since.requests, since.errors, since.p99_ms) == (100, 0, serving_stats.BOUNDS_MS[fast])
    assert stats.read("p", alias="canary", version=3).p99_ms is None
    assert stats.read("p", alias="champion", version=1).requests == 400


def test_prediction_log_leaves_the_write_lock_free_as_long_as_it_held_it(tmp_path: Any) -> None:
    """A writer that is always behind (a batch waits whenever a transaction ends) still pauses
    after each transaction for as long as that transaction held the write lock, so a writer of
    another process (a promotion) finds the lock free at least half the time."""
    meta = MetadataStore.open(f"sqlite:///{tmp_path / 'm.db'}")
    meta.pipelines.ensure("p", {})
    log = predictions.PredictionLog(serving.ServingStore(meta), flush_interval=0.01,
                                    batch_rows=100)
    waiting = [rows(predictions.MAX_TRANSACTION_ROWS) for _ in range(12)]
    held: list[tuple[float, float]] = []  # (BEGIN IMMEDIATE, COMMIT) of each log transaction

    @sa.event.listens_for(meta.engine, "begin")
    def _began(conn: sa.Connection) -> None:
        if conn.get_execution_options().get("driftloop_write"):
            held.append((time.monotonic(), float("nan")))

    @sa.event.listens_for(meta.engine, "commit")
    def _committing(conn: sa.Connection) -> None:
        if conn.get_execution_options().get("driftloop_write"):
            held[-1] = (held[-1][0], time.monotonic())
            if waiting:
                log.submit(waiting.pop())  # a full transaction waits before this one ends

    log.submit(waiting.pop())
    log.start()
    while waiting:
        time.sleep(0.01)
    assert log.flush(timeout=60)
    log.close()
    pairs = list(itertools.pairwise(held))
    assert len(pairs) >= 11 and all(
        begin - commit >= commit - first for (first, commit), (begin, _) in pairs), [
        (f"held {commit - first:.4f} s, then free {begin - commit:.4f} s")
        for (first, commit), (begin, _) in pairs]
    meta.close()
