"""The metadata store on SQLite and on the live PostgreSQL: migrations, round trips of every
method, idempotence, version numbering, alias history with its audit trail, leases in
simulated time, and races between threads."""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from driftloop.core import errors
from driftloop.core.clock import FakeClock
from driftloop.store import _engine, entities, migrations, tables
from driftloop.store.metadata import MetadataStore

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return "sqlite://"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(url: str, clock: FakeClock) -> Iterator[MetadataStore]:
    opened = MetadataStore.open(url, clock=clock)
    yield opened
    opened.close()


@pytest.fixture
def pipeline(store: MetadataStore) -> str:
    store.pipelines.ensure("churn", {"trainer": "sklearn", "policy": {"every": "1d"}})
    return "churn"


def add_batch(store: MetadataStore, fingerprint: str, status: str = "accepted") -> entities.Batch:
    batch, _ = store.batches.add(
        "churn", source_uri=f"file:///in/{fingerprint}.csv", fingerprint=fingerprint, rows=10,
        start=T0 - timedelta(days=1), end=T0, status=status,  # type: ignore[arg-type]
        reasons={} if status == "accepted" else {"price": ["null"]},
    )
    return batch


def add_version(store: MetadataStore, batch_ids: list[int]) -> entities.ModelVersion:
    run = store.runs.start("churn", trainer="sklearn", params={"C": 1.0}, batch_ids=batch_ids)
    return store.versions.add(
        "churn", run_id=run.id, artifact_uri=f"file:///m/{run.id}.skops", sha256="ab" * 32,
        metrics={"accuracy": 0.9},
    )


# -- schema ------------------------------------------------------------------------------------


HEAD = max((p for p in (Path(migrations.__file__).parent / "versions").glob("0*.py")),
           key=lambda p: p.name).read_text().split('revision: str = "', 1)[1].split('"', 1)[0]
"""The newest revision shipped: the one the migration file with the highest number names."""


def test_migrations_run_up_from_empty_to_head(store: MetadataStore) -> None:
    assert migrations.head_revision() == HEAD
    assert store.schema_revision() == migrations.head_revision()
    with store.engine.connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
        diff = compare_metadata(MigrationContext.configure(conn), tables.metadata)
    assert set(tables.metadata.tables) <= names
    assert diff == [], "the migrations and tables.py disagree"


def test_open_twice_is_a_no_op(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'meta.db'}"
    MetadataStore.open(url).close()
    again = MetadataStore.open(url)
    assert again.schema_revision() == HEAD
    with again.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    again.close()


def test_urls() -> None:
    engine = _engine.create_engine("postgresql://postgres@127.0.0.1:5432/test")
    assert engine.url.drivername == "postgresql+psycopg"
    engine.dispose()
    with pytest.raises(errors.ConfigError, match="not supported"):
        _engine.create_engine("mysql://root@localhost/db")
    with pytest.raises(errors.ConfigError, match="not a database URL"):
        _engine.create_engine("just words")


# -- pipelines, cursors ------------------------------------------------------------------------


def test_pipelines_round_trip_and_audit_spec_changes(store: MetadataStore) -> None:
    made = store.pipelines.ensure("churn", {"trainer": "sklearn", "gate": {"min": 0.8}})
    assert made == store.pipelines.get("churn")
    assert made.spec == {"trainer": "sklearn", "gate": {"min": 0.8}}
    assert made.created_at == T0 and made.schema is None
    assert store.pipelines.ensure("churn", {"gate": {"min": 0.8}, "trainer": "sklearn"}) == made
    assert store.audit.list(action="config.change") == []

    changed = store.pipelines.ensure(
        "churn", {"trainer": "sklearn", "gate": {"min": 0.9}, "ttl": 3}, actor="ana")
    assert changed.id == made.id and changed.spec["gate"] == {"min": 0.9}
    (entry,) = store.audit.list(action="config.change")
    assert (entry.actor, entry.target) == ("ana", "churn")
    assert entry.details == {"changed": ["gate", "ttl"]}

    store.pipelines.ensure("alpha", {})
    assert [p.name for p in store.pipelines.list()] == ["alpha", "churn"]
    with_schema = store.pipelines.set_schema("churn", {"columns": {"price": "float"}})
    assert with_schema.schema == {"columns": {"price": "float"}}
    with pytest.raises(errors.NotFoundError, match="nope") as caught:
        store.pipelines.get("nope")
    assert caught.value.context == {"pipeline": "nope"}
    with pytest.raises(errors.NotFoundError):
        store.pipelines.set_schema("nope", {})


