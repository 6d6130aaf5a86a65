"""The pipeline spec: `driftloop.yaml` read into pydantic models.

`load_spec(path)` is the one entry point; the CLI (`driftloop check`, `run`, `tick`, ...) and the
controller call it. Every error it raises is a `ConfigError` whose message names the file, the
line and the field, e.g. ``driftloop.yaml:7: trainer.timeout: Input should be a valid number``.

Durations are written ``90s``, ``15m``, ``12h``, ``7d``, ``2w`` (or a number of seconds). The
`source:` models live in `core.source_specs` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import yaml
from pydantic import BeforeValidator, Field

from driftloop.core import (
    deploy_window_spec,
    errors,
    explain_spec,
    fairness_spec,
    federated_spec,
    notify_spec,
    region_spec,
    source_specs,
    text_spec,
)
from driftloop.core.amount import Amount, AmountField
from driftloop.core.online_spec import OnlineSpec
from driftloop.core.retention_spec import RetentionSpec

# Re-exported (`x as x`): callers know these as `config.<name>`.
from driftloop.core.source_specs import BatchSpec as BatchSpec
from driftloop.core.source_specs import FileSourceSpec as FileSourceSpec
from driftloop.core.source_specs import HttpSourceSpec as HttpSourceSpec
from driftloop.core.source_specs import NatsSourceSpec as NatsSourceSpec
from driftloop.core.source_specs import RedisSourceSpec as RedisSourceSpec
from driftloop.core.source_specs import SourceSpec as SourceSpec
from driftloop.core.source_specs import SqlSourceSpec as SqlSourceSpec
from driftloop.core.spec_base import Duration as Duration
from driftloop.core.spec_base import Spec as Spec
from driftloop.core.spec_base import parse_duration as parse_duration


class StorageSpec(Spec):
    """Where models and accepted batches are kept: a folder or any fsspec URL (``s3://...``).

    Written either as the URL alone (``artifacts: s3://bucket/prefix``) or with options
    (``artifacts: {url: s3://bucket/prefix, options: {endpoint_url: ...}}``).
    """

    url: str = "./artifacts"
    options: dict[str, Any] = Field(default={}, description=source_specs.STORAGE_OPTIONS)


def _storage(value: Any) -> Any:
    """A bare URL is a `StorageSpec` without options.

    >>> _storage("s3://bucket/models")
    {'url': 's3://bucket/models'}
    """
    return {"url": value} if isinstance(value, str) else value


QualitySignal = Literal["range", "categories", "missing"]
"""What a batch may show beyond the first data without being wrong: values outside the
inferred range, categories never seen, more missing values than the first data had."""


class ColumnValidation(Spec):
    """Validation settings of one column (`validation.per_column`)."""

    strict: list[QualitySignal] = Field(
        description="Signals that quarantine a batch in this column (replaces `strict`)"
    )


class ValidationSpec(Spec):
    """How batches are checked against the schema inferred from the first accepted data.

    Hard failures always quarantine a batch: unreadable data, values of the wrong type,
    missing required columns, values outside explicit `bounds`, infinite values, fewer than
    `min_rows` rows. What only goes beyond the first data (see `QualitySignal`) is a
    data-quality signal: the batch is accepted and the signal recorded with it, unless the
    signal is `strict` (for every column, or per column in `per_column`).

    >>> spec = ValidationSpec(strict=["range"], per_column={"x": {"strict": []}})
    >>> sorted(spec.strict_for("y")), sorted(spec.strict_for("x"))
    (['range'], [])
    """

    range_tolerance: float = Field(
        default=0.5,
        ge=0,
        description="Share of the seen range a value may lie beyond min/max before it is a "
        "range signal",
    )
    missing_rate_slack: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Extra missing share per column before it is a missing signal",
    )
    bounds: dict[str, tuple[float, float]] = Field(
        default={},
        description="Known [low, high] per column; replaces the inferred range and quarantines",
    )
    allow_new_categories: bool = Field(
        default=False, description="New categories are expected: not even a signal"
    )
    strict: list[QualitySignal] = Field(
        default=[], description="Signals that quarantine a batch, in every column"
    )
    per_column: dict[str, ColumnValidation] = {}
    min_rows: int = Field(default=1, ge=1)

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> ValidationSpec:
        lists = {"": self.strict} | {n: c.strict for n, c in self.per_column.items()}
        for name, strict in lists.items():
            if self.allow_new_categories and "categories" in strict:
                where = f"per_column.{name}.strict" if name else "strict"
                raise ValueError(
                    f"{where} makes new categories quarantine a batch, but "
                    "allow_new_categories accepts them; choose one"
                )
        return self

    def strict_for(self, column: str) -> frozenset[str]:
        """The signals that quarantine a batch in `column`."""
        own = self.per_column.get(column)
        return frozenset(self.strict if own is None else own.strict)


class ColumnDrift(Spec):
    """The drift test for one column (or the default for a column type)."""

    test: Literal["ks", "chi2", "psi", "wasserstein", "jensenshannon"]
    threshold: float | None = Field(
        default=None, gt=0, description="Effect-size threshold; test default if unset"
    )


class ConceptDriftSpec(Spec):
    """A streaming detector (river) over the champion's per-row error once labels arrive."""

    detector: Literal["adwin", "page_hinkley", "none"] = "adwin"
    params: dict[str, Any] = {}


class DriftSpec(Spec):
    """Data drift: a default test per column type, per-column overrides, and the decision rule;
    concept drift: a detector over the live error stream."""

    numeric: ColumnDrift = ColumnDrift(test="ks")
    categorical: ColumnDrift = ColumnDrift(test="chi2")
    per_column: dict[str, ColumnDrift] = {}
    alpha: float = Field(default=0.05, gt=0, lt=1)
    correction: Literal["holm", "bonferroni", "fdr_bh", "none"] = "holm"
    columns_share: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description="Share of drifted columns that means the dataset drifted",
    )
    ignore: list[str] = []
    concept: ConceptDriftSpec = ConceptDriftSpec()


class WindowSpec(Spec):
    """Which labelled rows a training uses.

    `last` keeps the newest `size` (batches, rows or a duration); `auto` chooses among
    `candidates` (default: 1, 4, 16, ... batches and all data) by their score on the newest
    labelled rows, which none of them was trained on, then refits the winner on everything up
    to now. With `rechoose: on_change` it chooses when a change caused the retraining (any
    trigger but volume and schedule, or no chosen window yet) among all candidates; a routine
    refresh tries none longer than the chosen window grown by the batches since, so the
    costly long fits happen only after a change.
    """

    kind: Literal["all", "last", "last_rows", "last_duration", "since_drift", "auto"] = "all"
    size: AmountField | None = None
    rows: int | None = Field(default=None, gt=0)
    duration: Duration | None = None
    candidates: list[AmountField] | None = Field(
        default=None,
        description="Windows `auto` tries; default: 1, 4, 16, ... batches up to all the data",
    )
    rechoose: Literal["on_change", "always"] = "on_change"

    @pydantic.model_validator(mode="after")
    def _needs(self) -> WindowSpec:
        if self.kind == "last" and self.size is None:
            raise ValueError("kind 'last' needs `size`, e.g. size: 8 batches (or 14d, 5000 rows)")
        if self.kind == "last" and self.size is not None and self.size.unit == "share":
            raise ValueError("kind 'last': `size` is the window itself; give batches, rows or "
                             "a duration")
        if self.kind == "last_rows" and self.rows is None:
            raise ValueError("kind 'last_rows' needs `rows`, e.g. rows: 10000")
        if self.kind == "last_duration" and self.duration is None:
            raise ValueError("kind 'last_duration' needs `duration`, e.g. duration: 30d")
        if self.candidates is not None and self.kind != "auto":
            raise ValueError("`candidates` are for kind 'auto'")
        if self.rechoose != "on_change" and self.kind != "auto":
            raise ValueError("`rechoose` is for kind 'auto'")
        return self


def _window(value: Any) -> Any:
    """A bare kind (``window: auto``) is a `WindowSpec` of that kind.

    >>> _window("auto")
    {'kind': 'auto'}
    """
    return {"kind": value} if isinstance(value, str) else value


class ParamRange(Spec):
    """One hyperparameter's range: `low`..`high` (integers if both are), or `choices`."""

    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    choices: list[Any] | None = None

    @pydantic.model_validator(mode="after")
    def _range_or_choices(self) -> ParamRange:
        if (self.choices is None) == (self.low is None or self.high is None):
            raise ValueError("give `low` and `high`, or `choices`, e.g. {low: 10, high: 200}")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"`low` {self.low:g} is above `high` {self.high:g}")
        return self


class Candidate(Spec):
    """A model family the search may choose: a trainer function, fixed params, a space."""

    function: str = Field(pattern=r"^[\w.]+:\w+$")
    params: dict[str, Any] = {}
    space: dict[str, ParamRange] = {}


class SearchSpec(Spec):
    """Budgeted search (Optuna) at each training across the trainer's own function (its space:
    `space`) and the other `candidates`, scored with the gate's metric on the newest
    `validation` share of the training rows; the best trial's model is the run's model."""

    trials: int | None = Field(default=None, ge=1, description="At most this many trials")
    timeout: Duration | None = Field(default=None, description="No trial starts after this")
    validation: float = Field(default=0.2, gt=0, lt=1)
    space: dict[str, ParamRange] = {}
    candidates: dict[str, Candidate] = {}
    seed: int = 0

    @pydantic.model_validator(mode="after")
    def _budget(self) -> SearchSpec:
        if self.trials is None and self.timeout is None:
            raise ValueError("give a budget: `trials`, `timeout` or both")
        return self


class TrainerSpec(Spec):
    """The trainer: a `module:function` that returns (or fits) a scikit-learn estimator."""

    function: str = Field(
        pattern=r"^[\w.]+:\w+$", description="module:function, e.g. train:make_model"
    )
    params: dict[str, Any] = {}
    window: Annotated[WindowSpec, BeforeValidator(_window)] = WindowSpec()
    timeout: Duration = timedelta(minutes=30)
    threads: int | None = Field(
        default=1,
        ge=1,
        description="CPU threads one training may use (OpenMP, BLAS); null: all. More threads "
        "help only with large data on idle cores, and slow small fits on busy ones",
    )
    executor: Literal["local", "inline", "ray"] = "local"
    address: str | None = Field(
        default=None,
        description="Ray cluster address for executor ray (e.g. 127.0.0.1:6379 or "
        "ray://127.0.0.1:10001); null: a local Ray on 127.0.0.1 started by this process",
    )
    search: SearchSpec | None = Field(
        default=None, description="Hyperparameter search / model selection at each training"
    )
    segment_by: str | None = Field(
        default=None,
        description="A feature column: one model per value (in parallel on Ray), and a fallback "
        "on all rows for values never seen",
    )
    trusted_modules: list[Annotated[str, Field(pattern=r"^\w+(\.\w+)*$")]] = Field(
        default=[],
        description="Modules (or dotted prefixes) a stored model may contain types from besides "
        "scikit-learn, numpy, scipy and the trainer modules, e.g. lightgbm; a model file with "
        "any other type is refused when it is loaded",
    )
    fairness_mitigation: fairness_spec.MitigationSpec | None = None
    federated: federated_spec.FederatedSpec | None = Field(
        default=None, description="Train across `regions:` by averaging parameters (FedAvg)"
    )

    @pydantic.model_validator(mode="after")
    def _combinations(self) -> TrainerSpec:
        if self.federated is not None and (why := federated_spec.trainer_problem(self)):
            raise federated_spec.located("TrainerSpec", ["federated"], why, "federated")
        if self.address is not None and self.executor != "ray":
            raise ValueError(f"`address` is for executor ray; executor is {self.executor!r}")
        if self.window.kind == "auto" and self.search is not None:
            raise ValueError("window `auto` and `search` do not combine yet (each candidate "
                             "window would run the whole search): choose a window kind, e.g. "
                             "window: {kind: last, size: 8 batches}")
        if self.segment_by is not None and self.search is not None:
            raise ValueError("`segment_by` and `search` do not combine yet; choose one")
        own = self.function.partition(":")[2]
        if self.search is not None and own in self.search.candidates:
            raise ValueError(
                f"search.candidates: {own!r} names the trainer's own function, which is always a "
                "candidate; give the other family another name"
            )
        return self


class ScheduleTrigger(Spec):
    kind: Literal["schedule"] = "schedule"
    cron: str
    timezone: str = "UTC"


class DriftTrigger(Spec):
    kind: Literal["drift"] = "drift"


class PerformanceTrigger(Spec):
    """Fires when the champion's live performance falls. With neither `floor` nor `drop` (the
    default) the test is relative: the live per-row error over `window` is significantly
    higher (one-sided Welch test at `alpha`) than the same model's error on the labelled
    batches it scored before. `floor` and `drop` add absolute limits on the live metric."""

    kind: Literal["performance"] = "performance"
    metric: str = "accuracy"
    floor: float | None = None
    drop: float | None = Field(
        default=None, gt=0, description="Fire when live metric < champion validation - drop"
    )
    window: AmountField = Field(
        default=Amount(1, "batches"),
        description="Live labelled data the test looks at: batches, rows or a duration",
    )
    alpha: float = Field(default=0.01, gt=0, lt=1, description="Significance of the drop")


class VolumeTrigger(Spec):
    kind: Literal["volume"] = "volume"
    rows: int | None = Field(
        default=None, gt=0,
        description="Fire after this many new labelled rows since the last training",
    )
    every: AmountField | None = Field(
        default=None,
        description="Fire after this much new labelled data: batches, rows, a duration, or a "
        "share of the training window",
    )

    @pydantic.model_validator(mode="after")
    def _one(self) -> VolumeTrigger:
        if (self.rows is None) == (self.every is None):
            raise ValueError("give `every` (e.g. every: 10 batches) or `rows`, not both")
        return self

    @property
    def amount(self) -> Amount:
        """`every`, or `rows` as an amount of rows."""
        return self.every if self.every is not None else Amount(float(self.rows or 0), "rows")


class FairnessTrigger(Spec):
    """Fires when a disparity of `fairness.thresholds` is broken on the newest labelled
    batches: on at least `batches` of the last `window` batches that had enough rows per group."""

    kind: Literal["fairness"] = "fairness"
    batches: int = Field(default=2, ge=1, description="Batches that must break a threshold")
    window: int = Field(default=3, ge=1, description="Of this many newest judged batches")


class ExplanationTrigger(Spec):
    """Fires when the champion, re-explained on a recent labelled batch (`explain.live`),
    relies on its features differently from when it was trained (`explain.shift`)."""

    kind: Literal["explanation"] = "explanation"


class ManualTrigger(Spec):
    kind: Literal["manual"] = "manual"


class QualityTrigger(Spec):
    """Fire when the batches new since the last decision carry data-quality signals (values
    beyond the first data's range, new categories, more missing values: `validation`) in at
    least `columns` columns, or on at least `share` of their rows."""

    kind: Literal["quality"] = "quality"
    columns: int = Field(default=2, ge=1, description="Columns with a signal that fire")
    share: float = Field(default=0.05, gt=0, le=1, description="Share of rows that fires")


TriggerSpec = Annotated[
    ScheduleTrigger
    | DriftTrigger
    | PerformanceTrigger
    | VolumeTrigger
    | ManualTrigger
    | QualityTrigger
    | FairnessTrigger
    | ExplanationTrigger,
    Field(discriminator="kind"),
]


class GateSpec(Spec):
    """Challenger vs champion on the same recent labelled holdout. `require: better` promotes a
    challenger whose improvement's confidence interval lies above `min_improvement`; `not_worse`
    one that is not significantly worse (the interval reaches 0). `enabled: false` promotes every
    trained model (the report is still computed and stored)."""

    enabled: bool = True
    require: Literal["better", "not_worse"] = "better"

    metric: str = "accuracy"
    min_improvement: float = Field(default=0.0, ge=0)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    bootstrap: int = Field(default=1000, ge=100)
    holdout: AmountField = Field(
        default=Amount(2000, "rows"),
        description="The newest labelled data the models are compared on: batches, rows, a "
        "duration or a share of the training window (at most a fifth of the window)",
    )
    refit: bool = Field(
        default=True,
        description="A challenger that passed is refitted on its window including the holdout, "
        "so the newest rows are not lost to the comparison",
    )

    @pydantic.model_validator(mode="before")
    @classmethod
    def _holdout_rows(cls, data: Any) -> Any:
        """`holdout_rows: N` (older specs) is `holdout: N rows`."""
        if isinstance(data, dict) and "holdout_rows" in data:
            data = dict(data)
            if "holdout" in data:
                raise ValueError("give `holdout` or `holdout_rows`, not both")
            data["holdout"] = data.pop("holdout_rows")
        return data


CalendarFeature = Literal["hour", "day_of_week", "month", "holiday"]


class CalendarSpec(Spec):
    """Model inputs derived from the `timestamp` column, in the pipeline's `timezone`: hour,
    day of week (Monday 0), month, and 1 on public holidays of `country` (ISO code, with an
    optional `subdivision`, e.g. AU / NSW). Holidays come from the optional `holidays` package
    (``pip install driftloop[calendar]``), which works offline; without it, or without a
    `country`, there is no holiday column (`driftloop check` says so). Derived at training,
    in the controller's scoring and in the server from the same function
    (`data.calendar.model_input`), so they cannot differ. Written ``calendar: true`` for all."""

    features: list[CalendarFeature] = ["hour", "day_of_week", "month", "holiday"]
    country: str | None = None
    subdivision: str | None = None


def _calendar(value: Any) -> Any:
    """`calendar: true` is every calendar feature; `false` none.

    >>> _calendar(True), _calendar(False)
    ({}, None)
    """
    if value is True:
        return {}
    return None if value is False else value


def _zone(value: str) -> str:
    """An IANA time zone name, checked (`Europe/Berlin`, `Australia/Sydney`, `UTC`)."""
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}; use an IANA name like "
                         "'Europe/Berlin' or 'UTC'") from exc
    return value


