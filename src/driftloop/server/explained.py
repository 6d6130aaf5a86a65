"""Per-prediction explanations: `POST /v1/predict?explain=true` answers each record with every
feature's SHAP contribution (`train.explain`).

An explainer is built the first time a version is asked to explain, and kept while the server
runs (a linear model's background, the feature means of its held-out rows, is read from the
version's stored explanation). A model with no explainer is remembered as such, and every
explained request to it is a 400 naming the reason; unexplained requests never touch this.
"""

from __future__ import annotations

import threading
from typing import Any

from driftloop.controller import project as projects
from driftloop.train import explain

Unexplainable = explain.Unexplainable


class Explainers:
    """The SHAP explainer of each served version, or why it has none."""

    def __init__(self, project: projects.Project) -> None:
        self.project = project
        self._built: dict[int, Any] = {}
        self._lock = threading.Lock()

    def contributions(self, model: Any, version: int, frame: Any) -> list[dict[str, float]]:
        """Each row's SHAP values by feature; `explain.Unexplainable` if the model has none."""
        explainer = self._explainer(model, version)
        if isinstance(explainer, explain.Unexplainable):
            raise explainer
        values = explain.contributions(explainer, frame)
        names = [str(c) for c in frame.columns]
        return [dict(zip(names, row, strict=True)) for row in values.tolist()]

    def _explainer(self, model: Any, version: int) -> Any:
        with self._lock:
            if version not in self._built:
                self._built[version] = self._build(model, version)
            return self._built[version]

    def _build(self, model: Any, version: int) -> Any:
        try:
            background = None
            if explain.explainer_kind(model) == "linear":
                stored = self.project.store.findings.for_version(self.project.name, "explanation",
                                                            version)
                background = stored.report.get("background") if stored is not None else None
            return explain.build_explainer(model, background)
        except explain.Unexplainable as exc:
            return exc
