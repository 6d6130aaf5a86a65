"""The `explanation` trigger: retrain when the champion, re-explained on a recent labelled
batch (`explain.live`), relies on its features differently from when it was trained: the
total variation distance between the two explanations' shares of importance is above
`explain.shift` (`train.explain.shift`).

>>> from datetime import UTC, datetime
>>> from driftloop.policy.signals import Signals
>>> moved = {"distance": 0.42, "threshold": 0.3, "shifted": True, "batch_id": 7}
>>> ExplanationTrigger().evaluate(Signals(datetime(2024, 1, 1, tzinfo=UTC),
...                                       explanation=moved)).reason
'the champion relies on its features differently on batch 7: explanation drift 0.42 > 0.3'
"""

from __future__ import annotations

from driftloop.core import config
from driftloop.policy import signals as sig
from driftloop.policy import triggers


class ExplanationTrigger(triggers.Trigger):
    """Fires when the champion's newest live explanation shifted from its training one."""

    kind = "explanation"

    @classmethod
    def from_spec(cls, spec: config.ExplanationTrigger) -> ExplanationTrigger:
        return cls()

    def evaluate(self, signals: sig.Signals) -> sig.TriggerResult:
        found = signals.explanation
        if found is None or "distance" not in found:
            reason = (found or {}).get("error") or "the champion was not re-explained yet"
            return self.result(False, f"no live explanation drift: {reason}")
        evidence = {key: found.get(key) for key in ("distance", "threshold", "batch_id")}
        where = f"on batch {found.get('batch_id')}"
        if found.get("shifted"):
            return self.result(True, f"the champion relies on its features differently {where}: "
                               f"explanation drift {found['distance']:.3g} > "
                               f"{found['threshold']:g}", **evidence)
        return self.result(False, f"the champion's explanation {where} is steady: drift "
                           f"{found['distance']:.3g} <= {found['threshold']:g}", **evidence)