class EstimateSpec(Spec):
    """Performance estimated before labels arrive (classifiers): each version's confidences are
    calibrated on held-out labelled rows at training time (`train.calibration`), and every
    batch the champion scores gets an estimated accuracy, used by a performance trigger while
    the batch's labels are missing. The held-out rows are the gate's holdout; with the gate off
    (or a holdout under 20 rows) and `rows` > 0, one extra fit on the window without `rows`
    rows spread evenly over it is calibrated on those (its CPU counts in the run's compute)."""

    method: Literal["isotonic", "sigmoid", "none"] = Field(
        default="isotonic", description="How confidences are calibrated; none: no estimate"
    )
    rows: int = Field(
        default=0, ge=0,
        description="Rows to hold out for calibration, spread over the window, when the gate "
        "holds none out (an extra fit); 0: calibrate only on the gate's holdout",
    )


class RolloutSpec(Spec):
    """How a model that passed the gate goes live, and when a live test promotes or rolls it back.

    `replace` moves the champion at once. The others put the new version under a test alias
    (`shadow`: scored on every request off the response path, never returned; `canary`: a
    `share` of traffic; `ab`: the `challenger` alias on a `share` of traffic) and the controller
    compares it with the champion on live labels: it promotes once `min_requests` and
    `min_labels` are reached and the lower end of the `confidence` interval of challenger −
    champion (positive = better) is above `-max_metric_drop`; it rolls back when the interval
    lies wholly below that, or at once when the error rate or p99 latency exceeds its limit.
    Assignment is sticky: a hash of the request's `key` (or of the record field named by `key`).

    >>> RolloutSpec(strategy="canary", share=0.1).test_alias
    'canary'
    """

    strategy: Literal["replace", "shadow", "canary", "ab"] = "replace"
    share: float = Field(default=0.1, gt=0, lt=1, description="Traffic share of the challenger")
    key: str | None = Field(
        default=None, description="Record field to assign by; default: the request's `key`"
    )
    min_requests: int = Field(default=500, ge=1)
    min_labels: int = Field(default=200, ge=1)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    max_p99_ms: float = Field(default=50.0, gt=0)
    max_metric_drop: float = Field(default=0.01, ge=0)
    windows: list[deploy_window_spec.DeployWindowSpec] = Field(
        default=[], description="Local days and hours a promotion may happen in (none: any time)"
    )
    freeze: list[deploy_window_spec.FreezeSpec] = Field(
        default=[], description="Periods without promotions, even inside a window"
    )

    @property
    def test_alias(self) -> str | None:
        """The alias a new version is tested under (None for `replace`)."""
        return {"shadow": "shadow", "canary": "canary", "ab": "challenger"}.get(self.strategy)


