"""Budgeted hyperparameter search and model selection (Optuna) at each training.

Every executor calls `fit` where it would call `trainer.fit_model`: without `trainer.search` in
the spec the two are the same; with it, `search` asks Optuna for trials within the budget
(`trials`, `timeout`), each trial fits one model family with sampled parameters on the older
rows of the training window and is scored with the gate's metric on the newest
`search.validation` share, and the best trial's model is the result. The trials come back
with it, and the controller stores them under the run.

The families are the trainer's own function (its space: `search.space`) and every entry of
`search.candidates`. When there is more than one, each family is tried first once (Optuna's
enqueued trials), so even a budget of as many trials as families compares them all; the TPE
sampler (seeded by `search.seed`) then explores. A trainer function with a ``trial``
parameter declares its space in code instead (define-by-run): it is called in the calling
process with the Optuna trial and returns an unfitted estimator, which the executor fits.

Trials run through a `Runner`: `sequential` here (inline and local executors); the Ray
executor runs a batch of trials as Ray tasks at once, asking Optuna for `parallel` trials at a
time.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from driftloop.core import config, errors
from driftloop.train import trainer

FAMILY = "family"
"""The Optuna parameter that picks the model family (only when there are several)."""


class Scorer(Protocol):
    """A fitted model's score on rows (the controller passes the gate's metric)."""

    @property
    def greater_is_better(self) -> bool: ...

    def __call__(self, model: Any, X: Any, y: Any) -> float: ...


@dataclass(frozen=True)
class Family:
    """A model family: a trainer function, its fixed parameters and its search space."""

    name: str
    function: str
    params: dict[str, Any]
    space: dict[str, config.ParamRange]


@dataclass(frozen=True)
class Split:
    """What every trial shares: the rows to fit on, the rows to score on, how to score."""

    X_train: Any
    y_train: Any
    X_valid: Any
    y_valid: Any
    base_dir: Path
    scorer: Scorer


@dataclass(frozen=True)
class TrialTask:
    """One trial to run: fit `spec` (or the unfitted `estimator` of a define-by-run trainer)."""

    number: int
    family: str
    params: dict[str, Any]
    spec: config.TrainerSpec
    estimator: Any = None


@dataclass(frozen=True)
class TrialOutcome:
    """A finished trial: its validation score (None if it failed) and what it cost."""

    number: int
    family: str
    params: dict[str, Any]
    score: float | None
    cpu_seconds: float
    wall_seconds: float
    error: str | None = None
    estimator: Any = field(default=None, repr=False, compare=False)


Evaluate = Callable[[Split, TrialTask], TrialOutcome]


class Runner(Protocol):
    """Runs trials (maybe in parallel) and returns their outcomes in the order given."""

    def __call__(self, evaluate: Evaluate, shared: Split,
                 tasks: Sequence[TrialTask]) -> list[TrialOutcome]: ...


def sequential(evaluate: Evaluate, shared: Split,
               tasks: Sequence[TrialTask]) -> list[TrialOutcome]:
    """Run the trials one after another in this process."""
    return [evaluate(shared, task) for task in tasks]


def fit(spec: config.TrainerSpec, X: Any, y: Any, base_dir: Path, scorer: Scorer | None,
        runner: Runner = sequential, parallel: int = 1) -> tuple[Any, tuple[TrialOutcome, ...]]:
    """The fitted model of `spec` and the search's trials (none without `spec.search`)."""
    if spec.search is None:
        return trainer.fit_model(spec, X, y, base_dir), ()
    if scorer is None:
        raise errors.ConfigError("trainer.search needs a metric to score trials by")
    best, trials = search(spec, X, y, base_dir, scorer, runner, parallel)
    return best.estimator, trials


def families(spec: config.TrainerSpec) -> list[Family]:
    """The trainer's own function, then the candidates, in the spec's order."""
    assert spec.search is not None
    own = Family(spec.function.partition(":")[2], spec.function, dict(spec.params),
                 dict(spec.search.space))
    others = [Family(name, c.function, dict(c.params), dict(c.space))
              for name, c in spec.search.candidates.items()]
    return [own, *others]


def search(spec: config.TrainerSpec, X: Any, y: Any, base_dir: Path, scorer: Scorer,
           runner: Runner = sequential,
           parallel: int = 1) -> tuple[TrialOutcome, tuple[TrialOutcome, ...]]:
    """Run the budgeted search; the best trial (with its model) and every trial (without)."""
    try:
        import optuna
    except ModuleNotFoundError as exc:
        raise errors.ConfigError(
            "trainer.search needs Optuna: pip install 'driftloop[hpo]'") from exc

    budget = spec.search
    assert budget is not None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    shared = _split(X, y, budget.validation, base_dir, scorer)
    choices = families(spec)
    study = optuna.create_study(
        direction="maximize" if scorer.greater_is_better else "minimize",
        sampler=optuna.samplers.TPESampler(seed=budget.seed))
    if len(choices) > 1:
        for family in choices:
            study.enqueue_trial({FAMILY: family.name})
    limit = budget.trials if budget.trials is not None else math.inf
    deadline = time.monotonic() + budget.timeout.total_seconds() if budget.timeout else math.inf
    outcomes: list[TrialOutcome] = []
    while len(outcomes) < limit and (not outcomes or time.monotonic() < deadline):
        width = int(min(max(parallel, 1), limit - len(outcomes)))
        asked = [study.ask() for _ in range(width)]
        tasks = [_task(trial, choices, spec, base_dir) for trial in asked]
        for trial, outcome in zip(asked, runner(evaluate, shared, tasks), strict=True):
            if outcome.score is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, outcome.score)
            outcomes.append(outcome)
    return _best(outcomes, scorer.greater_is_better, spec.function)


