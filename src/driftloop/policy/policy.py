"""The retraining policy: the spec's triggers combined, with a cooldown.

The controller calls `Policy.from_spec(spec).decide(signals)` once per tick and records the
`PolicyDecision` (with `to_json()` as its evidence) whether it fires or not.

Rules, in order:

1. no champion yet: fire (bootstrap training), reason "no champion";
2. no trigger fired: do not fire;
3. a trigger that ignores the cooldown fired (manual): fire;
4. no labelled row came since the last training: do not fire (the same data again would
   make the same model; a schedule on batches longer than its period fires once a batch);
5. the cooldown since the last training has not passed (in time, rows or batches, as the spec
   gives it): do not fire, `blocked_by_cooldown`;
6. otherwise fire.

Every decision carries all trigger results, fired or not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from driftloop.core import config
from driftloop.core.amount import Amount
from driftloop.core.types import JSON
from driftloop.policy import signals as sig
from driftloop.policy import triggers as trig

WITHOUT_NEW_DATA = ("manual", "schedule")
"""Kinds of trigger that can fire on data already decided on."""


@dataclass(frozen=True)
class PolicyDecision:
    """Whether to train now, why, and every trigger's answer as evidence."""

    fire: bool
    results: tuple[sig.TriggerResult, ...]
    blocked_by_cooldown: bool
    reason: str

    @property
    def fired_kinds(self) -> tuple[str, ...]:
        return tuple(result.kind for result in self.results if result.fired)

    def to_json(self) -> JSON:
        return {"fire": self.fire, "reason": self.reason,
                "blocked_by_cooldown": self.blocked_by_cooldown,
                "results": [result.to_json() for result in self.results]}


class Policy:
    """The triggers of one pipeline and its cooldown.

    >>> from datetime import UTC, datetime
    >>> policy = Policy([trig.VolumeTrigger(Amount(100, "rows"))], cooldown=Amount(2, "batches"))
    >>> now = datetime(2024, 1, 1, 12, tzinfo=UTC)
    >>> policy.decide(sig.Signals(now, new_labelled_rows=150, batches_since_training=1,
    ...     last_training_at=now - timedelta(minutes=10))).reason  # doctest: +ELLIPSIS
    'cooldown: last training 0:10:00 ago, 1 batch(es) and 150 rows since, < 2 batches; ...'
    """

    def __init__(self, triggers: Iterable[trig.Trigger],
                 cooldown: Amount | timedelta = timedelta(0)) -> None:
        self.triggers = tuple(triggers)
        self.cooldown = Amount.parse(cooldown)

    def __repr__(self) -> str:
        return f"Policy(triggers={list(self.triggers)!r}, cooldown={self.cooldown!r})"

    @classmethod
    def from_spec(cls, spec: config.PipelineSpec) -> Policy:
        """The spec's triggers; a manual request is always honoured, listed or not."""
        triggers = [trig.build_trigger(entry) for entry in spec.triggers]
        if not any(isinstance(trigger, trig.ManualTrigger) for trigger in triggers):
            triggers.append(trig.ManualTrigger())
        return cls(triggers, spec.cooldown)

    def fires_without_new_data(self, signals: sig.Signals) -> bool:
        """Whether a trigger that needs no new data fires on `signals`: a schedule occurrence
        or a request (they read only the clock, the last training and decision, and
        `manual`). The controller asks this before it gathers the signals that need rows.

        >>> from datetime import UTC, datetime
        >>> Policy([trig.ManualTrigger()]).fires_without_new_data(
        ...     sig.Signals(datetime(2024, 1, 1, tzinfo=UTC), manual=True))
        True
        """
        return any(
            trigger.evaluate(signals).fired
            for trigger in self.triggers
            if trigger.kind in WITHOUT_NEW_DATA
        )

    def decide(self, signals: sig.Signals) -> PolicyDecision:
        results = tuple(trigger.evaluate(signals) for trigger in self.triggers)
        fired = [r for r, t in zip(results, self.triggers, strict=True) if r.fired]
        if not signals.has_champion:
            return PolicyDecision(True, results, False, "no champion")
        if not fired:
            return PolicyDecision(False, results, False, "no trigger fired")
        summary = "; ".join(f"{r.kind}: {r.reason}" for r in fired)
        urgent = [t.kind for r, t in zip(results, self.triggers, strict=True)
                  if r.fired and t.bypasses_cooldown]
        last = signals.last_training_at
        if not urgent and last is not None and not signals.new_labelled_rows:
            return PolicyDecision(False, results, False, f"nothing new to learn: no labelled rows "
                                  f"since the last training (would fire on {summary})")
        if urgent or last is None or signals.since_training(self.cooldown):
            return PolicyDecision(True, results, False, summary)
        kinds = ", ".join(r.kind for r in fired)
        reason = (f"cooldown: last training {signals.now - last} ago, "
                  f"{signals.batches_since_training} batch(es) and {signals.new_labelled_rows} "
                  f"rows since, < {self.cooldown}; would fire on {kinds}")
        return PolicyDecision(False, results, True, reason)