class ServingSpec(Spec):
    """How `driftloop serve` behaves."""

    anonymous_predict: bool = Field(default=False, description="Allow /v1/predict without a token")
    poll_interval: Duration = Field(
        default=timedelta(seconds=1), description="How often servers look for a new champion"
    )
    public_dashboard: bool = Field(
        default=False, description="Show the dashboard (/ui) without a token with the view role"
    )
    runtime: Literal["sklearn", "onnx"] = Field(
        default="sklearn",
        description="Score with onnxruntime where the version has an ONNX export that passed "
        "its parity check (driftloop models export VERSION --format onnx); else scikit-learn",
    )


class PipelineSpec(Spec):
    """One pipeline: where data comes from, how it is checked, when and how models are retrained."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    store: str = "sqlite:///driftloop.db"
    artifacts: Annotated[StorageSpec, BeforeValidator(_storage)] = StorageSpec()
    source: SourceSpec
    target: str
    timestamp: str | None = None
    id: str | None = Field(default=None, description="Row id column, to join late labels")
    features: list[str] | None = Field(
        default=None, description="Model inputs; default: all but target, timestamp, id. "
        "Also written {columns: [...], calendar: true}",
    )
    calendar: Annotated[CalendarSpec | None, BeforeValidator(_calendar)] = Field(
        default=None, description="Hour, day of week, month, holiday from `timestamp`"
    )
    timezone: Annotated[str, pydantic.AfterValidator(_zone)] = Field(
        default="UTC", description="The pipeline's time zone (IANA name): calendar features"
    )
    task: Literal["classification", "regression"] = "classification"
    validation: ValidationSpec = ValidationSpec()
    drift: DriftSpec = DriftSpec()
    trainer: TrainerSpec
    triggers: list[TriggerSpec] = [ScheduleTrigger(cron="0 3 * * 1")]
    cooldown: AmountField = Field(
        default=Amount(0, "seconds"),
        description="After a training, no other (but a manual one) until this much new data or "
        "time: batches, rows, a duration or a share of the training window",
    )
    lease_timeout: Duration = Field(
        default=timedelta(minutes=1),
        gt=timedelta(0),
        description="How long a controller that stopped answering keeps the pipeline's lease "
        "before another controller takes over; a live one renews it every third of this",
    )
    gate: GateSpec = GateSpec()
    estimate: EstimateSpec = EstimateSpec()
    rollout: RolloutSpec = RolloutSpec()
    serving: ServingSpec = ServingSpec()
    online: OnlineSpec | None = Field(
        default=None, description="An online learner that learns from every labelled event"
    )
    fairness: fairness_spec.FairnessSpec | None = None
    explain: explain_spec.ExplainSpec | None = None
    retention: RetentionSpec = RetentionSpec()
    notify: notify_spec.Hooks = []
    text: text_spec.TextSpec | None = Field(default=None, description="Free-text columns")
    regions: Annotated[
        list[region_spec.RegionSpec], pydantic.AfterValidator(region_spec.check_regions)
    ] = Field(default=[], description="Regions, each with its own store, artifacts and source")

    @pydantic.model_validator(mode="before")
    @classmethod
    def _metric_defaults(cls, data: Any) -> Any:
        """Metrics left out follow the task (accuracy; rmse for regression), and a performance
        trigger watches the gate's metric. An online pipeline's `trainer` defaults to its
        learner (it is only named in the records; the learner itself is the model)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        features = data.get("features")
        if isinstance(features, dict) and set(features) <= {"columns", "calendar"}:
            # `features: {columns: [...], calendar: ...}`: the list, and the `calendar:` section
            data["features"] = features.get("columns")
            if "calendar" in features:
                data.setdefault("calendar", features["calendar"])
        online = data.get("online")
        if isinstance(online, dict) and "trainer" not in data and "learner" in online:
            data["trainer"] = {"function": online["learner"], "executor": "inline"}
        gate = dict(data.get("gate") or {})
        if "metric" not in gate and data.get("task") == "regression":
            gate["metric"] = "rmse"
        data["gate"] = gate
        metric = gate.get("metric", "accuracy")
        if isinstance(data.get("triggers"), list):
            data["triggers"] = [
                {**t, "metric": metric}
                if isinstance(t, dict) and t.get("kind") == "performance" and "metric" not in t
                else t
                for t in data["triggers"]
            ]
        return data

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> PipelineSpec:
        """Checks across sections: metrics fit the task and agree; time windows have a clock."""
        if METRIC_TASKS.get(self.gate.metric, self.task) != self.task:
            raise ValueError(
                f"gate.metric {self.gate.metric!r} is for {METRIC_TASKS[self.gate.metric]}, but "
                f"task is {self.task}; use one of {_metrics_for(self.task)}"
            )
        for trigger in self.triggers:
            if isinstance(trigger, PerformanceTrigger) and trigger.drop and not self.gate.enabled:
                raise ValueError(
                    "a performance trigger with `drop` compares with the champion's score on "
                    "the gate's holdout; with gate.enabled false there is none: use `floor`"
                )
            if isinstance(trigger, PerformanceTrigger) and trigger.metric != self.gate.metric:
                raise ValueError(
                    f"a performance trigger watches the live {self.gate.metric!r} (gate.metric);"
                    f" its metric {trigger.metric!r} must be the same"
                )
        if self.online is not None and (
            self.task != "classification" or self.gate.metric != "accuracy"
        ):
            raise ValueError(
                "an online learner is judged by prequential accuracy: it needs task "
                "classification and gate.metric accuracy"
            )
        if self.calendar is not None and self.timestamp is None:
            raise ValueError("`calendar` features come from `timestamp:`; name that column")
        if self.calendar is not None and self.online is not None:
            raise ValueError("`calendar` features are not derived for an online learner yet")
        fairness_spec.check(self.fairness, self.trainer.fairness_mitigation, self.task,
                            self.features)
        if self.fairness is None and any(t.kind == "fairness" for t in self.triggers):
            raise ValueError("a `fairness` trigger needs the `fairness:` section")
        if (self.explain is None or self.explain.live is None) and any(
                t.kind == "explanation" for t in self.triggers):
            raise ValueError("an `explanation` trigger needs `explain: {live: ...}`")
        if self.trainer.federated is not None and (
                why := federated_spec.regions_problem(self.trainer.federated, self.regions)):
            raise federated_spec.located("PipelineSpec", ["trainer", "federated"], why,
                                         "federated")
        window = self.trainer.window
        timed = window.kind in {"last_duration", "since_drift"} or (
            window.size is not None and window.size.unit == "seconds")
        if timed and self.timestamp is None:
            raise ValueError(
                f"trainer.window kind {self.trainer.window.kind!r} needs `timestamp:` (the "
                "column that orders rows in time); or use kind 'last_rows'"
            )
        return self

    def feature_columns(self, columns: list[str]) -> list[str]:
        """The model's input columns among `columns`."""
        if self.features is not None:
            return list(self.features)
        excluded = {self.target, self.timestamp, self.id}
        if self.fairness is not None:
            excluded |= self.fairness.excluded()
        return [column for column in columns if column not in excluded]