def evaluate(shared: Split, task: TrialTask) -> TrialOutcome:
    """Fit one trial's model on the training rows and score it on the validation rows."""
    cpu, wall = time.process_time(), time.perf_counter()
    score: float | None = None
    model, error = None, None
    try:
        if task.estimator is not None:
            model = trainer.fit_estimator(task.spec, task.estimator, shared.X_train,
                                          shared.y_train)
        else:
            model = trainer.fit_model(task.spec, shared.X_train, shared.y_train, shared.base_dir)
        score = float(shared.scorer(model, shared.X_valid, shared.y_valid))
        if not math.isfinite(score):
            error, score, model = f"the validation score is {score}", None, None
    except errors.DriftloopError as exc:
        error = str(exc)
    except Exception as exc:  # the scorer on a model that predicts nonsense
        error = f"scoring failed: {type(exc).__name__}: {exc}"
    return TrialOutcome(task.number, task.family, task.params, score,
                        time.process_time() - cpu, time.perf_counter() - wall, error, model)


def _split(X: Any, y: Any, share: float, base_dir: Path, scorer: Scorer) -> Split:
    """The newest `share` of the rows (they are in time order) for validation, the rest to fit."""
    rows = len(X)
    valid = min(max(1, round(rows * share)), rows - 1)
    if rows < 2:
        raise errors.TrainingError(
            f"a search needs at least 2 training rows (one to fit, one to score); got {rows}")
    cut = rows - valid
    return Split(_take(X, slice(0, cut)), _take(y, slice(0, cut)), _take(X, slice(cut, rows)),
                 _take(y, slice(cut, rows)), Path(base_dir), scorer)


def _take(data: Any, rows: slice) -> Any:
    return data.iloc[rows] if hasattr(data, "iloc") else data[rows]


def _task(trial: Any, choices: list[Family], spec: config.TrainerSpec,
          base_dir: Path) -> TrialTask:
    """Sample a family and its parameters for `trial` (define-by-run trainers build here)."""
    by_name = {family.name: family for family in choices}
    chosen = (choices[0] if len(choices) == 1
              else by_name[trial.suggest_categorical(FAMILY, list(by_name))])
    sampled = {name: _suggest(trial, f"{chosen.name}.{name}", bounds)
               for name, bounds in chosen.space.items()}
    trial_spec = spec.model_copy(update={"function": chosen.function, "search": None,
                                         "params": {**chosen.params, **sampled}})
    function = trainer.load_trainer(chosen.function, base_dir)
    if "trial" not in _parameters(function):
        return TrialTask(trial.number, chosen.name, sampled, trial_spec)
    if trainer.fits_itself(function):
        raise errors.ConfigError(
            f"trainer {chosen.function!r} takes `trial`, so it must return an unfitted "
            "estimator; drop its X and y parameters")
    try:
        estimator = function(trial=trial, **trial_spec.params)
    except Exception as exc:
        raise errors.TrainingError(
            f"trainer {chosen.function!r} raised {type(exc).__name__}: {exc}") from exc
    own = {key.removeprefix(f"{chosen.name}."): value for key, value in trial.params.items()
           if key != FAMILY}
    return TrialTask(trial.number, chosen.name, own, trial_spec, estimator)


def _suggest(trial: Any, name: str, bounds: config.ParamRange) -> Any:
    if bounds.choices is not None:
        return trial.suggest_categorical(name, bounds.choices)
    low, high = bounds.low, bounds.high
    assert low is not None and high is not None  # ParamRange checks this when the spec loads
    if isinstance(low, int) and isinstance(high, int):
        return trial.suggest_int(name, low, high, log=bounds.log)
    return trial.suggest_float(name, float(low), float(high), log=bounds.log)


def _parameters(function: Callable[..., Any]) -> set[str]:
    try:
        return set(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return set()


def _best(outcomes: list[TrialOutcome], greater_is_better: bool,
          function: str) -> tuple[TrialOutcome, tuple[TrialOutcome, ...]]:
    """The best finished trial (the first of equals) and all trials without their models."""
    done = [o for o in outcomes if o.score is not None]
    if not done:
        reasons = "; ".join(f"trial {o.number} ({o.family}): {o.error}" for o in outcomes[:3])
        raise errors.TrainingError(
            f"every trial of the search for {function!r} failed: {reasons}")
    sign = 1.0 if greater_is_better else -1.0
    best = max(done, key=lambda o: (sign * (o.score or 0.0), -o.number))
    return best, tuple(dataclasses.replace(o, estimator=None) for o in outcomes)
