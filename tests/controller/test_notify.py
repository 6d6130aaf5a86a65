"""Webhook notifications against a real HTTP receiver on 127.0.0.1: events read from the
records, signed Slack-compatible bodies, retries with backoff in the injected clock, nothing
lost and nothing sent twice across a receiver outage and a restart of the sender."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import specs

from driftloop.controller import notify
from driftloop.controller import project as projects
from driftloop.core import clock as clocks
from driftloop.core import config, errors
from driftloop.store import artifacts, metadata, outbox

SECRET = "hunter2-webhook-secret"


class Receiver:
    """An HTTP server on 127.0.0.1 that answers 503 to the first `failures` requests, then 200,
    and keeps every request it was sent."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.requests: list[tuple[dict[str, str], bytes, int]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 503 if receiver.failures > 0 else 200
                receiver.failures -= 1
                receiver.requests.append((dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def accepted(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body, status in self.requests if status == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver(failures=3)
    yield found
    found.close()


def spec_text(url: str, events: str = "") -> str:
    return f"""\
name: hooks
source: {{kind: files, path: "data/*.csv"}}
target: y
trainer: {{function: "train:make_model"}}
notify:
  - url: {url}
    secret: ${{DL_TEST_HOOK_SECRET}}
    backoff: 10s
    attempts: 4
{events}"""


def open_project(tmp_path: Path, url: str, clock: clocks.FakeClock, events: str = "") -> Any:
    spec = config.parse_spec(spec_text(url, events))
    store = metadata.MetadataStore.open(f"sqlite:///{tmp_path}/meta.db", clock=clock)
    store.pipelines.ensure(spec.name, spec.model_dump(mode="json"))
    return projects.Project(spec=spec, base_dir=tmp_path, store=store,
                            artifacts=artifacts.ArtifactStore(str(tmp_path / "artifacts")),
                            source=None, clock=clock)  # type: ignore[arg-type]


def happen(store: metadata.MetadataStore) -> None:
    """Six events: v1 trained and promoted, a batch quarantined, drift seen, the fairness
    trigger fired, v1 rolled back (canary)."""
    store.versions.add("hooks", run_id=None, artifact_uri="m1", sha256="0" * 64,
                            metrics={"accuracy": 0.9}, gate_report={"passed": True, "reason": "ok"})
    store.aliases.set("hooks", "champion", 1, actor="ctl", reason="gate passed")
    store.batches.add("hooks", source_uri="b.csv", fingerprint="f1", rows=10, start=None, end=None,
                    status="quarantined", reasons={"x": ["x: 3 values are text"]})
    store.decisions.add("hooks", kind="retrain", fired=True, evidence={"policy": {"results": [
        {"kind": "drift", "fired": True, "reason": "2 of 4 columns drifted", "evidence": {}}]}})
    store.decisions.add("hooks", kind="retrain", fired=False, evidence={"policy": {"results": []}})
    store.decisions.add("hooks", kind="retrain", fired=True, evidence={"policy": {"results": [
        {"kind": "fairness", "fired": True, "reason": "selection rate ratio 0.61 < 0.8",
         "evidence": {}}]}})
    store.aliases.set("hooks", "canary", 1, actor="ctl", reason="canary", action="rollout")
    store.aliases.set("hooks", "canary", None, actor="alice", reason="bad answers",
                      action="rollback")


@pytest.fixture
def clock() -> clocks.FakeClock:
    return clocks.FakeClock(datetime(2026, 3, 1, tzinfo=UTC))


def test_a_failing_receiver_gets_every_event_once_signed_after_it_recovers(
    tmp_path: Path, receiver: Receiver, clock: clocks.FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DL_TEST_HOOK_SECRET", SECRET)
    project = open_project(tmp_path, receiver.url, clock)
    assert notify.Notifier(project).run().queued == 0  # a new hook starts from now
    happen(project.store)
    first = notify.Notifier(project).run()
    assert (first.queued, first.sent, first.failed) == (6, 3, 3)  # 3 answered 503
    again = notify.Notifier(project).run()
    assert again == notify.Delivered(0, 0, 0, 0)  # not due yet: the backoff is 10 s
    clock.advance(timedelta(seconds=10))
    assert notify.Notifier(project).run().sent == 3
    project.close()
    # a restart: a new process on the same database sends nothing again
    project = open_project(tmp_path, receiver.url, clock)
    clock.advance(timedelta(hours=2))
    assert notify.Notifier(project).run() == notify.Delivered(0, 0, 0, 0)
    accepted = receiver.accepted()
    events = sorted(body["driftloop"]["event"] for body in accepted)
    assert events == ["drift", "fairness", "promoted", "quarantined", "retrained", "rolled_back"]
    keys = [headers[notify.DELIVERY] for headers, _, status in receiver.requests if status == 200]
    assert len(set(keys)) == len(keys) == 6
    for headers, body, _ in receiver.requests:
        assert notify.verify(SECRET, body, headers[notify.SIGNATURE], now=time.time())
        assert not notify.verify("wrong", body, headers[notify.SIGNATURE], now=time.time())
    rolled = next(b for b in accepted if b["driftloop"]["event"] == "rolled_back")
    assert rolled["text"].startswith("hooks: v1 rolled back (canary): bad answers")
    counts = outbox.Outbox(project.store).counts("hooks")
    assert counts == {"sent": 6}
    project.close()


def test_the_secret_is_never_stored(
    tmp_path: Path, receiver: Receiver, clock: clocks.FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DL_TEST_HOOK_SECRET", SECRET)
    project = open_project(tmp_path, receiver.url, clock)
    notify.Notifier(project).run()
    happen(project.store)
    notify.Notifier(project).run()
    project.close()
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("meta.db*"))
    assert b"DL_TEST_HOOK_SECRET" in stored and SECRET.encode() not in stored
    with pytest.raises(errors.ConfigError, match="reference to an environment variable"):
        plain = specs.edited(spec_text(receiver.url), {"${DL_TEST_HOOK_SECRET}": "plain"})
        config.parse_spec(plain)


def test_a_receiver_that_is_down_gets_it_later_and_an_exhausted_one_is_kept(
    tmp_path: Path, clock: clocks.FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DL_TEST_HOOK_SECRET", SECRET)
    down = Receiver()
    url = down.url
    down.close()  # nothing listens on its port now: connections are refused
    project = open_project(tmp_path, url, clock, events="    events: [promoted]\n")
    notify.Notifier(project).run()
    happen(project.store)
    delays = []
    for _ in range(4):
        done = notify.Notifier(project).run()
        item = outbox.Outbox(project.store).recent("hooks")[0]
        delays.append((item.next_at - clock.now()).total_seconds())
        clock.advance(timedelta(seconds=max(delays[-1], 0)))
    assert done.dead == 1 and delays[:3] == [10.0, 20.0, 40.0]
    (dead,) = outbox.Outbox(project.store).recent("hooks", status="dead")
    assert dead.event == "promoted" and dead.attempts == 4 and "ConnectError" in (
        dead.last_error or "")
    assert outbox.Outbox(project.store).retry_dead("hooks") == 1
    project.close()


def test_an_unset_secret_variable_is_a_retried_failure_not_a_loss(
    tmp_path: Path, receiver: Receiver, clock: clocks.FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DL_TEST_HOOK_SECRET", raising=False)
    receiver.failures = 0
    project = open_project(tmp_path, receiver.url, clock, events="    events: [retrained]\n")
    notify.Notifier(project).run()
    happen(project.store)
    assert notify.Notifier(project).run().failed == 1
    assert receiver.requests == []
    (item,) = outbox.Outbox(project.store).recent("hooks")
    assert "DL_TEST_HOOK_SECRET is not set" in (item.last_error or "")
    monkeypatch.setenv("DL_TEST_HOOK_SECRET", SECRET)
    clock.advance(timedelta(seconds=10))
    assert notify.Notifier(project).run().sent == 1
    project.close()


def test_a_promotion_waiting_for_its_window_is_an_event(
    tmp_path: Path, receiver: Receiver, clock: clocks.FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DL_TEST_HOOK_SECRET", SECRET)
    receiver.failures = 0
    project = open_project(tmp_path, receiver.url, clock, events="    events: [waiting]\n")
    notify.Notifier(project).run()
    project.store.decisions.add("hooks", kind="rollout", fired=False, evidence={
        "outcome": "waiting", "version": 2, "until": "2026-03-30T00:00:00+00:00",
        "reason": "waiting for window until 2026-03-30 02:00 CEST (Europe/Berlin): v2"})
    assert notify.Notifier(project).run().sent == 1
    (body,) = receiver.accepted()
    assert body["text"].startswith("hooks: waiting for window until 2026-03-30 02:00 CEST")
    assert body["driftloop"]["until"] == "2026-03-30T00:00:00+00:00"
    project.close()


@pytest.mark.postgres
def test_the_outbox_queues_once_on_postgresql(pg_url: str, clock: clocks.FakeClock) -> None:
    store = metadata.MetadataStore.open(pg_url, clock=clock)
    store.pipelines.ensure("hooks", {})
    box = outbox.Outbox(store)
    box.enqueue("hooks", "h", [], box.facts("hooks", "h").upto)
    happen(store)
    found = box.facts("hooks", "h")
    items = notify.events("hooks", found)
    assert box.enqueue("hooks", "h", items, found.upto) == 6
    assert box.enqueue("hooks", "h", items, found.upto) == 0  # a repeat is a no-op
    assert box.facts("hooks", "h").moves == () and len(box.due("hooks")) == 6
    store.close()
