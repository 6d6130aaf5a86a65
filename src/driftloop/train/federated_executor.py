"""A region's side of a federated training: an executor whose `train` takes part in the rounds.

The region's controller trains with it as with any executor: the tick selects the window,
holds out the newest rows and calls `train` with the training rows. Those rows stay here:
over the channel go only the region's row count, per-feature sums, its class labels and,
each round, the model's parameters (`train.federated_rounds`). What comes back is the global
model (the global standardisation, then the trainer's linear model with the averaged
parameters), which the controller then gates, stores and rolls out like any other model.

`finish()` after the tick tells the coordinator when this region did not train in it.
The trainer must return an unfitted linear model with `partial_fit`, `coef_` and
`intercept_` (`SGDClassifier`, `SGDRegressor`, `Perceptron`, `PassiveAggressiveClassifier`).
"""

from __future__ import annotations

import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
from sklearn import base, pipeline, preprocessing

from driftloop.core import config, errors
from driftloop.train import executor as executors
from driftloop.train import federated, search
from driftloop.train import federated_rounds as rounds
from driftloop.train import trainer as trainers


class FederatedExecutor(executors.Executor):
    """Trains by taking part in one federated training over `channel` as region `region`."""

    def __init__(self, channel: Connection, region: str) -> None:
        self.channel = channel
        self.region = region
        self._spoken = False

    def train_one(self, spec: config.TrainerSpec, X: Any, y: Any, base_dir: Path,
                  scorer: search.Scorer | None = None) -> executors.TrainResult:
        if self._spoken:
            raise errors.TrainingError(
                "a federated training is one fit per round; this region already took part")
        self._spoken = True
        federation = spec.federated
        if federation is None:
            raise errors.ConfigError("the federated executor needs `trainer.federated`")
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            model = _make(spec, base_dir)
            x, target = np.asarray(X, dtype=float), np.asarray(y)
            columns = [str(c) for c in X.columns] if hasattr(X, "columns") else None
        except (errors.DriftloopError, ValueError, TypeError) as exc:
            self.channel.send(rounds.Abort(f"region {self.region!r}: {exc}"))
            raise errors.TrainingError(f"federated training: {exc}") from exc
        classes = tuple(np.unique(target).tolist()) if base.is_classifier(model) else ()
        self.channel.send(rounds.Join(federated.scaler_update(x), classes))
        timeout = spec.timeout.total_seconds()
        scaler = self._receive(timeout, rounds.Scaler, rounds.Postpone)
        if isinstance(scaler, rounds.Postpone):
            raise errors.Postponed(f"the federated round did not run: {scaler.reason}")
        scaled = (x - scaler.mean) / np.where(scaler.var > 0, np.sqrt(scaler.var), 1.0)
        labels = np.array(scaler.classes) if scaler.classes else None
        while True:
            message = self._receive(timeout, rounds.Start, rounds.Final)
            if isinstance(message, rounds.Final):
                break
            seed = federation.seed + 97 * message.round + sum(map(ord, self.region))
            try:
                update = federated.local_update(_make(spec, base_dir), scaled, target,
                                                message.params, labels, federation.epochs, seed)
            except Exception as exc:  # the others must not wait for this region
                self.channel.send(rounds.Abort(f"region {self.region!r}: {exc}"))
                raise errors.TrainingError(f"federated training: {exc}") from exc
            self.channel.send(update)
        fitted = federated.assemble(_make(spec, base_dir), scaler.mean, scaler.var, scaler.rows,
                                    message.params, labels, columns)
        lineage: dict[str, float] = {"federated_rounds": message.rounds,
                                     "federated_regions": len(message.regions)}
        lineage.update({f"federated_rows.{name}": rows for name, rows in message.regions.items()})
        return executors.TrainResult(fitted, time.process_time() - cpu,
                                     time.perf_counter() - wall, lineage=lineage)

    def finish(self, reason: str) -> None:
        """End the tick: say, if this region did not train in it, that it sits this round out
        (`reason`); the next tick may take part in the next round."""
        if not self._spoken:
            self.channel.send(rounds.Decline(reason))
        self._spoken = False

    def _receive(self, timeout: float, *kinds: type) -> Any:
        message = rounds.receive(self.channel, timeout, kinds, "the coordinator")
        if isinstance(message, rounds.Abort):
            raise errors.TrainingError(f"the federated training stopped: {message.reason}")
        return message


def _make(spec: config.TrainerSpec, base_dir: Path) -> Any:
    """The trainer's unfitted linear model (the last step of a `StandardScaler` + model
    pipeline: the federation standardises with the global scaler instead); `ConfigError` if
    it cannot be averaged."""
    function = trainers.load_trainer(spec.function, base_dir)
    if trainers.fits_itself(function):
        raise errors.ConfigError(
            f"trainer {spec.function!r} fits the model itself; a federated trainer must return "
            "an unfitted linear model with partial_fit (e.g. sklearn.linear_model:SGDClassifier)")
    model = function(**spec.params)
    if isinstance(model, pipeline.Pipeline) and all(
            isinstance(step, preprocessing.StandardScaler) for _, step in model.steps[:-1]):
        model = model.steps[-1][1]
    if not hasattr(model, "partial_fit"):
        raise errors.ConfigError(
            f"trainer {spec.function!r} returned {type(model).__name__}, which has no "
            "`partial_fit`: federated training averages linear models' parameters (SGDClassifier, "
            "SGDRegressor, Perceptron, PassiveAggressiveClassifier, after a StandardScaler)")
    return model
