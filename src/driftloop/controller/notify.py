"""Webhook notifications: turn new records into events, queue them, deliver them signed.

`Notifier.run` is called by `driftloop tick` / `run` after each tick, while the controller
still holds the pipeline's lease (one sender at a time). It reads what happened since each
hook's cursors (`store.outbox`), queues one notification per (hook, event) and posts those due:

* the body is Slack-compatible (``{"text": ...}``, what an incoming webhook shows) with the
  event itself under ``"driftloop"`` (event, pipeline, key, time, details) for other receivers;
* ``X-Driftloop-Signature: t=<unix time>,v1=<hex>`` is HMAC-SHA256 of ``"<t>.<body>"`` with
  the hook's secret (`verify` checks one), ``X-Driftloop-Delivery`` the notification's key, the
  same on every attempt, so a receiver can drop a repeat;
* a 2xx answer marks it sent; anything else (refused connection, timeout, 5xx, 4xx) is retried
  after the hook's backoff (30 s, doubling, at most 1 h; in the injected clock), and after
  `attempts` failures it is kept as ``dead`` until `driftloop notifications --retry`.

A notification is marked sent only after its 2xx: a process killed between the two sends it
again on restart, with the same delivery key (delivery is at least once; receivers that
deduplicate by the key see each event once).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from driftloop.controller import project as projects
from driftloop.core import errors, notify_spec, secrecy
from driftloop.store import entities, outbox

if TYPE_CHECKING:
    import httpx

SIGNATURE = "X-Driftloop-Signature"
DELIVERY = "X-Driftloop-Delivery"


def sign(secret: str, body: bytes, at: int) -> str:
    """The signature header's value for `body` sent at unix time `at`.

    >>> sign("s", b"{}", 0)[:7], len(sign("s", b"{}", 0))
    ('t=0,v1=', 71)
    """
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def verify(secret: str, body: bytes, header: str, now: float, tolerance: float = 300) -> bool:
    """Whether `header` is a valid signature of `body` made within `tolerance` s of `now`.

    >>> body = b'{"text": "hi"}'
    >>> verify("s", body, sign("s", body, 1000), now=1010)
    True
    >>> verify("s", body + b" ", sign("s", body, 1000), now=1010)
    False
    """
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        at = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = sign(secret, body, at)
    return abs(now - at) <= tolerance and hmac.compare_digest(expected, header)


@dataclass(frozen=True)
class Delivered:
    """What one `Notifier.run` did."""

    queued: int
    sent: int
    failed: int
    dead: int


class Notifier:
    """Queues and delivers the notifications of `project`'s `notify:` hooks.

    `transport` replaces httpx's network transport (tests); by default requests go out as
    the hook's URL says."""

    def __init__(
        self, project: projects.Project, transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.project = project
        self.transport = transport
        self._outbox = outbox.Outbox(project.store)

    def run(self) -> Delivered:
        """Queue what is new, then deliver what is due."""
        queued = sum(self.collect(hook) for hook in self.project.spec.notify)
        sent = failed = dead = 0
        hooks = {hook.key: hook for hook in self.project.spec.notify}
        due = self._outbox.due(self.project.name) if hooks else []
        if not due:
            return Delivered(queued, 0, 0, 0)
        import httpx

        with httpx.Client(transport=self.transport, follow_redirects=False) as client:
            for item in due:
                hook = hooks.get(item.hook)
                if hook is None:  # the hook left the spec: its queue waits for it to return
                    continue
                outcome = self.deliver(client, hook, item)
                sent += outcome == "sent"
                failed += outcome == "failed"
                dead += outcome == "dead"
        return Delivered(queued, sent, failed, dead)

    def collect(self, hook: notify_spec.HookSpec) -> int:
        """Queue the events `hook` wants among the records it was not told about."""
        facts = self._outbox.facts(self.project.name, hook.key)
        wanted = set(hook.events)
        items = [item for item in events(self.project.name, facts) if item[0] in wanted]
        return self._outbox.enqueue(self.project.name, hook.key, items, facts.upto)

    def deliver(
        self, client: httpx.Client, hook: notify_spec.HookSpec, item: outbox.Notification,
    ) -> str:
        """Post one notification; "sent", "failed" (retried later) or "dead"."""
        import httpx

        attempt = item.attempts + 1
        body = json.dumps(item.payload, sort_keys=True).encode()
        headers = {"Content-Type": "application/json", DELIVERY: item.event_key}
        try:
            url = secrecy.expand(hook.url, "notify")
            if hook.secret is not None:
                secret = secrecy.expand(hook.secret, "notify")
                headers[SIGNATURE] = sign(secret, body, int(time.time()))
            answer = client.post(url, content=body, headers=headers,
                                 timeout=hook.timeout.total_seconds())
            error = None if answer.is_success else f"HTTP {answer.status_code}"
        except (httpx.HTTPError, errors.ConfigError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            self._outbox.sent(item.id, attempt)
            return "sent"
        if attempt >= hook.attempts:
            self._outbox.failed(item.id, attempt, error, None)
            return "dead"
        self._outbox.failed(item.id, attempt, error, self.project.clock.now() + hook.delay(attempt))
        return "failed"


def events(pipeline: str, facts: outbox.Facts) -> list[tuple[str, str, dict[str, Any]]]:
    """`(event, event_key, payload)` for every event the new records stand for."""
    found: list[tuple[str, str, str, dict[str, Any], Any]] = []
    for version in facts.versions:
        found.append(("retrained", f"version:{version.version}",
                      f"{pipeline}: v{version.version} trained ({_gate(version)})",
                      {"version": version.version, "metrics": version.metrics}, version.created_at))
        fairness = (version.gate_report or {}).get("fairness")
        if isinstance(fairness, dict) and fairness.get("passed") is False:
            found.append(("fairness", f"fairness:{version.version}",
                          f"{pipeline}: v{version.version} has a fairness problem: "
                          f"{fairness.get('reason', '')}", {"version": version.version,
                                                            "fairness": fairness},
                          version.created_at))
    for move in facts.moves:
        kind = _move_event(move)
        if kind is not None:
            verb = "promoted to champion" if kind == "promoted" else f"rolled back ({move.alias})"
            shown = move.version if kind == "promoted" else move.previous
            found.append((kind, f"move:{move.id}", f"{pipeline}: v{shown} {verb}: {move.reason}",
                          {"alias": move.alias, "version": move.version,
                           "previous": move.previous, "actor": move.actor}, move.at))
    for batch in facts.batches:
        if batch.status == "quarantined":
            reasons = "; ".join(r for rs in batch.reasons.values() for r in rs)[:500]
            found.append(("quarantined", f"batch:{batch.id}",
                          f"{pipeline}: batch {batch.id} ({batch.rows} rows) quarantined: "
                          f"{reasons}", {"batch": batch.id, "rows": batch.rows,
                                         "source": batch.source_uri, "reasons": batch.reasons},
                          batch.created_at))
    for decision in facts.decisions:
        found.extend(_decision_events(pipeline, decision))
    return [(event, key, {"text": text, "driftloop": {
        "event": event, "pipeline": pipeline, "key": key, "at": at.isoformat(), **details}})
        for event, key, text, details, at in found]


def _gate(version: entities.ModelVersion) -> str:
    report = version.gate_report or {}
    if not report:
        return "not gated"
    return f"gate {'passed' if report.get('passed') else 'failed'}: {report.get('reason', '')}"


def _move_event(move: entities.AliasMove) -> str | None:
    if move.action == "rollback":
        return "rolled_back"
    if move.alias == "champion" and move.action == "promote" and move.version is not None:
        return "promoted"
    return None


def _decision_events(
    pipeline: str, decision: entities.Decision,
) -> list[tuple[str, str, str, dict[str, Any], Any]]:
    evidence = decision.evidence
    if decision.kind == "retrain":
        results = (evidence.get("policy") or {}).get("results") or []
        found = []
        for kind in ("drift", "fairness"):  # the triggers of those names that fired
            fired = [r for r in results if r.get("kind") == kind and r.get("fired")]
            if fired:
                found.append((kind, f"decision:{decision.id}" + ("" if kind == "drift" else
                                                                   f":{kind}"),
                              f"{pipeline}: {kind}: {fired[0].get('reason', '')}",
                              {"decision": decision.id, "retrain": decision.fired,
                               "evidence": fired[0].get("evidence", {})}, decision.at))
        return found
    if decision.kind == "rollout" and evidence.get("outcome") == "waiting":
        return [("waiting", f"decision:{decision.id}", f"{pipeline}: {evidence.get('reason', '')}",
                 {"decision": decision.id, "version": evidence.get("version"),
                  "until": evidence.get("until")}, decision.at)]
    return []