def test_cursors(store: MetadataStore, pipeline: str) -> None:
    assert store.batches.get_cursor(pipeline, "files") is None
    store.batches.set_cursor(pipeline, "files", {"seen": ["a.csv"], "until": "2024-03-01"})
    store.batches.set_cursor(pipeline, "files", {"seen": ["a.csv", "b.csv"]})
    store.batches.set_cursor(pipeline, "rows", 42)
    assert store.batches.get_cursor(pipeline, "files") == {"seen": ["a.csv", "b.csv"]}
    assert store.batches.get_cursor(pipeline, "rows") == 42
    with pytest.raises(errors.NotFoundError):
        store.batches.set_cursor("nope", "files", 1)


# -- batches, profiles -------------------------------------------------------------------------


def test_batches_are_idempotent_on_fingerprint(store: MetadataStore, pipeline: str) -> None:
    first, new = store.batches.add(
        pipeline, source_uri="s3://in/a.csv", fingerprint="f1", rows=48,
        start=datetime(2024, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))), end=None,
        status="accepted", reasons={}, data_uri="file:///b/1.parquet", data_sha256="cd" * 32,
    )
    again, new_again = store.batches.add(
        pipeline, source_uri="s3://in/other.csv", fingerprint="f1", rows=1, start=None, end=None,
        status="quarantined", reasons={"*": ["empty"]},
    )
    assert new and not new_again
    assert again == first == store.batches.get(first.id) == store.batches.find(pipeline, "f1")
    assert first.start == datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    assert len(store.batches.list(pipeline)) == 1
    assert store.batches.find(pipeline, "f2") is None


def test_list_batches_filters_in_id_order(store: MetadataStore, pipeline: str) -> None:
    made = [add_batch(store, f"f{i}", "quarantined" if i % 3 == 0 else "accepted")
            for i in range(7)]
    assert [b.id for b in store.batches.list(pipeline)] == [b.id for b in made]
    bad = store.batches.list(pipeline, status="quarantined")
    assert [b.fingerprint for b in bad] == ["f0", "f3", "f6"]
    assert bad[0].reasons == {"price": ["null"]}
    after = store.batches.list(pipeline, status="accepted", after_id=made[2].id, limit=2)
    assert [b.fingerprint for b in after] == ["f4", "f5"]
    with pytest.raises(errors.NotFoundError, match="batch 999"):
        store.batches.get(999)
    with pytest.raises(errors.ConfigError, match="status"):
        store.batches.add(pipeline, source_uri="x", fingerprint="z", rows=1, start=None, end=None,
                        status="maybe", reasons={})  # type: ignore[arg-type]


def test_profiles(store: MetadataStore, pipeline: str) -> None:
    batch = add_batch(store, "f1")
    made = store.profiles.add(pipeline, {"price": {"mean": 0.5, "hist": [1, 2, 3]}}, batch.id)
    assert made == store.profiles.get(made.id)
    assert made.batch_id == batch.id and made.profile["price"]["hist"] == [1, 2, 3]
    assert store.profiles.add(pipeline, {"n": 3}).batch_id is None
    with pytest.raises(errors.NotFoundError):
        store.profiles.add(pipeline, {}, batch_id=12345)
    with pytest.raises(errors.NotFoundError):
        store.profiles.get(12345)


# -- runs, metrics -----------------------------------------------------------------------------


def test_runs_round_trip(store: MetadataStore, pipeline: str, clock: FakeClock) -> None:
    b1, b2 = add_batch(store, "f1"), add_batch(store, "f2")
    decision = store.decisions.add(pipeline, kind="drift", fired=True, evidence={"psi": 0.3})
    run = store.runs.start(pipeline, trainer="sklearn:LogisticRegression", params={"C": 0.5},
                          batch_ids=[b2.id, b1.id], decision_id=decision.id)
    assert run == store.runs.get(run.id)
    assert (run.status, run.batch_ids, run.decision_id) == ("running", (b2.id, b1.id), decision.id)
    clock.advance(timedelta(minutes=3))
    done = store.runs.finish(run.id, status="succeeded", compute_seconds=180.5)
    assert done.status == "succeeded" and done.compute_seconds == 180.5
    assert done.finished_at == T0 + timedelta(minutes=3) and done.started_at == T0
    failed = store.runs.start(pipeline, trainer="t", params={}, batch_ids=[])
    store.runs.finish(failed.id, status="failed", compute_seconds=1, error="boom")
    assert [r.id for r in store.runs.list(pipeline)] == [run.id, failed.id]
    assert [r.error for r in store.runs.list(pipeline, status="failed")] == ["boom"]
    with pytest.raises(errors.NotFoundError):
        store.runs.start(pipeline, trainer="t", params={}, batch_ids=[b1.id, 999])
    with pytest.raises(errors.NotFoundError):
        store.runs.finish(999, status="failed", compute_seconds=0)
    with pytest.raises(errors.ConfigError):
        store.runs.finish(run.id, status="running", compute_seconds=0)


