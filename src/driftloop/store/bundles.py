"""A model bundle on disk: one model version in a folder that serves without the metadata store.

`driftloop package` writes it (`deploy.package`); `driftloop serve --bundle` reads it here.
The folder holds::

    bundle.json         the manifest: pipeline, version, its metadata, and the sha256 of
                        every other file (the wheelhouse excepted: requirements.lock holds
                        the sha256 of each wheel, which pip checks as it installs them)
    model.skops         the model artifact (model.pickle for a river online learner)
    schema.json         the pipeline's input schema
    spec.json           the pipeline spec, without store, artifact or source settings
    lineage.json        where the version came from: batches, run, decision, gate, moves
    requirements.lock   exact versions of what the model needs to load (and serve)
    Dockerfile          the image that serves it
    code/               the project's own modules that the model's types live in, if any
    wheels/             with ``--wheels``: every requirement as a wheel

`open_bundle` checks every listed file against its sha256 before anything is read, so a
bundle changed after packaging (or cut short in a copy) is refused with the file named; the
model then loads through `ArtifactStore.get_model`, which checks the hash once more and allows
only the types of `store.skops_trust`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from driftloop.core import errors, types
from driftloop.store import entities

MANIFEST = "bundle.json"
FORMAT = 1
"""The manifest's format number; `open_bundle` refuses any other."""
UNHASHED = ("wheels",)
"""Folders of a bundle that the manifest does not list (the wheels' hashes are in the lock)."""


@dataclass(frozen=True)
class Bundle:
    """An opened, verified bundle."""

    path: Path
    manifest: types.JSON
    spec: types.JSON
    schema: types.JSON

    @property
    def pipeline(self) -> str:
        return str(self.manifest["pipeline"])

    @property
    def version(self) -> entities.ModelVersion:
        """The packaged version as the store knew it; its artifact is the bundle's model file."""
        found = self.manifest["version"]
        return entities.ModelVersion(
            id=int(found["id"]), pipeline=self.pipeline, version=int(found["version"]),
            run_id=found.get("run_id"), artifact_uri=str(self.manifest["model"]["path"]),
            sha256=str(self.manifest["model"]["sha256"]), metrics=found.get("metrics", {}),
            profile_id=None, gate_report=found.get("gate_report"),
            created_at=datetime.fromisoformat(found["created_at"]),
            batch_ids=tuple(found.get("batch_ids", ())))

    @property
    def trusted_modules(self) -> list[str]:
        """Modules besides scikit-learn, numpy and scipy whose types the model may contain."""
        return [str(name) for name in self.manifest.get("trusted_modules", [])]

    def load_model(self) -> Any:
        """The model, sha256-checked and with only allowed types built (`store.artifacts`).
        The bundle's ``code/`` folder (the project's own modules) is importable first."""
        import sys

        from driftloop.store import artifacts

        code = self.path / "code"
        if code.is_dir() and str(code) not in sys.path:
            sys.path.insert(0, str(code))
        store = artifacts.ArtifactStore(str(self.path), trusted_modules=self.trusted_modules)
        version = self.version
        return store.get_model(version.artifact_uri, version.sha256)


def sha256_of(path: Path) -> str:
    """The sha256 (hex) of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def listed_files(folder: Path) -> dict[str, str]:
    """Every file under `folder` that a manifest lists, as relative POSIX path -> sha256."""
    found: dict[str, str] = {}
    for item in sorted(folder.rglob("*")):
        relative = item.relative_to(folder)
        if not item.is_file() or relative.as_posix() == MANIFEST:
            continue
        if relative.parts[0] in UNHASHED or "__pycache__" in relative.parts:
            continue
        found[relative.as_posix()] = sha256_of(item)
    return found


def open_bundle(path: str | Path) -> Bundle:
    """Open the bundle at `path` after checking every file against the manifest.

    Raises `errors.NotFoundError` when `path` holds no bundle and `errors.IntegrityError` when
    a file is missing, changed or added after packaging, each named.
    """
    folder = Path(path)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise errors.NotFoundError(
            f"{folder} is not a driftloop bundle: it has no {MANIFEST}; make one with "
            "`driftloop package VERSION --out DIR`", path=str(folder))
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise errors.IntegrityError(
            f"the bundle manifest {manifest_path} is not valid JSON ({exc}); package the "
            "version again", path=str(folder)) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise errors.IntegrityError(
            f"the bundle {folder} has manifest format {found!r}; this driftloop reads format "
            f"{FORMAT}. Package the version again with this driftloop", path=str(folder))
    expected: dict[str, str] = manifest.get("files", {})
    actual = listed_files(folder)
    problems = [f"{name}: missing" for name in sorted(set(expected) - set(actual))]
    problems += [f"{name}: not part of the packaged bundle"
                 for name in sorted(set(actual) - set(expected))]
    problems += [f"{name}: sha256 {actual[name]} differs from the packaged {sha}"
                 for name, sha in sorted(expected.items())
                 if name in actual and actual[name] != sha]
    if problems:
        raise errors.IntegrityError(
            f"refusing the bundle {folder}: it changed after packaging ({'; '.join(problems)}). "
            "Package the version again", path=str(folder))
    spec = json.loads((folder / "spec.json").read_text())
    schema = json.loads((folder / "schema.json").read_text())
    return Bundle(path=folder.resolve(), manifest=manifest, spec=spec, schema=schema)

