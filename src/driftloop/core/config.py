"""The pipeline spec: `driftloop.yaml` read into pydantic models.

`load_spec(path)` is the one entry point; the CLI (`driftloop check`, `run`, `tick`, ...) and the
controller call it. Every error it raises is a `ConfigError` whose message names the file, the
line and the field, e.g. ``driftloop.yaml:7: trainer.timeout: Input should be a valid number``.

Durations are written ``90s``, ``15m``, ``12h``, ``7d``, ``2w`` (or a number of seconds). Each
section's models live in their own `core.*_spec` module (`source_specs`, `trainer_spec`,
`trigger_spec`, `gate_spec`, ...) and are re-exported here.
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
    calendar_spec,
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

# Re-exported (`x as x`): callers know these as `config.<name>`.
from driftloop.core.calendar_spec import CalendarSpec as CalendarSpec
from driftloop.core.drift_spec import ColumnDrift as ColumnDrift
from driftloop.core.drift_spec import ConceptDriftSpec as ConceptDriftSpec
from driftloop.core.drift_spec import DriftSpec as DriftSpec
from driftloop.core.gate_spec import EstimateSpec as EstimateSpec
from driftloop.core.gate_spec import GateSpec as GateSpec
from driftloop.core.online_spec import OnlineSpec as OnlineSpec
from driftloop.core.retention_spec import RetentionSpec as RetentionSpec
from driftloop.core.rollout_spec import RolloutSpec as RolloutSpec
from driftloop.core.rollout_spec import ServingSpec as ServingSpec
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
from driftloop.core.trainer_spec import Candidate as Candidate
from driftloop.core.trainer_spec import ParamRange as ParamRange
from driftloop.core.trainer_spec import SearchSpec as SearchSpec
from driftloop.core.trainer_spec import TrainerSpec as TrainerSpec
from driftloop.core.trainer_spec import WindowSpec as WindowSpec
from driftloop.core.trigger_spec import DriftTrigger as DriftTrigger
from driftloop.core.trigger_spec import ExplanationTrigger as ExplanationTrigger
from driftloop.core.trigger_spec import FairnessTrigger as FairnessTrigger
from driftloop.core.trigger_spec import ManualTrigger as ManualTrigger
from driftloop.core.trigger_spec import PerformanceTrigger as PerformanceTrigger
from driftloop.core.trigger_spec import QualityTrigger as QualityTrigger
from driftloop.core.trigger_spec import ScheduleTrigger as ScheduleTrigger
from driftloop.core.trigger_spec import TriggerSpec as TriggerSpec
from driftloop.core.trigger_spec import VolumeTrigger as VolumeTrigger
from driftloop.core.validation_spec import ColumnValidation as ColumnValidation
from driftloop.core.validation_spec import QualitySignal as QualitySignal
from driftloop.core.validation_spec import ValidationSpec as ValidationSpec


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
    calendar: Annotated[CalendarSpec | None, BeforeValidator(calendar_spec.from_flag)] = Field(
        default=None, description="Hour, day of week, month, holiday from `timestamp`"
    )
    timezone: deploy_window_spec.Zone = Field(
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
