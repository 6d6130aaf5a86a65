"""``serving.runtime: onnx``: serve a version through onnxruntime when it has a passing export.

`OnnxPreparer` is the `server.live_models.ModelHolder`'s ``prepare`` step. For each version it
loads, it looks for the newest ONNX export of that version that passed its parity check
(`store.transfers`, written by `driftloop models export VERSION --format onnx`), reads the file
from the artifact store (sha256-checked) and serves a `train.onnx_format.OnnxModel` in place of
the scikit-learn model. Without such an export, or when onnxruntime is missing or refuses the
file, the version is served with scikit-learn and the reason is logged once per version.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from driftloop.store import artifacts as artifact_store
from driftloop.store import entities, metadata, transfers

log = logging.getLogger("driftloop.server")


class OnnxPreparer:
    """Swap a loaded version's model for its ONNX export where one passed parity."""

    def __init__(
        self, store: metadata.MetadataStore, artifacts: artifact_store.ArtifactStore,
        pipeline: str,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.pipeline = pipeline
        self._transfers = transfers.TransferStore(store)
        self._reasons: dict[int, str] = {}

    def __call__(self, version: entities.ModelVersion, model: Any) -> Any:
        """The `OnnxModel` of `version`, or `model` itself (the reason logged)."""
        number = version.version
        export = self._transfers.passing_export(self.pipeline, number, "onnx")
        if export is None or export.artifact_uri is None or export.sha256 is None:
            return self._fallback(number, model, "it has no ONNX export that passed parity "
                                  f"(driftloop models export {number} --format onnx)")
        try:
            from driftloop.train import onnx_format

            data = self.artifacts.get_bytes(export.artifact_uri, export.sha256)
            served = onnx_format.OnnxModel(
                data, list(export.report["columns"]), getattr(model, "classes_", None))
        except Exception as exc:  # onnxruntime missing, file gone or refused: sklearn serves
            return self._fallback(number, model, f"its ONNX export cannot be loaded: {exc}")
        self._reasons.pop(number, None)
        log.info("%s: v%d scores with onnxruntime (export %d, same class on %s of %s rows)",
                 self.pipeline, number, export.id, export.report.get("same_class"),
                 export.report.get("rows"))
        return served

    def exported_since(self, live: Iterable[int]) -> list[int]:
        """Of the `live` versions, those served with scikit-learn for want of a passing export
        that have one now (the server's poller then reloads them, `ModelHolder.reload`)."""
        return [number for number in set(live) if number in self._reasons
                and self._transfers.passing_export(self.pipeline, number, "onnx") is not None]

    def _fallback(self, number: int, model: Any, reason: str) -> Any:
        if self._reasons.get(number) != reason:
            log.warning("%s: v%d scores with scikit-learn, not onnxruntime: %s",
                        self.pipeline, number, reason)
        self._reasons[number] = reason
        return model
