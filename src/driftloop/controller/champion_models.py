"""The models a controller scores and gates with: the champion's version record and model, the
models of earlier versions (late labels are scored by the model that was live when their rows
arrived) and the champion's confidence calibrator, each loaded once per process and checked
against its sha256.

A champion whose file is missing, changed or unloadable is not an error that stops the loop:
it is recorded once as a health problem (a ``health`` decision, `UNUSABLE`) and the controller
goes on as if there were no champion, so the policy retrains and the new model replaces it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from driftloop.controller import project as projects
from driftloop.core import errors
from driftloop.store import entities

if TYPE_CHECKING:
    from driftloop.train import calibration

UNUSABLE = "champion_unusable"
"""The `problem` of a ``health`` decision: the champion's model file cannot be loaded."""


class Models:
    """One pipeline's models, loaded on first need."""

    def __init__(self, project: projects.Project) -> None:
        self._project = project
        self._champion: entities.ModelVersion | None = None
        self._live_model: tuple[int, Any] | None = None  # the champion's model, once loaded
        self._unusable: dict[int, str] = {}  # versions whose model cannot be loaded: why
        self._checked: set[int] = set()  # versions whose file matched its sha256
        self._models: dict[int, Any] = {}  # earlier versions, for late labels
        self._calibrators: dict[int, calibration.Calibrator] = {}  # the champion's

    def champion(self) -> entities.ModelVersion | None:
        """The champion's version record (versions never change); its model is `live_model`'s."""
        store, name = self._project.store, self._project.name
        number = store.aliases.get(name, "champion")
        if number is None:
            return None
        if self._champion is None or self._champion.version != number:
            self._champion = store.versions.get(name, number)
        return self._champion

    def usable(self, version: entities.ModelVersion | None) -> entities.ModelVersion | None:
        """`version` unless its model file is missing or changed (checked against its sha256
        once per process, without loading it) or failed to load: then None, and the problem is
        recorded (`report_unusable`)."""
        if version is None:
            return None
        if version.version not in self._checked and version.version not in self._unusable:
            try:
                self._project.artifacts.get_bytes(version.artifact_uri, version.sha256)
                self._checked.add(version.version)
            except errors.DriftloopError as exc:
                self.report_unusable(version, exc)
        return None if version.version in self._unusable else version

    def live_model(self, version: entities.ModelVersion) -> Any | None:
        """The champion's model, loaded on first need (hash-verified); None if it cannot be
        loaded (recorded as a health problem)."""
        if self._live_model is None or self._live_model[0] != version.version:
            if version.version in self._unusable:
                return None
            try:
                model = self._project.artifacts.get_model(version.artifact_uri, version.sha256)
            except errors.DriftloopError as exc:
                self.report_unusable(version, exc)
                return None
            self._live_model = (version.version, model)
        return self._live_model[1]

    def report_unusable(self, version: entities.ModelVersion, exc: Exception) -> None:
        """Record once (per champion version, across processes) that the champion's model
        cannot be loaded, as a ``health`` decision that `driftloop status` can show."""
        self._unusable[version.version] = str(exc)
        store, name = self._project.store, self._project.name
        last = store.decisions.list(name, kind="health", limit=1)
        seen = last[0].evidence if last else {}
        if seen.get("problem") == UNUSABLE and seen.get("version") == version.version:
            return
        store.decisions.add(
            name,
            kind="health",
            fired=True,
            evidence={
                "problem": UNUSABLE,
                "version": version.version,
                "error": str(exc),
                "action": "retraining as if there were no champion",
            },
        )

    def calibrator(self, version: entities.ModelVersion) -> calibration.Calibrator | None:
        """The version's confidence calibrator, read once (hash-verified); None if it has none."""
        if version.calibration_uri is None or version.calibration_sha256 is None:
            return None
        if version.version not in self._calibrators:
            document = self._project.artifacts.get_json(
                version.calibration_uri, version.calibration_sha256
            )
            from driftloop.train import calibration

            self._calibrators = {version.version: calibration.Calibrator.from_json(document)}
        return self._calibrators[version.version]

    def model_of(self, number: int) -> Any:
        """Any version's model, loaded once (hash-verified)."""
        if self._live_model is not None and self._live_model[0] == number:
            return self._live_model[1]
        if number not in self._models:
            found = self._project.store.versions.get(self._project.name, number)
            self._models[number] = self._project.artifacts.get_model(
                found.artifact_uri, found.sha256
            )
        return self._models[number]

    def unusable_champion(self, live: entities.ModelVersion | None) -> int | None:
        """The champion's version number if the champion exists but cannot be used."""
        champion = self._champion
        if live is None and champion is not None and champion.version in self._unusable:
            return champion.version
        return None

    def installed(self, version: entities.ModelVersion, model: Any) -> None:
        """`version` just became the champion with `model`, the bytes just stored: no need
        to read or check them again."""
        self._champion = version
        self._live_model = (version.version, model)
        self._checked.add(version.version)
