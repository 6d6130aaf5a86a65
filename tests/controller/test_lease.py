"""The controller lease: fencing refuses the writes of a holder that lost it, the heartbeat keeps
a short lease alive for as long as its holder works, and concurrent migrations serialise."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from driftloop.controller import lease as leases
from driftloop.core import errors
from driftloop.core.clock import FakeClock
from driftloop.store import migrations
from driftloop.store.metadata import MetadataStore


@pytest.fixture(params=["sqlite-file", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'lease.db'}"


def decide(store: MetadataStore) -> Any:
    return store.decisions.add("churn", kind="retrain", fired=True, evidence={})


def test_a_write_under_a_lost_lease_is_refused(url: str) -> None:
    clock = FakeClock(datetime(2024, 1, 1, tzinfo=UTC))
    ttl = timedelta(seconds=30)
    stalled, other = MetadataStore.open(url, clock=clock), MetadataStore(url, clock=clock)
    try:
        stalled.pipelines.ensure("churn", {})
        held = stalled.leases.acquire("churn", "a", ttl)
        assert held is not None
        with stalled.leases.fenced(held):
            decide(stalled)  # the lease is live: written
            clock.advance(ttl + timedelta(seconds=1))  # "a" stalls past its lease...
            decide(stalled)  # ...but nobody took over yet: still safe to write
            taken = other.leases.acquire("churn", "b", ttl)
            assert taken is not None and taken.token == held.token + 1
            with pytest.raises(errors.ConflictError, match="no longer holds the lease"):
                decide(stalled)
            assert stalled.leases.acquire("churn", "a", ttl) is None
            with other.leases.fenced(taken):
                decide(other)  # fences are per store (and per thread): "b" writes
        decide(stalled)  # outside a fence the store writes as before (servers, the CLI)
        assert len(other.decisions.list("churn")) == 4
    finally:
        stalled.close()
        other.close()


def test_the_heartbeat_keeps_a_short_lease_while_its_holder_works(url: str) -> None:
    ttl = timedelta(seconds=0.6)
    mine, theirs = MetadataStore.open(url), MetadataStore(url)
    try:
        mine.pipelines.ensure("churn", {})
        with leases.hold(mine, "churn", "a", ttl) as held:
            assert held is not None
            for _ in range(6):  # three lease lengths
                time.sleep(0.3)
                assert theirs.leases.acquire("churn", "b", ttl) is None
            decide(mine)
        time.sleep(ttl.total_seconds() + 0.2)  # no heartbeat after the block: it lapses
        assert theirs.leases.acquire("churn", "b", ttl) is not None
        with leases.hold(mine, "churn", "a", ttl) as again:
            assert again is None
    finally:
        mine.close()
        theirs.close()


@pytest.mark.postgres
def test_concurrent_migrations_of_a_new_database_serialise(pg_url: str) -> None:
    stores = [MetadataStore(pg_url) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    failures: list[BaseException] = []

    def migrate(store: MetadataStore) -> None:
        barrier.wait()
        try:
            migrations.upgrade(store.engine)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=migrate, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert failures == []
        assert {store.schema_revision() for store in stores} == {migrations.head_revision()}
    finally:
        for store in stores:
            store.close()
