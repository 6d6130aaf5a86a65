"""The live models of a server process and their hot swap.

`ModelHolder` keeps one `LiveModel` per watched alias (``champion``, and the test alias of the
rollout strategy: ``shadow``, ``canary`` or ``challenger``). The server's poller calls `refresh`: it
reads where the aliases point (one query) and, for an alias that moved, loads the new version
(sha256-verified by `ArtifactStore.get_model`) on the poller's thread, then replaces the whole
mapping with one reference assignment. A request takes `get(alias)` once and uses that object
to the end, so in-flight requests finish on the model they started with and no request ever
sees a half-loaded model. Recently served versions stay loaded, so a rollback is instant.

A version that fails to load (missing file, hash mismatch) is not swapped in: the alias keeps
serving what it served, the failure is counted and logged, and the next poll tries again.
"""

from __future__ import annotations

import collections
import functools
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from driftloop.core import clock as clocks
from driftloop.store import artifacts as artifact_store
from driftloop.store import entities, metadata

log = logging.getLogger("driftloop.server")

ARGMAX_CLASSIFIERS = frozenset({
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._forest.ExtraTreesClassifier",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.ExtraTreeClassifier",
    "sklearn.linear_model._logistic.LogisticRegression",
})
"""Classifiers whose `predict` is the class of the largest `predict_proba` wherever that
maximum is unique: trees and forests take the argmax of the probabilities themselves; gradient
boosting and logistic regression threshold or take the argmax of raw scores that the
probabilities are a monotone function of (so only an exact tie can differ). Checked against
scikit-learn's source; exact types only, since a subclass may predict otherwise."""


@dataclass(frozen=True)
class LiveModel:
    """A loaded model version serving under `alias`."""

    alias: str
    version: entities.ModelVersion
    model: Any
    loaded_at: datetime

    @property
    def number(self) -> int:
        return self.version.version

    @functools.cached_property
    def array_features(self) -> list[str] | None:
        """The columns a plain scikit-learn estimator was fit on, in order; such a model may
        read float features as an array instead of a frame (the same values in the same order,
        without scikit-learn's per-call DataFrame checks: half of a single-record predict).
        None for models fit without column names and for meta-estimators (pipelines, column
        transformers, ensembles of estimators), which may select columns by name."""
        model = self.model
        names = getattr(model, "feature_names_in_", None)
        if names is None or not hasattr(model, "get_params"):
            return None
        for value in model.get_params(deep=False).values():
            items = value if isinstance(value, list | tuple) else [value]
            for item in items:
                parts = item if isinstance(item, tuple) else (item,)
                if any(hasattr(part, "fit") for part in parts):
                    return None
        return [str(name) for name in names]

    @functools.cached_property
    def argmax_classes(self) -> Any:
        """The classes (`classes_`, a numpy array) when this model's `predict` follows from its
        `predict_proba` (`ARGMAX_CLASSIFIERS`, alone or last in a Pipeline), else None. The
        server then computes the probabilities once and takes the predictions from them,
        instead of walking every tree twice."""
        model = self.model
        last = model.steps[-1][1] if type(model).__name__ == "Pipeline" else model
        kind = f"{type(last).__module__}.{type(last).__qualname__}"
        classes = getattr(model, "classes_", None)
        if kind not in ARGMAX_CLASSIFIERS or classes is None or getattr(classes, "ndim", 0) != 1:
            return None
        return classes

    @property
    def runtime(self) -> str:
        """What scores: ``onnx`` (onnxruntime, `train.onnx_format.OnnxModel`) or ``sklearn``."""
        return str(getattr(self.model, "runtime", "sklearn"))

    @property
    def classes(self) -> list[Any] | None:
        """The model's classes as plain values when it gives probabilities, else None."""
        classes = getattr(self.model, "classes_", None)
        if classes is None or not hasattr(self.model, "predict_proba"):
            return None
        return [c.item() if hasattr(c, "item") else c for c in classes]


Prepare = Callable[[entities.ModelVersion, Any], Any]
"""Turns a loaded version's model into what serves it (`server.onnx_runtime.OnnxPreparer`)."""

SwapListener = Callable[[str, LiveModel | None, LiveModel | None], None]
"""Called as (alias, old, new) after an alias was swapped (new None: the alias was cleared)."""


