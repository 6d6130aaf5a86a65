"""The `online:` section of a pipeline spec: a model that learns from every labelled event.

`core.config.PipelineSpec` holds it as `online`; the controller (`controller.online_tick`),
the server (`server.state`) and the backtest read it. A pipeline with an `online:` section
needs no `trainer:` (the learner is the model); its triggers and gate are not used.

    online:
      learner: river.tree:HoeffdingAdaptiveTreeClassifier   # or sklearn.linear_model:SGDClassifier
      params: {seed: 42}
      checkpoint: {every_events: 2000, window: 500, tolerance: 0.05}
      drift: {detector: adwin, action: retrain, window: 1000}
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from driftloop.core.spec_base import Spec as _Spec
from driftloop.core.spec_base import parse_duration as _duration


class CheckpointSpec(_Spec):
    """When the live learner is snapshotted to the registry, and when a snapshot is rolled back.

    A checkpoint is taken after `every_events` learned events or `every` of (clock) time,
    whichever comes first, checked at the end of each batch of events learned together (a
    stream source that hands over events one by one gets exact counts). Its live metric is
    the prequential accuracy over the last `window` events (each scored before it was
    learned). A snapshot whose metric is below the last good snapshot's by more than
    `tolerance` is rolled back: the learner returns to the last good state and the decision
    is recorded with both metrics as evidence.

    The default, a snapshot per 5 000 events, keeps the registry to a version every few
    seconds at full speed and the learner fast: on CPython 3.11 storing a snapshot turns the
    attributes of every object it pickles from the inline layout into a dict, and a Hoeffding
    tree's leaves then run slower until they split (`benchmarks/bench_online.py`; its figures
    are in docs/performance.md). A finer cadence rolls back bad stretches sooner.
    """

    every_events: int | None = Field(default=5000, gt=0)
    every: Annotated[timedelta | None, BeforeValidator(_duration)] = Field(
        default=None, description="Time between checkpoints, e.g. 10m"
    )
    window: int = Field(default=500, gt=0)
    tolerance: float = Field(default=0.05, ge=0, le=1)


class OnlineDriftSpec(_Spec):
    """A river detector over the learner's error stream, and what a detection does.

    `reset`: a fresh learner; `retrain`: a fresh learner that first learns the last `window`
    labelled events; `none`: only record the decision.
    """

    detector: Literal["adwin", "page_hinkley", "none"] = "adwin"
    params: dict[str, Any] = Field(default_factory=dict)
    action: Literal["reset", "retrain", "none"] = "none"
    window: int = Field(default=1000, gt=0)


class OnlineSpec(_Spec):
    """An online learner: `learner` is ``module:function`` returning a river model (it has
    `learn_one`) or a scikit-learn estimator with `partial_fit` (fed mini-batches of
    `batch_size`; `classes` lists every class, else the first mini-batch must show them all)."""

    learner: str = Field(pattern=r"^[\w.]+:\w+$", description="module:function")
    params: dict[str, Any] = Field(default_factory=dict)
    batch_size: int = Field(default=1, gt=0)
    classes: list[Any] | None = None
    checkpoint: CheckpointSpec = CheckpointSpec()
    drift: OnlineDriftSpec = OnlineDriftSpec()
    kind: Literal["online"] = "online"