METRIC_TASKS: dict[str, str] = {
    "accuracy": "classification",
    "f1": "classification",
    "roc_auc": "classification",
    "log_loss": "classification",
    "rmse": "regression",
    "mae": "regression",
    "r2": "regression",
}
"""The task of each metric the gate knows (`gate.metrics` registers them; a test keeps the two
in step)."""


def _metrics_for(task: str) -> str:
    return ", ".join(name for name, kind in METRIC_TASKS.items() if kind == task)


def load_spec(path: str | Path) -> PipelineSpec:
    """Read and validate a spec file; any problem is a `ConfigError` naming file:line: field."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise errors.ConfigError(
            f"{path}: cannot read spec: {exc.strerror}. Run the command in a project folder "
            "(`driftloop init NAME` makes one) or pass --spec PATH"
        ) from exc
    return parse_spec(text, str(path))


def parse_spec(text: str, filename: str = "<spec>") -> PipelineSpec:
    """Validate spec text; `filename` only appears in error messages."""
    try:
        node, data = _compose_and_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else 0
        raise errors.ConfigError(f"{filename}:{line}: malformed YAML: {exc.problem}") from exc
    if not isinstance(data, dict):
        raise errors.ConfigError(f"{filename}:1: the spec must be a mapping of fields")
    try:
        return PipelineSpec.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = [_describe(error, node, filename) for error in exc.errors()]
        raise errors.ConfigError("\n".join(problems)) from exc


def _compose_and_load(text: str) -> tuple[yaml.Node | None, Any]:
    """The YAML node tree (for line numbers) and the data it holds, from one parse: by libyaml
    where PyYAML has it (about ten times faster), and by the pure-Python parser for a malformed
    file, whose messages say more (``found character '\\t' that cannot start any token``)."""
    try:
        return _parse(text, getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.MarkedYAMLError:
        return _parse(text, yaml.SafeLoader)


def _parse(text: str, loader_class: Any) -> tuple[yaml.Node | None, Any]:
    """What `yaml.compose` and `yaml.safe_load` give, with the `loader_class` given."""
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        return node, None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()


def spec_from_mapping(data: Mapping[str, Any], origin: str = "<dict>") -> PipelineSpec:
    """Validate a spec given as a mapping (from Python); problems name `origin` and the field.

    >>> spec_from_mapping({"name": "x"})
    Traceback (most recent call last):
    ...
    driftloop.core.errors.ConfigError: <dict>:1: source: Field required
    <dict>:1: target: Field required
    <dict>:1: trainer: Field required
    """
    try:
        return PipelineSpec.model_validate(dict(data))
    except pydantic.ValidationError as exc:
        problems = [_describe(error, None, origin) for error in exc.errors()]
        raise errors.ConfigError("\n".join(problems)) from exc


def _describe(error: Any, node: yaml.Node | None, filename: str) -> str:
    loc = _strip_union_tags(list(error["loc"]))
    field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    field = field.lstrip(".") or "(top level)"
    line = _line_of(node, loc)
    return f"{filename}:{line}: {field}: {error['msg']}"


def _strip_union_tags(loc: list[Any]) -> list[Any]:
    """pydantic puts the discriminator value (`sql`, `schedule`, ...) into `loc` after the field
    of a tagged union (`source`, or a list index under `triggers`); the user never wrote it."""
    kept: list[Any] = []
    for part in loc:
        after_union = bool(kept) and (kept[-1] == "source" or isinstance(kept[-1], int))
        if after_union and isinstance(part, str) and part in _UNION_TAGS:
            continue
        kept.append(part)
    return kept


_UNION_TAGS = {
    *source_specs.SOURCE_KINDS, "schedule", "drift", "performance", "volume", "manual", "quality",
    "fairness", "explanation",
}


def line_of(path: str | Path, *loc: str | int) -> int:
    r"""The 1-based line of field `loc` (``"trainer", "params", "alpha"``) in the spec file at
    `path`, or of its deepest parent that is there (for messages about valid YAML).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     spec = Path(folder) / "driftloop.yaml"
    ...     _ = spec.write_text("name: x\ntrainer:\n  params:\n    alpha: 1\n")
    ...     line_of(spec, "trainer", "params", "alpha"), line_of(spec, "trainer", "window")
    (4, 2)
    """
    return _line_of(yaml.compose(Path(path).read_text(), Loader=yaml.SafeLoader), list(loc))


def _line_of(node: yaml.Node | None, loc: list[Any]) -> int:
    """1-based line of the deepest node on `loc` that exists in the YAML tree."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    line, node = key.start_mark.line + 1, value
                    break
            else:
                return line
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