class ModelHolder:
    """The models a server process answers with, one per watched alias."""

    def __init__(
        self,
        store: metadata.MetadataStore,
        artifacts: artifact_store.ArtifactStore,
        pipeline: str,
        *,
        aliases: Sequence[str] = ("champion",),
        keep: int = 3,
        clock: clocks.Clock | None = None,
        on_swap: SwapListener | None = None,
        on_load_error: Callable[[str, int, Exception], None] | None = None,
        prepare: Prepare | None = None,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.pipeline = pipeline
        self.aliases = tuple(aliases)
        self.keep = keep
        self.clock = clock or store.clock
        self.on_swap = on_swap
        self.on_load_error = on_load_error
        self.prepare = prepare
        self._live: dict[str, LiveModel] = {}
        self._loaded: collections.OrderedDict[int, tuple[entities.ModelVersion, Any]] = (
            collections.OrderedDict())
        self._failed: dict[int, str] = {}
        self._lock = threading.Lock()

    def get(self, alias: str = "champion") -> LiveModel | None:
        """The model serving `alias` now, or None (read once per request)."""
        return self._live.get(alias)

    def versions(self) -> dict[str, int]:
        """The version each watched alias serves."""
        return {alias: live.number for alias, live in self._live.items()}

    def runtimes(self) -> dict[str, str]:
        """What scores for each watched alias (`LiveModel.runtime`)."""
        return {alias: live.runtime for alias, live in self._live.items()}

    def refresh(self) -> list[str]:
        """Follow the aliases to their current versions; returns the aliases swapped."""
        with self._lock:  # the poller and an admin request may refresh at the same time
            wanted = self.store.aliases(self.pipeline)
            live = dict(self._live)
            swapped: list[tuple[str, LiveModel | None, LiveModel | None]] = []
            for alias in self.aliases:
                number, old = wanted.get(alias), live.get(alias)
                if old is not None and old.number == number:
                    continue
                if number is None:
                    if old is not None:  # cleared; an alias never set is not a swap
                        del live[alias]
                        swapped.append((alias, old, None))
                    continue
                loaded = self._load(alias, number)
                if loaded is None:
                    continue
                live[alias] = LiveModel(alias, loaded[0], loaded[1], self.clock.now())
                swapped.append((alias, old, live[alias]))
            self._live = live  # one reference assignment: requests see old or new, never half
        for alias, old, new in swapped:
            log.info("%s: %s now serves %s (was %s)", self.pipeline, alias,
                     new and f"v{new.number}", old and f"v{old.number}")
            if self.on_swap is not None:
                self.on_swap(alias, old, new)
        return [alias for alias, _, _ in swapped]

    def reload(self, number: int) -> list[str]:
        """Load version `number` again (its `prepare` step may now give something else, such
        as an ONNX export made since) and swap it in wherever it serves; returns those aliases."""
        with self._lock:
            self._loaded.pop(number, None)
            live = dict(self._live)
            swapped = []
            for alias, old in live.items():
                if old.number != number:
                    continue
                loaded = self._load(alias, number)
                if loaded is not None:
                    live[alias] = LiveModel(alias, loaded[0], loaded[1], self.clock.now())
                    swapped.append((alias, old, live[alias]))
            self._live = live
        for alias, old, new in swapped:
            if self.on_swap is not None:
                self.on_swap(alias, old, new)
        return [alias for alias, _, _ in swapped]

    def adopt(self, alias: str, version: entities.ModelVersion, model: Any) -> None:
        """Serve `model` as `alias` at `version` from now on: an online learner that keeps
        learning in this process. The cache of loaded versions keeps the stored snapshot, so
        a later move of the alias loads what the registry holds."""
        with self._lock:
            live = dict(self._live)
            old = live.get(alias)
            live[alias] = LiveModel(alias, version, model, self.clock.now())
            self._live = live
        if self.on_swap is not None and (old is None or old.number != version.version):
            self.on_swap(alias, old, live[alias])

    def _load(self, alias: str, number: int) -> tuple[entities.ModelVersion, Any] | None:
        if number in self._loaded:
            self._loaded.move_to_end(number)
            return self._loaded[number]
        try:
            version = self.store.get_model_version(self.pipeline, number)
            model = self.artifacts.get_model(version.artifact_uri, version.sha256)
            if self.prepare is not None:
                model = self.prepare(version, model)
        except Exception as exc:  # keep serving the old model; retry on the next poll
            if self._failed.get(number) != str(exc):
                log.error("%s: cannot load v%d for %s: %s", self.pipeline, number, alias, exc)
            self._failed[number] = str(exc)
            if self.on_load_error is not None:
                self.on_load_error(alias, number, exc)
            return None
        self._failed.pop(number, None)
        self._loaded[number] = (version, model)
        in_use = {live.number for live in self._live.values()} | {number}
        for old in list(self._loaded):
            if len(self._loaded) <= self.keep:
                break
            if old not in in_use:
                del self._loaded[old]
        return version, model
