"""Retraining triggers: one class per `kind` of the spec's `triggers:` list.

Each class registers itself under its `kind` when it is defined (`Trigger.__init_subclass__`),
so `build_trigger(spec)` needs no hand-kept table. `policy.Policy` builds them from the spec and
asks each one, at every tick, whether it fires on the current `signals.Signals`.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

from driftloop.core import config, errors
from driftloop.policy import schedule
from driftloop.policy import signals as sig

# Metrics where lower is better; the same set as `gate.metrics` (a test guards the two agree;
# the policy layer may not import the gate layer).
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae"})


class Trigger(abc.ABC):
    """Base of every trigger. A subclass sets `kind` and is then buildable from its spec."""

    kind: ClassVar[str]
    bypasses_cooldown: ClassVar[bool] = False
    registry_: ClassVar[dict[str, type[Trigger]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if kind is not None:
            Trigger.registry_[kind] = cls

    @classmethod
    @abc.abstractmethod
    def from_spec(cls, spec: Any) -> Trigger:
        """Build the trigger from its entry in the spec's `triggers:` list."""

    @abc.abstractmethod
    def evaluate(self, signals: sig.Signals) -> sig.TriggerResult:
        """Does the trigger fire on these signals? Pure: time comes only from `signals.now`."""

    def result(self, fired: bool, reason: str, **evidence: Any) -> sig.TriggerResult:
        return sig.TriggerResult(self.kind, fired, reason, evidence)

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={value!r}" for key, value in vars(self).items()
                           if not key.endswith("_"))
        return f"{type(self).__name__}({fields})"


def build_trigger(spec: Any) -> Trigger:
    """The trigger for one spec entry, looked up by its `kind`.

    >>> build_trigger(config.VolumeTrigger(rows=1000))
    VolumeTrigger(rows=1000)
    """
    cls = Trigger.registry_.get(spec.kind)
    if cls is None:
        known = ", ".join(sorted(Trigger.registry_))
        raise errors.ConfigError(f"triggers: unknown kind {spec.kind!r}; known kinds: {known}")
    return cls.from_spec(spec)


class ScheduleTrigger(Trigger):
    """Fires when a cron occurrence (in the spec's time zone) fell in (anchor, now].

    The anchor is the last training, or the last decision when nothing was trained yet. With
    neither, there is nothing to measure from: the first evaluation only sets the anchor.
    """

    kind = "schedule"

    def __init__(self, cron: str, timezone: str = "UTC") -> None:
        self.cron = cron
        self.timezone = timezone
        self.schedule_ = schedule.CronSchedule(cron, timezone)

    @classmethod
    def from_spec(cls, spec: config.ScheduleTrigger) -> ScheduleTrigger:
        return cls(spec.cron, spec.timezone)

    def evaluate(self, signals: sig.Signals) -> sig.TriggerResult:
        anchor = signals.last_training_at or signals.last_decision_at
        if anchor is None:
            return self.result(False, f"schedule {self.cron!r} ({self.timezone}) has no anchor "
                               "yet: no training and no earlier decision", cron=self.cron,
                               timezone=self.timezone, anchor=None, occurrence=None)
        due = self.schedule_.next_after(anchor)
        fired = due <= signals.now
        local = due.astimezone(self.schedule_.zone_).isoformat()
        verb = "was due" if fired else "is next due"
        return self.result(fired, f"schedule {self.cron!r} {verb} at {local} ({self.timezone})",
                           cron=self.cron, timezone=self.timezone,
                           anchor=sig.iso(anchor), occurrence=sig.iso(due))


class DriftTrigger(Trigger):
    """Fires when the latest drift report says the dataset drifted, or concept drift fired."""

    kind = "drift"

    @classmethod
    def from_spec(cls, spec: config.DriftTrigger) -> DriftTrigger:
        return cls()

    def evaluate(self, signals: sig.Signals) -> sig.TriggerResult:
        report = signals.drift or {}
        dataset = bool(report.get("dataset_drift", False))
        share = report.get("drifted_share")
        evidence = {"dataset_drift": dataset, "drifted_share": share,
                    "concept_drift": signals.concept_drift, "has_report": signals.drift is not None}
        if dataset and signals.concept_drift:
            reason = f"data drift ({_share(share)} of columns drifted) and concept drift"
        elif dataset:
            reason = f"data drift: {_share(share)} of columns drifted"
        elif signals.concept_drift:
            reason = "concept drift: the error stream's detector fired since the last training"
        elif signals.drift is None:
            reason = "no drift report yet and no concept drift"
        else:
            reason = f"no drift: {_share(share)} of columns drifted"
        return self.result(dataset or signals.concept_drift, reason, **evidence)


