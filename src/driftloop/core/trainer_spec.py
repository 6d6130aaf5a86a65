"""The `trainer:` section of a pipeline spec: the training function, its window of labelled
rows, where it runs, and the optional hyperparameter search."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BeforeValidator, Field

from driftloop.core import fairness_spec, federated_spec
from driftloop.core.amount import AmountField
from driftloop.core.spec_base import Duration, Spec


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