def test_metrics_bulk_round_trip(store: MetadataStore, pipeline: str) -> None:
    run = store.runs.start(pipeline, trainer="t", params={}, batch_ids=[])
    points = [("loss", 1.0 / (step + 1), step) for step in range(500)]
    points += [("acc", 0.5 + step / 1000, step) for step in range(500)] + [("acc", math.nan, 500)]
    store.runs.log_metrics(run.id, points)
    store.runs.log_metrics(run.id, [])
    acc = store.runs.metrics(run.id, "acc")
    assert [p.step for p in acc] == list(range(501))
    assert acc[10] == entities.MetricPoint(run.id, "acc", 0.51, 10, T0)
    assert math.isnan(acc[-1].value)
    assert len(store.runs.metrics(run.id)) == 1001
    with pytest.raises(errors.NotFoundError):
        store.runs.log_metrics(999, [("x", 1.0, 0)])


# -- model versions ----------------------------------------------------------------------------


def test_model_versions_number_per_pipeline(store: MetadataStore, pipeline: str) -> None:
    b1, b2 = add_batch(store, "f1"), add_batch(store, "f2")
    v1 = add_version(store, [b1.id])
    v2 = add_version(store, [b1.id, b2.id])
    assert (v1.version, v2.version) == (1, 2)
    assert v2.batch_ids == (b1.id, b2.id) and v1.metrics == {"accuracy": 0.9}
    assert store.versions.get(pipeline, 2) == v2
    assert store.versions.list(pipeline) == [v1, v2]
    assert store.versions.for_run(v2.run_id or 0) == v2
    orphan = store.runs.start(pipeline, trainer="t", params={}, batch_ids=[])
    assert store.versions.for_run(orphan.id) is None

    store.pipelines.ensure("other", {})
    other = store.versions.add("other", run_id=None, artifact_uri="u", sha256="0" * 64,
                                    metrics={})
    assert (other.version, other.batch_ids) == (1, ())

    gated = store.versions.set_gate_report(pipeline, 2, {"passed": True, "p_value": 0.01})
    assert gated.gate_report == {"passed": True, "p_value": 0.01}
    assert store.versions.get(pipeline, 2).gate_report == gated.gate_report
    with pytest.raises(errors.NotFoundError) as caught:
        store.versions.get(pipeline, 3)
    assert caught.value.context == {"pipeline": pipeline, "version": 3}
    with pytest.raises(errors.NotFoundError):
        store.versions.set_gate_report(pipeline, 7, {})
    with pytest.raises(errors.NotFoundError):
        store.versions.add("other", run_id=orphan.id, artifact_uri="u", sha256="", metrics={})


# -- aliases -----------------------------------------------------------------------------------


