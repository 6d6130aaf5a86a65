"""The `fairness` trigger: retrain when the champion's predictions break a disparity threshold
(`fairness.thresholds`) on enough of the newest labelled batches.

Batches whose groups were too small to judge are skipped, not counted as fair; requiring
`batches` of the last `window` judged batches keeps one noisy batch from firing.

>>> from datetime import UTC, datetime
>>> from driftloop.policy.signals import FairnessCheck, Signals
>>> checks = (FairnessCheck(1, True), FairnessCheck(2, True, ("g: dpd 0.3 > 0.1",)),
...           FairnessCheck(3, False), FairnessCheck(4, True, ("g: dpd 0.2 > 0.1",)))
>>> FairnessTrigger(batches=2, window=3).evaluate(
...     Signals(datetime(2024, 1, 1, tzinfo=UTC), fairness=checks)).reason
'2 of the last 3 judged batches broke a fairness threshold (newest: g: dpd 0.2 > 0.1)'
"""

from __future__ import annotations

from driftloop.core import config, errors
from driftloop.policy import signals as sig
from driftloop.policy import triggers


class FairnessTrigger(triggers.Trigger):
    """Fires when at least `batches` of the last `window` judged batches broke a threshold."""

    kind = "fairness"

    def __init__(self, batches: int = 2, window: int = 3) -> None:
        self.batches = batches
        self.window = window
        if not 1 <= batches <= window:
            raise errors.ConfigError(
                f"the fairness trigger needs 1 <= `batches` <= `window`; got {batches} and "
                f"{window}.")

    @classmethod
    def from_spec(cls, spec: config.FairnessTrigger) -> FairnessTrigger:
        return cls(spec.batches, spec.window)

    def evaluate(self, signals: sig.Signals) -> sig.TriggerResult:
        judged = [check for check in signals.fairness if check.judged][-self.window:]
        broke = [check for check in judged if check.breaches]
        evidence = {"judged_batches": [c.batch_id for c in judged],
                    "breaching_batches": [c.batch_id for c in broke],
                    "breaches": list(broke[-1].breaches) if broke else [],
                    "batches": self.batches, "window": self.window}
        head = (f"{len(broke)} of the last {len(judged)} judged batches broke a fairness "
                "threshold")
        if len(broke) >= self.batches:
            return self.result(True, f"{head} (newest: {'; '.join(broke[-1].breaches)})",
                               **evidence)
        if not judged:
            return self.result(False, "no batch with enough rows per group to judge fairness",
                               **evidence)
        return self.result(False, f"{head}: fewer than {self.batches}", **evidence)
