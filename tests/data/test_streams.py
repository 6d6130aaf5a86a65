"""Stream sources: the spec, events into batches, exactly-once ingest by message id (on a
scripted stream that redelivers like a server), and the Redis and NATS sources on the live
servers (batches by count and time, unreadable events quarantined and acknowledged, pending
events taken over, nothing left unacknowledged)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import specs
from conftest import NatsStream, RedisStream, stream_project

from driftloop.controller import ingest
from driftloop.controller import project as projects
from driftloop.core import config, errors
from driftloop.core.types import JSON
from driftloop.data.sources import base, events, nats_stream, redis_stream

SPEC = """\
name: streamed
source:
  kind: redis
  stream: events
  batch: {rows: 4, seconds: 2}
target: y
id: id
validation: {bounds: {id: [0, 100000], x: [0, 1]}}
trainer: {function: train:make_model}
"""


def test_stream_specs_parse_and_build_their_sources() -> None:
    spec = config.parse_spec(SPEC)
    source = base.build_source(spec.source)
    assert isinstance(source, redis_stream.RedisSource)
    assert (source.rows, source.seconds, source.group, source.claim_idle) == (
        4,
        2.0,
        "driftloop",
        60,
    )
    nats = config.parse_spec(
        specs.overridden(SPEC, replace={"source": {"kind": "nats", "stream": "EV"}},
                         add={"source": {"subject": "ev.>", "ack_wait": "90s"}})
    )
    built = base.build_source(nats.source)
    assert isinstance(built, nats_stream.NatsSource)
    assert (built.stream, built.subject, built.durable, built.ack_wait) == (
        "EV",
        "ev.>",
        "driftloop",
        90,
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("kind: redis\n  stream: events", "source.stream: Field required"),
        ("kind: kafka", "source: Input tag 'kafka' found using _source_kind() does not match"),
        ("rows: 4", "source.batch.rows: Input should be greater than 0"),
        ("url: redis://", "source.url: String should match pattern"),
    ],
)
def test_stream_spec_errors_name_the_line_and_field(change: str, message: str) -> None:
    broken = {
        "kind: redis\n  stream: events": specs.edited(SPEC, {"  stream: events\n": ""}),
        "kind: kafka": specs.edited(SPEC, {"kind: redis": "kind: kafka"}),
        "rows: 4": specs.edited(SPEC, {"rows: 4": "rows: 0"}),
        "url: redis://": specs.edited(SPEC, {"  stream: events\n": "  stream: events\n  url: http://x\n"}),
    }[change]
    with pytest.raises(errors.ConfigError) as caught:
        config.parse_spec(broken, "driftloop.yaml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("driftloop.yaml:")


def test_unreadable_events_say_why() -> None:
    assert events.parse_json(b"\xff{}")[1] == "not UTF-8 text (byte 0xff at offset 0)"
    assert events.parse_json(b"{}")[1] == "an empty record"
    assert events.parse_json(b'"text"')[1] == "not a JSON object but a string"
    assert events.parse_json(b'{"x": null, "y": true}') == ({"x": None, "y": True}, None)
    assert events.parse_fields({b"x": b"[1, 2]"}) == ({"x": "[1, 2]"}, None)


def test_a_batch_closes_when_full_or_after_its_seconds() -> None:
    now = [0.0]
    batcher = events.Batcher("k", "redis://h/s", rows=3, seconds=10, clock=lambda: now[0])
    for i in range(3):
        batcher.add(f"{i}-0", {"x": i})
    assert batcher.due() and batcher.room() == 0
    raw = batcher.cut()
    assert raw.messages == ("0-0", "1-0", "2-0") and raw.frame is not None
    assert raw.fingerprint == events.message_fingerprint("k", raw.messages)
    assert raw.row_names.name([0, 2]) == "events 0-0, 2-0"  # reasons name rows by event id
    rest = raw.without({"0-0"})
    assert rest is not None and rest.row_names.name([0, 1]) == "events 1-0, 2-0"
    assert batcher.wait() is None and not batcher.due()
    batcher.add("3-0", {"x": 3})
    now[0] = 9.5
    assert not batcher.due() and batcher.wait() == pytest.approx(0.5)
    now[0] = 10.0
    assert batcher.due()


class ScriptedStream(base.Source):
    """A stream server in memory: every poll delivers, in `rows` batches, each message not yet
    acknowledged (as Redis and JetStream redeliver after a crash). Built in code, so it has
    no `kind` and is not registered."""

    def __init__(self, records: list[dict[str, object]], rows: int = 4) -> None:
        self.records = records
        self.rows = rows
        self.acked: set[str] = set()
        self.fail_ack = 0  # the next this many acknowledgements die (a crash before the ack)

    @property
    def key(self) -> str:
        return "scripted:events"

    @classmethod
    def from_spec(cls, spec: object, base_dir: Path) -> ScriptedStream:
        raise NotImplementedError("built in tests only")

    def poll(self, cursor: JSON | None) -> Iterator[base.RawBatch]:
        batcher = events.Batcher(self.key, "scripted://events", self.rows, 60.0)
        for i, record in enumerate(self.records):
            if str(i) not in self.acked:
                batcher.add(str(i), record)
                if batcher.room() == 0:
                    yield batcher.cut()
        if len(batcher):
            yield batcher.cut()

    def acknowledge(self, batch: base.RawBatch) -> None:
        if self.fail_ack:
            self.fail_ack -= 1
            raise KeyboardInterrupt("died before the ack")
        self.acked.update(batch.messages)


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[tuple[projects.Project, ScriptedStream]]:
    records: list[dict[str, object]] = [{"id": i, "x": i / 10, "y": i % 2} for i in range(10)]
    source = ScriptedStream(records)
    project = stream_project(tmp_path, source, SPEC)
    yield project, source
    project.store.close()


def stored_ids(project: projects.Project) -> list[int]:
    frames = [
        project.artifacts.get_frame(b.data_uri, b.data_sha256)
        for b in project.store.batches.list(project.name, status="accepted")
        if b.data_uri is not None and b.data_sha256 is not None
    ]
    return sorted(pd.concat(frames)["id"].tolist()) if frames else []


def test_a_crash_after_recording_before_the_ack_records_nothing_twice(
    scripted: tuple[projects.Project, ScriptedStream],
) -> None:
    project, source = scripted
    source.fail_ack = 1
    with pytest.raises(KeyboardInterrupt):
        ingest.ingest(project)  # batch 0..3 recorded, then the process "dies"
    assert stored_ids(project) == [0, 1, 2, 3] and not source.acked
    source.rows = 3  # delivered again in other batches: 0-2, 3-5, 6-8, 9
    again = ingest.ingest(project)
    assert [b.rows for b in again] == [2, 3, 1]  # 3 of "3-5" and all of "0-2" were known
    assert stored_ids(project) == list(range(10))
    assert source.acked == {str(i) for i in range(10)}
    assert ingest.ingest(project) == []
    first = project.store.batches.list(project.name)[0]
    assert project.store.batches.messages(first.id) == [("scripted:events", m) for m in "0123"]


def test_an_unreadable_event_is_quarantined_once_with_its_reason(
    scripted: tuple[projects.Project, ScriptedStream],
) -> None:
    project, source = scripted
    raw = events.Batcher(source.key, "scripted://events", 4, 60).unreadable("7", "not JSON")
    batch = ingest.record_batch(project, raw)
    assert batch.status == "quarantined" and batch.rows == 1
    assert batch.reasons == {"*": ["event 7: not JSON"]}
    assert project.store.batches.recorded_messages(project.name, source.key, ["6", "7"]) == {"7"}


# -- the live servers --------------------------------------------------------------------------


def drain(source: base.Source) -> list[base.RawBatch]:
    """Poll once, acknowledging every batch as the controller does after recording it."""
    seen = []
    for raw in source.poll(None):
        seen.append(raw)
        source.acknowledge(raw)
    return seen


@pytest.mark.redis
def test_redis_batches_by_count_and_time_and_quarantines_unreadable_events(
    redis_live: RedisStream,
) -> None:
    client, key = redis_live.client, redis_live.key
    for i in range(25):
        client.xadd(key, {"data": json.dumps({"id": i, "x": i / 25})})
    client.xadd(key, {"data": b"{oops"})
    client.xadd(key, {"other": b"1"})
    source = redis_stream.RedisSource(redis_live.url, key, consumer="a", rows=10, seconds=0.3)
    started = time.monotonic()
    batches = drain(source)
    sizes = [len(b.frame) if b.frame is not None else None for b in batches]
    assert sizes == [10, 10, None, None, 5]
    assert time.monotonic() - started >= 0.3  # the last 5 waited for their batch's seconds
    assert "not valid JSON" in (batches[2].error or "")
    assert "no field 'data' (the entry has 'other')" in (batches[3].error or "")
    assert sorted(batches[-1].frame["id"]) == list(range(20, 25))  # type: ignore[index]
    assert client.xpending(key, "driftloop")["pending"] == 0
    assert drain(source) == []


@pytest.mark.redis
def test_redis_events_pending_with_a_dead_consumer_are_claimed(redis_live: RedisStream) -> None:
    client, key = redis_live.client, redis_live.key
    for i in range(12):
        client.xadd(key, {"id": str(i), "x": "0.5"})
    dead = redis_stream.RedisSource(
        redis_live.url, key, consumer="dead", format="fields", rows=5, seconds=0.2
    )
    polled = dead.poll(None)
    first = next(polled)  # delivered to "dead", which never acknowledges
    polled.close()
    assert first.frame is not None and first.frame["id"].tolist() == [0, 1, 2, 3, 4]
    patient = redis_stream.RedisSource(
        redis_live.url, key, consumer="b", format="fields", rows=5, seconds=0.2, claim_idle=60
    )
    assert sum(len(b.messages) for b in drain(patient)) == 7  # the 5 are not idle long enough
    eager = redis_stream.RedisSource(
        redis_live.url, key, consumer="c", format="fields", rows=5, seconds=0.2, claim_idle=0
    )
    taken = drain(eager)
    assert [b.messages for b in taken] == [first.messages]
    assert client.xpending(key, "driftloop")["pending"] == 0


@pytest.mark.nats
def test_nats_batches_quarantines_and_redelivers_what_was_not_acknowledged(
    nats_live: NatsStream,
) -> None:
    payloads = [json.dumps({"id": i, "x": i / 25}).encode() for i in range(25)] + [b"[1]"]
    nats_live.publish(payloads)
    source = nats_stream.NatsSource(
        nats_live.url, nats_live.stream, nats_live.subject, rows=10, seconds=0.3, ack_wait=30
    )
    polled = source.poll(None)
    first = next(polled)
    polled.close()  # not acknowledged: nak'ed, so delivered again at once (not after 30s)
    life = first.messages[0].partition("@")[2]  # the stream's creation time
    assert first.messages == tuple(f"{i}@{life}" for i in range(1, 11))
    batches = drain(source)
    assert [b.messages[0].partition("@")[0] for b in batches] == ["1", "11", "26", "21"]
    assert batches[2].error == f"event 26@{life}: not a JSON object but an array"
    info = nats_live.consumer("driftloop")
    assert (info.num_pending, info.num_ack_pending) == (0, 0)
    assert drain(source) == []


def test_stream_sources_need_their_packages_only_when_polled() -> None:
    source = redis_stream.RedisSource("redis://127.0.0.1:1/0", "nowhere", consumer="x")
    with pytest.raises(errors.TemporaryError, match="cannot read stream 'nowhere'"):
        next(source.poll(None))


@pytest.mark.redis
def test_redis_key_of_another_type_is_a_permanent_error(redis_live: RedisStream) -> None:
    redis_live.client.set(redis_live.key, "not a stream")
    source = redis_stream.RedisSource(redis_live.url, redis_live.key, consumer="a")
    with pytest.raises(errors.PermanentError, match=r"WRONGTYPE.*check source\.url"):
        next(source.poll(None))


@pytest.mark.nats
def test_nats_missing_stream_is_a_permanent_error(nats_live: NatsStream) -> None:
    source = nats_stream.NatsSource(nats_live.url, nats_live.stream + "X", nats_live.subject)
    with pytest.raises(errors.PermanentError, match=r"does not exist at 127\.0\.0\.1:4222"):
        next(source.poll(None))