class PerformanceTrigger(Trigger):
    """Fires when the champion's live metric falls below `floor`, or more than `drop` below its
    validation score, measured over at least `window` labelled rows. For metrics where lower is
    better (log_loss, rmse, mae) `floor` is a ceiling and the drop is a rise. While the newest
    batches have no labels, the accuracy estimated from calibrated confidences over them
    (`Signals.estimated_metric`) is judged instead, once it covers `window` rows or there is
    no live metric at all.

    >>> from driftloop.policy.signals import Signals
    >>> from datetime import UTC, datetime
    >>> trigger = PerformanceTrigger(metric="accuracy", floor=0.8, window=100)
    >>> trigger.evaluate(Signals(datetime(2024, 1, 1, tzinfo=UTC), live_metric=0.7,
    ...                          live_rows=500)).reason
    'live accuracy 0.7 over 500 rows is below the floor 0.8'
    """

    kind = "performance"

    def __init__(self, metric: str = "accuracy", floor: float | None = None,
                 drop: float | None = None, window: int = 500) -> None:
        self.metric = metric
        self.floor = floor
        self.drop = drop
        self.window = window
        if floor is None and drop is None:
            raise errors.ConfigError(
                f"performance trigger on {metric!r}: set `floor` or `drop` (or both); "
                "without either it can never fire")

    @classmethod
    def from_spec(cls, spec: config.PerformanceTrigger) -> PerformanceTrigger:
        return cls(spec.metric, spec.floor, spec.drop, spec.window)

    def evaluate(self, signals: sig.Signals) -> sig.TriggerResult:
        lower = self.metric in LOWER_IS_BETTER
        live, rows, champion = signals.live_metric, signals.live_rows, signals.champion_metric
        source = "live"
        if signals.estimated_metric is not None and (live is None or
                                                     signals.estimated_rows >= self.window):
            # The newest batches have no labels yet: judge the accuracy estimated from the
            # champion's calibrated confidences over them instead (CBPE).
            live, rows, source = signals.estimated_metric, signals.estimated_rows, "estimated"
        evidence = {"metric": self.metric, "live_metric": live, "live_rows": rows,
                    "champion_metric": champion, "floor": self.floor, "drop": self.drop,
                    "window": self.window, "greater_is_better": not lower, "source": source}
        if live is None or rows < self.window:
            return self.result(False, f"live {self.metric} needs {self.window} labelled rows "
                               f"unseen in training; have {rows}", **evidence)
        worse, below = (">", "above") if lower else ("<", "below")
        reasons = []
        if self.floor is not None and _worse(live, self.floor, lower):
            word = "ceiling" if lower else "floor"
            reasons.append(f"is {below} the {word} {self.floor:g}")
        if self.drop is not None and champion is not None:
            limit = champion + self.drop if lower else champion - self.drop
            if _worse(live, limit, lower):
                reasons.append(f"is {worse} champion validation {champion:g} "
                               f"{'+' if lower else '-'} {self.drop:g}")
        head = f"{source} {self.metric} {live:.4g} over {rows} rows"
        if reasons:
            return self.result(True, f"{head} " + " and ".join(reasons), **evidence)
        return self.result(False, f"{head} is within bounds", **evidence)


class VolumeTrigger(Trigger):
    """Fires once `rows` new labelled rows arrived since the last training."""

    kind = "volume"

    def __init__(self, rows: int) -> None:
        self.rows = rows
        if rows <= 0:
            raise errors.ConfigError(f"`rows` of the volume trigger must be > 0; got {rows}.")

    @classmethod
    def from_spec(cls, spec: config.VolumeTrigger) -> VolumeTrigger:
        return cls(spec.rows)

    def evaluate(self, signals: sig.Signals) -> sig.TriggerResult:
        new = signals.new_labelled_rows
        fired = new >= self.rows
        sign = ">=" if fired else "<"
        return self.result(fired, f"{new} new labelled rows since the last training {sign} "
                           f"{self.rows}", new_labelled_rows=new, rows=self.rows)


class ManualTrigger(Trigger):
    """Fires when someone asked for a retrain (`driftloop retrain`); it ignores the cooldown."""

    kind = "manual"
    bypasses_cooldown = True

    @classmethod
    def from_spec(cls, spec: config.ManualTrigger) -> ManualTrigger:
        return cls()

    def evaluate(self, signals: sig.Signals) -> sig.TriggerResult:
        reason = "a retrain was requested" if signals.manual else "no retrain was requested"
        return self.result(signals.manual, reason, requested=signals.manual)


def _worse(value: float, limit: float, lower_is_better: bool) -> bool:
    return value > limit if lower_is_better else value < limit


def _share(share: Any) -> str:
    return f"{share:.0%}" if isinstance(share, int | float) else "an unknown share"