def test_alias_moves_history_audit_and_rollback(
    store: MetadataStore, pipeline: str, clock: FakeClock,
) -> None:
    for _ in range(3):
        add_version(store, [])
    first = store.aliases.set(pipeline, "champion", 1, actor="ci", reason="first model")
    clock.advance(timedelta(hours=1))
    store.aliases.set(pipeline, "champion", 2, actor="gate", reason="better by 2%")
    store.aliases.set(pipeline, "challenger", 3, actor="gate", reason="trained", action="stage")
    assert (first.previous, first.version) == (None, 1)
    assert store.aliases.get(pipeline, "champion") == 2
    assert store.aliases.all(pipeline) == {"champion": 2, "challenger": 3}

    back = store.aliases.rollback(pipeline, "champion", actor="ana", reason="bad canary")
    assert (back.previous, back.version, back.actor) == (2, 1, "ana")
    history = store.aliases.history(pipeline, "champion")
    assert [(m.previous, m.version) for m in history] == [(None, 1), (1, 2), (2, 1)]
    assert history[0] == first and history[1].at == T0 + timedelta(hours=1)
    assert len(store.aliases.history(pipeline)) == 4

    trail = store.audit.list(target_prefix=f"{pipeline}/")
    assert [(e.action, e.target) for e in trail] == [
        ("promote", "churn/champion"), ("promote", "churn/champion"),
        ("stage", "churn/challenger"), ("rollback", "churn/champion")]
    assert trail[1].details == {"from": 1, "to": 2, "reason": "better by 2%"}
    assert trail[-1].actor == "ana"

    cleared = store.aliases.set(pipeline, "challenger", None, actor="gate", reason="rejected")
    assert cleared.previous == 3 and store.aliases.get(pipeline, "challenger") is None
    assert store.aliases.all(pipeline) == {"champion": 1}
    with pytest.raises(errors.ConflictError):
        store.aliases.rollback(pipeline, "canary", actor="ana", reason="x")
    with pytest.raises(errors.NotFoundError, match="version 9"):
        store.aliases.set(pipeline, "champion", 9, actor="ana", reason="x")
    assert store.aliases.get(pipeline, "champion") == 1  # the failed move left nothing behind
    assert len(store.audit.list(target_prefix=f"{pipeline}/")) == 5


def test_versions_registered_with_their_gate_report(store: MetadataStore, pipeline: str) -> None:
    run = store.runs.start(pipeline, trainer="t", params={}, batch_ids=[])
    made = store.versions.add(pipeline, run_id=run.id, artifact_uri="u", sha256="0" * 64,
                                   metrics={}, gate_report={"passed": False, "reason": "worse"})
    assert made.gate_report == {"passed": False, "reason": "worse"}
    assert store.versions.get(pipeline, 1) == made
    failed = store.runs.finish(run.id, status="failed", compute_seconds=None, error="timeout")
    assert failed.compute_seconds is None and failed.error == "timeout"


def test_evaluations(store: MetadataStore, pipeline: str, clock: FakeClock) -> None:
    b1, b2 = add_batch(store, "f1"), add_batch(store, "f2")
    first = store.evaluations.add(pipeline, batch_id=b1.id, version=1, metric="accuracy",
                                 value=0.75, rows=4, errors=[0, 1, 0, 0])
    clock.advance(timedelta(hours=1))
    empty = store.evaluations.add(pipeline, batch_id=b2.id, version=1, metric="accuracy",
                                 value=None, rows=0, errors=[])
    other = store.evaluations.add(pipeline, batch_id=b2.id, version=2, metric="accuracy",
                                 value=1.0, rows=1, errors=[0.0])
    assert first.errors == (0.0, 1.0, 0.0, 0.0) and empty.at == T0 + timedelta(hours=1)
    assert store.evaluations.list(pipeline) == [first, empty, other]
    assert store.evaluations.list(pipeline, version=1) == [first, empty]
    assert store.evaluations.list(pipeline, version=1, after_id=first.id) == [empty]
    assert store.evaluations.list(pipeline, last=1) == [other]
    with pytest.raises(errors.NotFoundError):
        store.evaluations.list("nope")


# -- decisions, audit --------------------------------------------------------------------------


def test_decisions_keep_their_evidence(
    store: MetadataStore, pipeline: str, clock: FakeClock,
) -> None:
    evidence = {"detector": "psi", "scores": {"price": 0.31, "demand": 0.02}, "window": [1, 2]}
    fired = store.decisions.add(pipeline, kind="drift", fired=True, evidence=evidence,
                               caused_by={"profile": 4})
    clock.advance(timedelta(minutes=30))
    quiet = store.decisions.add(pipeline, kind="schedule", fired=False, evidence={"next": "x"})
    later = store.decisions.add(pipeline, kind="drift", fired=False, evidence={})
    assert store.decisions.get(fired.id) == fired
    assert fired.evidence == evidence and fired.caused_by == {"profile": 4}
    assert quiet.caused_by == {} and quiet.at == T0 + timedelta(minutes=30)
    assert store.decisions.list(pipeline) == [fired, quiet, later]
    assert store.decisions.list(pipeline, kind="drift") == [fired, later]
    assert store.decisions.list(pipeline, fired=False, limit=1) == [later]
    assert store.decisions.list(pipeline, limit=2) == [quiet, later]
    with pytest.raises(errors.NotFoundError):
        store.decisions.get(999)


