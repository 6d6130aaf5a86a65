"""Stream ingest over many ticks: a tick takes at most `max_batches` batches and the next ticks
the rest (each event once, on the live Redis and NATS); a NATS stream deleted and created again
is told apart from its earlier life; recorded message ids are pruned by age and count, and
ingest prunes once per call that recorded something."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import specs
from conftest import NatsStream, RedisStream, stream_project
from test_streams import stored_ids

from driftloop.controller import ingest
from driftloop.controller import project as projects
from driftloop.core import clock as clocks
from driftloop.core import config, errors
from driftloop.data.sources import base, events, nats_stream, redis_stream
from driftloop.store import metadata

SPEC = """\
name: upkeep
source: {kind: redis, stream: events}
target: y
id: id
validation: {bounds: {id: [0, 100000], x: [0, 1]}}
trainer: {function: train:make_model}
"""


def make_project(tmp_path: Path, source: base.Source) -> projects.Project:
    return stream_project(tmp_path, source, SPEC)


def event(i: int) -> bytes:
    return json.dumps({"id": i, "x": i % 100 / 100, "y": i % 2}).encode()


PAYLOADS = [event(i) for i in range(7)] + [b"{oops"] + [event(i) for i in range(7, 20)]
"""20 events and an unreadable one after event 6. Read 5 at a time in batches of 5, the first
tick (at most 2 batches) yields events 0-4, then the unreadable one, and stops holding events
5-8 read but not yielded (Redis: pending with the consumer; NATS: nak'ed when the poll ends)."""


def tick_by_tick(project: projects.Project, bound: int) -> list[list[int]]:
    """Ingest tick after tick until one records nothing; the batch sizes of each tick."""
    ticks = []
    for _ in range(10):
        recorded = ingest.ingest(project)
        assert len(recorded) <= bound
        if not recorded:
            return ticks
        ticks.append([b.rows for b in recorded])
    pytest.fail(f"still recording after 10 ticks: {ticks}")


def assert_each_event_once(project: projects.Project, ticks: list[list[int]]) -> None:
    assert stored_ids(project) == list(range(20))
    batches = project.store.batches.list(project.name)
    assert [b.status for b in batches].count("quarantined") == 1
    assert sum(b.rows for b in batches) == 21
    assert sum(map(sum, ticks)) == 21 and len(ticks) >= 3  # 5 batches, at most 2 a tick
    messages = [m for b in batches for m in project.store.batches.messages(b.id)]
    assert len(messages) == len(set(messages)) == 21


@pytest.mark.redis
def test_redis_a_tick_takes_at_most_max_batches_and_the_next_ticks_the_rest(
    redis_live: RedisStream, tmp_path: Path
) -> None:
    for data in PAYLOADS:
        redis_live.client.xadd(redis_live.key, {"data": data})
    source = redis_stream.RedisSource(
        redis_live.url, redis_live.key, consumer="a", rows=5, seconds=0.2, max_batches=2
    )
    project = make_project(tmp_path, source)
    try:
        ticks = tick_by_tick(project, bound=2)
        assert ticks[0] == [5, 1]  # events 0-4, the unreadable one; 5-8 stayed pending
        assert_each_event_once(project, ticks)
        assert redis_live.client.xpending(redis_live.key, "driftloop")["pending"] == 0
    finally:
        project.store.close()


@pytest.mark.nats
def test_nats_a_tick_takes_at_most_max_batches_and_the_next_ticks_the_rest(
    nats_live: NatsStream, tmp_path: Path
) -> None:
    nats_live.publish(PAYLOADS)
    source = nats_stream.NatsSource(
        nats_live.url,
        nats_live.stream,
        nats_live.subject,
        rows=5,
        seconds=0.2,
        ack_wait=30,
        max_batches=2,
    )
    project = make_project(tmp_path, source)
    try:
        ticks = tick_by_tick(project, bound=2)
        assert ticks[0] == [5, 1]
        assert_each_event_once(project, ticks)
        info = nats_live.consumer("driftloop")
        assert (info.num_pending, info.num_ack_pending) == (0, 0)
    finally:
        project.store.close()


def test_max_batches_comes_from_the_spec_and_must_be_positive() -> None:
    spec = config.parse_spec(specs.overridden(SPEC, add={"source": {"max_batches": 7}}))
    assert base.build_source(spec.source).max_batches == 7  # type: ignore[attr-defined]
    assert config.parse_spec(SPEC).source.max_batches == 100  # type: ignore[union-attr]
    with pytest.raises(errors.ConfigError, match=r"source\.max_batches: Input should be greater"):
        config.parse_spec(specs.overridden(SPEC, add={"source": {"max_batches": 0}}))
    with pytest.raises(errors.ConfigError, match="`max_batches` of NatsSource must be > 0"):
        nats_stream.NatsSource(max_batches=0)


def test_a_poll_cut_short_is_closed_at_once() -> None:
    closed = []

    def poll() -> Iterator[base.RawBatch]:
        try:
            for i in range(5):
                yield events.Batcher("k", "s://k", 1, 1).unreadable(str(i), "x")
        finally:
            closed.append(True)

    assert [raw.messages for raw in events.at_most(poll(), 3)] == [("0",), ("1",), ("2",)]
    assert closed == [True]


@pytest.mark.nats
def test_nats_events_of_a_stream_created_again_are_not_taken_for_recorded_ones(
    nats_live: NatsStream, tmp_path: Path
) -> None:
    source = nats_stream.NatsSource(
        nats_live.url, nats_live.stream, nats_live.subject, rows=3, seconds=0.2, ack_wait=30
    )
    project = make_project(tmp_path, source)
    try:
        nats_live.publish([event(i) for i in range(6)])
        assert [b.rows for b in ingest.ingest(project)] == [3, 3]
        nats_live.recreate()  # sequences start at 1 again
        nats_live.publish([event(i) for i in range(100, 106)])
        again = ingest.ingest(project)
        assert [b.rows for b in again] == [3, 3]
        assert stored_ids(project) == [*range(6), *range(100, 106)]
        first = project.store.batches.list(project.name)[0]
        old = project.store.batches.messages(first.id)[0][1]
        new = project.store.batches.messages(again[0].id)[0][1]
        assert old.split("@")[0] == new.split("@")[0] == "1" and old != new
    finally:
        project.store.close()


def test_nats_message_ids_carry_the_stream_creation_time() -> None:
    created = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert nats_stream.message_id(7, created) == "7@2026-01-02T03:04:05.000006Z"
    assert nats_stream.message_id(7, None) == "7"


# -- pruning -----------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def timed(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[metadata.MetadataStore, clocks.FakeClock]]:
    url = str(request.getfixturevalue("pg_url")) if request.param == "postgres" else "sqlite://"
    clock = clocks.FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    store = metadata.MetadataStore.open(url, clock=clock)
    store.pipelines.ensure("p", {})
    yield store, clock
    store.close()


def add(store: metadata.MetadataStore, first: int, count: int, pipeline: str = "p") -> None:
    """`count` batches of two messages each, named from `first` on."""
    for n in range(first, first + count):
        store.batches.add(
            pipeline,
            source_uri=f"s#{n}",
            fingerprint=f"f{n}",
            rows=2,
            start=None,
            end=None,
            status="accepted",
            reasons={},
            source_key="k",
            messages=(f"{n}a", f"{n}b"),
        )


def known(store: metadata.MetadataStore, first: int, count: int) -> set[str]:
    ids = [f"{n}{part}" for n in range(first, first + count) for part in "ab"]
    return store.batches.recorded_messages("p", "k", ids)


def test_ids_of_batches_old_enough_and_with_enough_newer_ones_are_pruned(
    timed: tuple[metadata.MetadataStore, clocks.FakeClock],
) -> None:
    store, clock = timed
    add(store, 0, 6)
    clock.advance(timedelta(days=6))
    add(store, 6, 4)
    clock.advance(timedelta(days=2))  # batches 0-5 are 8 days old, 6-9 two days
    week = timedelta(days=7)
    assert store.batches.prune_messages("p", horizon=week, keep=10) == 0  # too few newer batches
    assert store.batches.prune_messages("p", horizon=timedelta(days=9), keep=1) == 0  # too young
    assert store.batches.prune_messages("p", horizon=week, keep=5) == 10  # batches 0-4
    assert known(store, 0, 5) == set() and len(known(store, 5, 5)) == 10
    assert store.batches.prune_messages("p", horizon=week, keep=1) == 2  # batch 5 (6-9: too young)
    assert known(store, 0, 6) == set() and len(known(store, 6, 4)) == 8
    assert len(store.batches.list("p")) == 10  # the batches themselves stay
    assert store.batches.messages(store.batches.list("p")[0].id) == []
    assert store.batches.prune_messages("p", horizon=week, keep=1) == 0


def test_default_rule_keeps_a_week_and_a_thousand_batches(
    timed: tuple[metadata.MetadataStore, clocks.FakeClock],
) -> None:
    store, clock = timed
    add(store, 0, 3)
    clock.advance(timedelta(days=30))
    assert store.batches.prune_messages("p") == 0  # old, but not 1000 newer batches yet
    add(store, 3, 1000)
    assert store.batches.prune_messages("p") == 6  # batches 0-2 go
    assert known(store, 0, 3) == set() and len(known(store, 3, 1000)) == 2000


def test_pruning_one_pipeline_leaves_the_others_ids(
    timed: tuple[metadata.MetadataStore, clocks.FakeClock],
) -> None:
    store, clock = timed
    store.pipelines.ensure("q", {})
    for n in range(0, 8, 2):  # p and q take turns: their batch ids interleave
        add(store, n, 1)
        add(store, n + 1, 1, pipeline="q")
    clock.advance(timedelta(days=8))
    assert store.batches.prune_messages("p", keep=1) == 6  # p's batches 0, 2, 4; not its newest, 6
    assert known(store, 0, 8) == {"6a", "6b"}
    q_ids = [f"{n}{part}" for n in range(1, 8, 2) for part in "ab"]
    assert store.batches.recorded_messages("q", "k", q_ids) == set(q_ids)


def test_ingest_prunes_once_per_call_that_recorded_a_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = redis_stream.RedisSource("redis://127.0.0.1:1/0", "unused")
    project = make_project(tmp_path, source)
    calls: list[str] = []
    monkeypatch.setattr(project.store.batches, "prune_messages", calls.append)
    batcher = events.Batcher("k", "s://k", 2, 60)
    polls = [[batcher.unreadable("1", "x"), batcher.unreadable("2", "x")], []]
    monkeypatch.setattr(source, "poll", lambda cursor: iter(polls.pop(0)))
    monkeypatch.setattr(source, "acknowledge", lambda raw: None)
    try:
        assert len(ingest.ingest(project)) == 2 and calls == ["upkeep"]
        assert ingest.ingest(project) == [] and calls == ["upkeep"]
    finally:
        project.store.close()
