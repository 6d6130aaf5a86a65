"""Retraining triggers: one class per `kind` of the spec's `triggers:` list.

Each class registers itself under its `kind` when it is defined (`Trigger.__init_subclass__`),
so `build_trigger(spec)` needs no hand-kept table. `policy.Policy` builds them from the spec and
asks each one, at every tick, whether it fires on the current `signals.Signals`.
"""

from __future__ import annotations

import abc
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

from driftloop.core import config, errors
from driftloop.core.amount import Amount
from driftloop.policy import signals as sig

# Metrics where lower is better; the same set as `gate.metrics` (a test guards the two agree;
# the policy layer may not import the gate layer).
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae"})


class Trigger(abc.ABC):
    """Base of every trigger. A subclass sets `kind` and is then buildable from its spec."""

    kind: ClassVar[str]
    bypasses_cooldown: ClassVar[bool] = False
    registry: ClassVar[dict[str, type[Trigger]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if kind is not None:
            Trigger.registry[kind] = cls

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

    >>> build_trigger(config.VolumeTrigger(every="10 batches"))
    VolumeTrigger(every=Amount(10 batches))
    """
    cls = Trigger.registry.get(spec.kind)
    if cls is None:
        known = ", ".join(sorted(Trigger.registry))
        raise errors.ConfigError(f"triggers: unknown kind {spec.kind!r}; known kinds: {known}")
    return cls.from_spec(spec)


class ScheduleTrigger(Trigger):
    """Fires when a cron occurrence (in the spec's time zone) fell in (anchor, now].

    The anchor is the last training, or the last decision when nothing was trained yet. With
    neither, there is nothing to measure from: the first evaluation only sets the anchor. (The
    policy holds back an occurrence with no labelled rows since the last training: with batches
    longer than the schedule, it retrains once a batch.)
    """

    kind = "schedule"

    def __init__(self, cron: str, timezone: str = "UTC") -> None:
        self.cron = cron
        self.timezone = timezone
        from driftloop.policy import schedule  # croniter: only a schedule trigger needs it

        self._schedule = schedule.CronSchedule(cron, timezone)

    @classmethod
    def from_spec(cls, spec: config.ScheduleTrigger) -> ScheduleTrigger:
        return cls(spec.cron, spec.timezone)

    def evaluate(self, signals: sig.Signals) -> sig.TriggerResult:
        anchor = signals.last_training_at or signals.last_decision_at
        if anchor is None:
            return self.result(False, f"schedule {self.cron!r} ({self.timezone}) has no anchor "
                               "yet: no training and no earlier decision", cron=self.cron,
                               timezone=self.timezone, anchor=None, occurrence=None)
        due = self._schedule.next_after(anchor)
        fired = due <= signals.now
        local = due.astimezone(self._schedule.zone).isoformat()
        verb = "was due" if fired else "is next due"
        reason = f"schedule {self.cron!r} {verb} at {local} ({self.timezone})"
        return self.result(fired, reason, cron=self.cron, timezone=self.timezone,
                           anchor=sig.iso(anchor), occurrence=sig.iso(due))


class DriftTrigger(Trigger):
    """Fires when the latest drift report says the dataset drifted, a text column drifted, or
    concept drift fired."""

    kind = "drift"

    @classmethod
    def from_spec(cls, spec: config.DriftTrigger) -> DriftTrigger:
        return cls()

    def evaluate(self, signals: sig.Signals) -> sig.TriggerResult:
        report = signals.drift or {}
        text = [c["column"] for c in report.get("text", []) if c.get("drifted")]
        dataset = bool(report.get("dataset_drift", False))
        share = report.get("drifted_share")
        evidence = {"dataset_drift": dataset, "drifted_share": share, "text_drift": text,
                    "concept_drift": signals.concept_drift, "has_report": signals.drift is not None}
        if text:  # a text column's own tests found drift (`drift.text`)
            reason = f"text drift in {', '.join(text)}" + (
                " and concept drift" if signals.concept_drift else "")
            return self.result(True, reason, **evidence)
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
    """Fires when the champion's live performance fell, measured over `window` of labelled data
    it did not see in training.

    By default (neither `floor` nor `drop`) the test is relative to the model itself: its
    per-row error on the live window is significantly higher (one-sided Welch t-test at
    `alpha`) than on the labelled batches it scored before (0/1 errors for classifiers, absolute
    errors for regression: binary, multi-class and regression alike, no threshold in the
    metric's units). `floor` fires when the live metric is worse than a fixed value, `drop`
    when it is more than `drop` worse than the champion's validation score; for metrics where
    lower is better (log_loss, rmse, mae) `floor` is a ceiling and the drop is a rise.
    While the newest batches have no labels, the accuracy estimated from the champion's
    calibrated confidences over them (`Signals.estimated_metric`, CBPE) is judged instead: in
    the relative test, against the accuracy of the reference rows (a one-sided z-test).

    >>> from driftloop.policy.signals import Signals
    >>> from datetime import UTC, datetime
    >>> trigger = PerformanceTrigger(metric="accuracy", floor=0.8, window=Amount(100, "rows"))
    >>> trigger.evaluate(Signals(datetime(2024, 1, 1, tzinfo=UTC), live_metric=0.7,
    ...                          live_rows=500)).reason
    'live accuracy 0.7 over 500 rows is below the floor 0.8'
    >>> relative = PerformanceTrigger()
    >>> relative.evaluate(Signals(datetime(2024, 1, 1, tzinfo=UTC), live_metric=0.6,
    ...     live_rows=100, live_errors=(0.0, 1.0) * 20 + (1.0,) * 60,
    ...     reference_errors=(0.0,) * 90 + (1.0,) * 10)).fired
    True
    """

    kind = "performance"

    def __init__(self, metric: str = "accuracy", floor: float | None = None,
                 drop: float | None = None, window: Amount | int | str = "1 batch",
                 alpha: float = 0.01) -> None:
        self.metric = metric
        self.floor = floor
        self.drop = drop
        self.window = Amount.parse(window)
        self.alpha = alpha

    @classmethod
    def from_spec(cls, spec: config.PerformanceTrigger) -> PerformanceTrigger:
        return cls(spec.metric, spec.floor, spec.drop, spec.window, spec.alpha)

    @property
    def relative(self) -> bool:
        return self.floor is None and self.drop is None

    def evaluate(self, signals: sig.Signals) -> sig.TriggerResult:
        lower = self.metric in LOWER_IS_BETTER
        live, rows, champion = signals.live_metric, signals.live_rows, signals.champion_metric
        source = "live"
        if signals.estimated_metric is not None and self.metric == "accuracy" and (
            live is None or self.window.unit != "rows"
            or signals.estimated_rows >= self.window.value
        ):
            # The newest batches have no labels yet: judge the accuracy estimated from the
            # champion's calibrated confidences over them instead (CBPE).
            live, rows, source = signals.estimated_metric, signals.estimated_rows, "estimated"
        evidence: dict[str, Any] = {
            "metric": self.metric, "live_metric": live, "live_rows": rows,
            "champion_metric": champion, "floor": self.floor, "drop": self.drop,
            "window": str(self.window), "greater_is_better": not lower, "source": source}
        short = self.window.unit == "rows" and rows < self.window.value
        if live is None or not rows or short:
            return self.result(False, f"live {self.metric} needs {self.window} of labelled rows "
                               f"the champion did not train on; have {rows} rows", **evidence)
        head = f"{source} {self.metric} {live:.4g} over {rows} rows"
        if self.relative:
            return self._relative(signals, head, evidence)
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
        if reasons:
            return self.result(True, f"{head} " + " and ".join(reasons), **evidence)
        return self.result(False, f"{head} is within bounds", **evidence)

    def _relative(self, signals: sig.Signals, head: str,
                  evidence: dict[str, Any]) -> sig.TriggerResult:
        live, reference = signals.live_errors, signals.reference_errors
        estimated = evidence["source"] == "estimated"
        if len(reference) < 2 or (len(live) < 2 and not estimated):
            return self.result(False, f"{head}: no earlier live batches of this model to compare "
                               "with yet", **evidence)
        if estimated:  # an estimated accuracy: no per-row errors, a test of proportions
            error = 1.0 - float(evidence["live_metric"])
            rise, p = estimated_rise(error, int(evidence["live_rows"]), reference)
        else:
            error = _mean(live)
            rise, p = error_rise(live, reference)
        evidence.update(live_error=error, reference_error=_mean(reference),
                        reference_rows=len(reference), p_value=p, alpha=self.alpha)
        fired = rise > 0 and p < self.alpha
        verdict = "significantly" if fired else "not significantly"
        return self.result(fired, f"{head}: error {error:.4g} vs {_mean(reference):.4g} on "
                           f"its earlier {len(reference)} rows, {verdict} higher (p={p:.2g}, "
                           f"alpha {self.alpha:g})", **evidence)


def error_rise(live: Sequence[float], reference: Sequence[float]) -> tuple[float, float]:
    """How much higher the mean live error is than the reference's, and the one-sided p-value
    of a Welch t-test that it is higher (both constant and different: p 0).

    >>> error_rise([1.0, 1.0], [0.0, 0.0])
    (1.0, 0.0)
    """
    import numpy as np
    from scipy import stats

    a, b = np.asarray(live, dtype=float), np.asarray(reference, dtype=float)
    rise = float(a.mean() - b.mean())
    if a.var() == 0 and b.var() == 0:
        return rise, 0.0 if rise > 0 else 1.0
    with warnings.catch_warnings():  # near-constant errors (a 0.995 validation): scipy warns
        warnings.simplefilter("ignore", RuntimeWarning)  # of precision the test does not need
        p = float(stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)
    return rise, p


def estimated_rise(error: float, rows: int, reference: Sequence[float]) -> tuple[float, float]:
    """How much higher an estimated error rate over `rows` rows is than the reference's 0/1
    errors, and the one-sided p-value of a two-proportion z-test that it is higher.

    >>> rise, p = estimated_rise(0.3, 400, [1.0] * 100 + [0.0] * 900)
    >>> round(rise, 2), p < 1e-6
    (0.2, True)
    """
    from scipy import stats

    base = _mean(reference)
    rise = error - base
    spread = (base * (1 - base) * (1 / max(rows, 1) + 1 / len(reference))) ** 0.5
    if spread == 0:
        return rise, 0.0 if rise > 0 else 1.0
    return rise, float(stats.norm.sf(rise / spread))


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


class VolumeTrigger(Trigger):
    """Fires once `every` new labelled data arrived since the last training: batches, rows, a
    duration, or a share of the champion's training window."""

    kind = "volume"

    def __init__(self, every: Amount | int) -> None:
        self.every = Amount.parse(every)
        if self.every.value <= 0:
            raise errors.ConfigError(f"`every` of the volume trigger must be > 0; got {every}.")

    @classmethod
    def from_spec(cls, spec: config.VolumeTrigger) -> VolumeTrigger:
        return cls(spec.amount)

    def evaluate(self, signals: sig.Signals) -> sig.TriggerResult:
        new, batches = signals.new_labelled_rows, signals.batches_since_training
        fired = new > 0 and signals.since_training(self.every)
        sign = ">=" if fired else "<"
        return self.result(fired, f"{new} new labelled rows in {batches} batch(es) since the "
                           f"last training {sign} {self.every}", new_labelled_rows=new,
                           batches=batches, every=str(self.every))


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


class QualityTrigger(Trigger):
    """Fires when the new batches carry data-quality signals in at least `columns` columns or
    on at least `share` of their rows: the data went beyond what the first data showed (its
    range, categories or missing rate) and was accepted, so a model may not know it yet.

    The signals are judged against the first data, not against what the champion was trained
    on, so data that stays beyond it keeps firing: pair the trigger with a `cooldown`.

    >>> from driftloop.policy.signals import Quality, Signals
    >>> from datetime import UTC, datetime
    >>> quality = Quality(("x",), rows=8, total_rows=40)
    >>> QualityTrigger().evaluate(Signals(datetime(2024, 1, 1, tzinfo=UTC), quality=quality)).reason
    'data-quality signals in 1 column (x) on 20% of 40 new rows: >= 5% of rows'
    """

    kind = "quality"

    def __init__(self, columns: int = 2, share: float = 0.05) -> None:
        self.columns = columns
        self.share = share
        if columns < 1 or not 0 < share <= 1:
            raise errors.ConfigError(
                f"the quality trigger needs `columns` >= 1 and `share` in (0, 1]; got "
                f"{columns} and {share}.")

    @classmethod
    def from_spec(cls, spec: config.QualityTrigger) -> QualityTrigger:
        return cls(spec.columns, spec.share)

    def evaluate(self, signals: sig.Signals) -> sig.TriggerResult:
        quality = signals.quality
        evidence = {"columns": list(quality.columns), "rows": quality.rows,
                    "total_rows": quality.total_rows, "min_columns": self.columns,
                    "min_share": self.share}
        if not quality.columns:
            return self.result(False, f"no data-quality signal in {quality.total_rows} new rows",
                               **evidence)
        count = len(quality.columns)
        shown = ", ".join(quality.columns[:5]) + (", ..." if count > 5 else "")
        head = (f"data-quality signals in {count} column{'s' if count > 1 else ''} ({shown}) "
                f"on {quality.share:.0%} of {quality.total_rows} new rows")
        why = []
        if count >= self.columns:
            why.append(f">= {self.columns} columns")
        if quality.share >= self.share:
            why.append(f">= {self.share:.0%} of rows")
        if why:
            return self.result(True, f"{head}: {' and '.join(why)}", **evidence)
        return self.result(False, f"{head}: < {self.columns} columns and < {self.share:.0%} "
                           "of rows", **evidence)


def _worse(value: float, limit: float, lower_is_better: bool) -> bool:
    return value > limit if lower_is_better else value < limit


def _share(share: Any) -> str:
    return f"{share:.0%}" if isinstance(share, int | float) else "an unknown share"


# Triggers kept in a module of their own register when it is imported, after the base above.
from driftloop.policy import explanation_trigger, fairness_trigger  # noqa: E402, F401