def test_audit_log_filters(store: MetadataStore) -> None:
    made = store.audit.add("ana", "lease.break", "churn", {"why": "stuck"})
    store.audit.add("bob", "login", "server")
    store.audit.add("ana", "lease.break", "churn_100%_x")
    assert store.audit.list(action="lease.break")[0] == made
    assert [e.target for e in store.audit.list(target_prefix="churn")] == ["churn", "churn_100%_x"]
    assert [e.target for e in store.audit.list(target_prefix="churn_1")] == ["churn_100%_x"]
    assert store.audit.list(action="login")[0].details == {}


# -- leases ------------------------------------------------------------------------------------


def test_lease_exclusive_expires_and_fences(store: MetadataStore, clock: FakeClock) -> None:
    ttl = timedelta(seconds=30)
    a = store.leases.acquire("churn", "ctl-a", ttl)
    assert a == entities.Lease("churn", "ctl-a", 1, T0 + ttl)
    assert store.leases.acquire("churn", "ctl-b", ttl) is None
    clock.advance(timedelta(seconds=20))
    renewed = store.leases.acquire("churn", "ctl-a", ttl)
    assert renewed is not None and renewed.token == 1 and renewed.expires_at == clock.now() + ttl
    clock.advance(timedelta(seconds=29))
    assert store.leases.acquire("churn", "ctl-b", ttl) is None
    clock.advance(timedelta(seconds=1))  # exactly at expiry: free
    b = store.leases.acquire("churn", "ctl-b", ttl)
    assert b is not None and b.token == 2
    assert store.leases.acquire("churn", "ctl-a", ttl) is None
    assert not store.leases.release("churn", "ctl-a")
    assert store.leases.release("churn", "ctl-b")
    again = store.leases.acquire("churn", "ctl-b", ttl)
    assert again is not None and again.token == 3
    assert store.leases.acquire("other", "ctl-a", ttl) == entities.Lease(
        "other", "ctl-a", 1, clock.now() + ttl)
    with pytest.raises(errors.ConfigError):
        store.leases.acquire("churn", "", ttl)


# -- what comes out ----------------------------------------------------------------------------


def test_everything_is_frozen_with_aware_utc_times(store: MetadataStore, pipeline: str) -> None:
    batch = add_batch(store, "f1")
    version = add_version(store, [batch.id])
    run = store.runs.get(version.run_id or 0)
    store.runs.log_metrics(run.id, [("acc", 1.0, 0)])
    outputs: list[Any] = [
        store.pipelines.get(pipeline), batch, store.batches.get(batch.id), run,
        store.profiles.get(store.profiles.add(pipeline, {}).id), version,
        store.versions.get(pipeline, 1), store.runs.metrics(run.id)[0],
        store.aliases.set(pipeline, "champion", 1, actor="a", reason="r"),
        store.aliases.history(pipeline)[0],
        store.decisions.get(store.decisions.add(pipeline, kind="k", fired=True, evidence={}).id),
        store.audit.list()[0], store.leases.acquire(pipeline, "me", timedelta(seconds=1)),
        store.evaluations.add(pipeline, batch_id=batch.id, version=1, metric="accuracy",
                             value=1.0, rows=1, errors=[0.0]),
    ]
    for out in outputs:
        assert dataclasses.is_dataclass(out)
        with pytest.raises(dataclasses.FrozenInstanceError):
            out.id = 0
        for item in dataclasses.fields(out):
            value = getattr(out, item.name)
            if isinstance(value, datetime):
                assert value.tzinfo is UTC, (type(out).__name__, item.name)


# -- races -------------------------------------------------------------------------------------


def race(threads: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` on `threads` threads released together; their results in thread order."""
    barrier = threading.Barrier(threads)
    results: list[Any] = [None] * threads
    failures: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:
            failures.append(exc)

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if failures:
        raise failures[0]
    return results


def racing_urls() -> list[Any]:
    return ["sqlite-file", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=racing_urls())
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'race.db'}"


def test_concurrent_writers_agree(shared_url: str, clock: FakeClock) -> None:
    """Threads, each with its own store (its own connections), race on one database."""
    first = MetadataStore.open(shared_url, clock=clock)
    first.pipelines.ensure("churn", {})
    first.close()
    stores = [MetadataStore(shared_url, clock=clock) for _ in range(8)]
    try:
        batches = race(8, lambda i: stores[i].batches.add(
            "churn", source_uri=f"s{i}", fingerprint="same", rows=i, start=None, end=None,
            status="accepted", reasons={}))
        assert sum(new for _, new in batches) == 1
        assert len({batch.id for batch, _ in batches}) == 1
        assert len(stores[0].batches.list("churn")) == 1

        leases = race(8, lambda i: stores[i].leases.acquire("churn", f"ctl-{i}", timedelta(60)))
        winners = [lease for lease in leases if lease is not None]
        assert len(winners) == 1 and winners[0].token == 1

        versions = race(8, lambda i: stores[i].versions.add(
            "churn", run_id=None, artifact_uri=f"u{i}", sha256="0" * 64, metrics={}).version)
        assert sorted(versions) == list(range(1, 9))

        moves = race(8, lambda i: stores[i].aliases.set(
            "churn", "champion", i + 1, actor=f"a{i}", reason="race"))
        history = stores[0].aliases.history("churn", "champion")
        assert len(history) == len(moves) == 8
        assert [m.previous for m in history[1:]] == [m.version for m in history[:-1]]
    finally:
        for each in stores:
            each.close()


def test_batch_quality_spec_and_requeue_round_trip(store: MetadataStore, pipeline: str) -> None:
    quality = {"price": ["price: 2 values above the allowed maximum 3 (max seen 2, tolerance "
                         "50%): lines 4, 9"]}
    batch, _ = store.batches.add(
        pipeline, source_uri="file:///in/a.csv", fingerprint="a", rows=10, start=None, end=None,
        status="accepted", reasons={}, quality=quality, quality_rows=2, spec_sha256="c" * 64)
    assert (batch.quality, batch.quality_rows, batch.spec_sha256) == (quality, 2, "c" * 64)
    assert store.batches.get(batch.id) == batch
    plain = add_batch(store, "b")
    assert (plain.quality, plain.quality_rows, plain.requeued_from) == ({}, 0, None)

    bad = add_batch(store, "c", status="quarantined")
    again = store.batches.requarantine(bad.id, {"x": ["still wrong"]}, "d" * 64)
    assert (again.status, again.reasons, again.spec_sha256) == (
        "quarantined", {"x": ["still wrong"]}, "d" * 64)
    fixed, new = store.batches.add(
        pipeline, source_uri=bad.source_uri, fingerprint="requeued-c", rows=10, start=None,
        end=None, status="accepted", reasons={}, requeued_from=bad.id)
    assert new and fixed.id > bad.id and fixed.requeued_from == bad.id
    assert store.batches.get(bad.id).status == "requeued"
    assert [b.id for b in store.batches.list(pipeline, status="accepted")] == [
        batch.id, plain.id, fixed.id]
    with pytest.raises(errors.ConflictError, match="not quarantined"):
        store.batches.add(
            pipeline, source_uri=bad.source_uri, fingerprint="twice", rows=10, start=None,
            end=None, status="accepted", reasons={}, requeued_from=bad.id)
    with pytest.raises(errors.ConflictError):
        store.batches.requarantine(bad.id, {}, None)
    assert store.batches.find(pipeline, "twice") is None  # nothing half-written


def test_migration_0008_down_and_up_keeps_the_batches(
    store: MetadataStore, pipeline: str, url: str,
) -> None:
    from alembic import command

    kept = add_batch(store, "a")
    with store.engine.begin() as conn:
        command.downgrade(migrations.alembic_config(conn), "0007")  # type: ignore[arg-type]
        columns = {c["name"] for c in sa.inspect(conn).get_columns("batches")}
    assert not {"quality", "spec_sha256", "requeued_from"} & columns
    with store.engine.begin() as conn:
        command.upgrade(migrations.alembic_config(conn), "head")  # type: ignore[arg-type]
    assert store.schema_revision() == HEAD
    again = store.batches.get(kept.id)
    assert (again.fingerprint, again.quality, again.requeued_from) == ("a", {}, None)


def test_the_shipped_head_is_read_without_alembic_and_a_current_store_opens_without_it(
    tmp_path: Path,
) -> None:
    assert migrations.shipped_head() == migrations.head_revision()
    url = f"sqlite:///{tmp_path / 'state.db'}"
    MetadataStore.open(url).close()
    opened = MetadataStore(url)
    assert migrations.is_current(opened.engine)
    with opened.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0005'")
    assert not migrations.is_current(opened.engine)
    opened.close()
