"""`package`: write one model version as a bundle folder (layout: `store.bundles`).

The model file is read back through the artifact store (sha256-checked, and loaded once with
the allowed types, so a bundle never carries a model that would not load). The spec travels
without its ``store``, ``artifacts`` and ``source`` sections — those are where credentials
live, and a bundle reads no data — so a bundle can be handed to anyone who may run the model.

With `wheels`, every pinned requirement is fetched as a wheel into ``wheels/`` by pip (with
pip's own configuration: index, mirrors, certificates) and driftloop itself is built from its
source when it runs from a source tree, so the image builds with no package index.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from packaging import utils

import driftloop
from driftloop.controller import project as projects
from driftloop.core import errors, types
from driftloop.deploy import dockerfile, requirements
from driftloop.store import artifacts as artifact_store
from driftloop.store import bundles, lineage, metadata

NO_SOURCE = {"kind": "files", "path": "(not packaged: a bundle reads no data)"}


@dataclass(frozen=True)
class Packaged:
    """What `package` wrote: the folder, the version, its size in bytes and the pins."""

    path: Path
    version: int
    size: int
    pins: tuple[str, ...]
    wheels: int


def resolve(store: metadata.MetadataStore, pipeline: str, ref: str) -> int:
    """The version number `ref` names: a number, or an alias that points at one."""
    if ref.isdigit():
        return int(ref)
    number = store.aliases.get(pipeline, ref)
    if number is None:
        raise errors.NotFoundError(
            f"{ref!r} is neither a version number nor an alias of {pipeline} that points at a "
            f"version; aliases now: {', '.join(sorted(store.aliases.all(pipeline))) or 'none'}",
            pipeline=pipeline)
    return number


def package(project: projects.Project, ref: str, out: Path, *, wheels: bool = False) -> Packaged:
    """Write version (or alias) `ref` of the project's pipeline as a bundle in `out`, which
    must be empty or not exist yet."""
    store, name = project.store, project.name
    number = resolve(store, name, ref)
    traced = lineage.of_version(store, name, number)
    version = traced.version
    schema = store.pipelines.get(name).schema
    if schema is None:
        raise errors.NotFoundError(f"{name} has no input schema yet (no accepted data)",
                                   pipeline=name)
    data = project.artifacts.get_bytes(version.artifact_uri, version.sha256)
    project.artifacts.get_model(version.artifact_uri, version.sha256)  # it loads, or refuse now
    pickled = version.artifact_uri.endswith(artifact_store.PICKLE_SUFFIX)
    modules = requirements.model_modules(data, pickled)
    if out.exists() and any(out.iterdir()):
        raise errors.ConfigError(f"{out} is not empty; give a new folder to --out", path=str(out))
    out.mkdir(parents=True, exist_ok=True)
    model_file = "model" + (artifact_store.PICKLE_SUFFIX if pickled else ".skops")
    (out / model_file).write_bytes(data)
    local = requirements.local_modules(modules)
    for module in local:
        _copy_module(project.base_dir, module, out / "code")
    roots = ["driftloop", *requirements.model_distributions(modules)]
    calendar = project.spec.calendar
    if calendar is not None and calendar.country and "holiday" in calendar.features:
        roots.append("holidays")  # the server derives the holiday flag as training did
    pins = requirements.lock(roots)
    lines = pins
    if wheels:  # pip checks every wheel against its pinned sha256 when the image is built
        hashes = fetch_wheels(pins, out / "wheels")
        lines = [f"{pin} --hash=sha256:{hashes[pin.split('==')[0]]}" for pin in pins]
    spec = project.spec.model_dump(mode="json")
    for section in ("store", "artifacts"):
        spec.pop(section, None)
    spec["source"] = NO_SOURCE
    _write_json(out / "spec.json", spec)
    _write_json(out / "schema.json", schema)
    _write_json(out / "lineage.json", summary(traced))
    (out / "requirements.lock").write_text("\n".join(lines) + "\n")
    entries = ["bundle.json", model_file, "schema.json", "spec.json", "lineage.json",
               "requirements.lock", "Dockerfile"] + (["code/"] if local else [])
    (out / "Dockerfile").write_text(dockerfile.render(entries, wheels=wheels))
    manifest = {
        "format": bundles.FORMAT,
        "pipeline": name,
        "packaged_at": store.clock.now().isoformat(),
        "packaged_by": projects.whoami(),
        "driftloop": driftloop.__version__,
        "python": ".".join(map(str, sys.version_info[:3])),
        "aliases": list(traced.aliases),
        "version": _version_json(version),
        "model": {"path": model_file, "sha256": version.sha256, "size": len(data),
                  "format": "pickle" if pickled else "skops"},
        "trusted_modules": projects.trusted_modules(project.spec),
        "files": bundles.listed_files(out),
    }
    _write_json(out / bundles.MANIFEST, manifest)
    size = sum(item.stat().st_size for item in out.rglob("*") if item.is_file())
    return Packaged(out, number, size, tuple(pins), len(hashes) if wheels else 0)


def summary(traced: lineage.Lineage) -> types.JSON:
    """The lineage of a version as JSON: run, decision, batches, gate report, alias moves."""
    run, decision = traced.run, traced.decision
    return {
        "version": traced.version.version,
        "reason": traced.reason,
        "aliases": list(traced.aliases),
        "run": None if run is None else {
            "id": run.id, "trainer": run.trainer, "params": run.params, "status": run.status,
            "trainer_sha256": run.trainer_sha256, "compute_seconds": run.compute_seconds,
            "started_at": _when(run.started_at), "finished_at": _when(run.finished_at)},
        "decision": None if decision is None else {
            "id": decision.id, "kind": decision.kind, "at": _when(decision.at),
            "evidence": decision.evidence},
        "batches": [
            {"id": b.id, "source": b.source_uri, "fingerprint": b.fingerprint, "rows": b.rows,
             "start": _when(b.start), "end": _when(b.end), "sha256": b.data_sha256}
            for b in traced.batches],
        "gate": traced.gate,
        "moves": [
            {"alias": m.alias, "version": m.version, "previous": m.previous, "actor": m.actor,
             "action": m.action, "reason": m.reason, "at": _when(m.at)} for m in traced.moves],
    }


def fetch_wheels(pins: list[str], folder: Path) -> dict[str, str]:
    """Put a wheel of every pin into `folder` (pip download; driftloop built from its source
    tree when it runs from one); returns each pinned name's wheel sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    others = [pin for pin in pins if not pin.startswith("driftloop==")]
    source = Path(driftloop.__file__).resolve().parents[2]
    if (source / "pyproject.toml").is_file() and (source / "src" / "driftloop").is_dir():
        with tempfile.TemporaryDirectory() as scratch:  # build outside the source tree
            tree = Path(scratch) / "driftloop"
            tree.mkdir()
            for item in ("pyproject.toml", "README.md", "LICENSE"):
                if (source / item).is_file():
                    shutil.copy2(source / item, tree / item)
            shutil.copytree(source / "src", tree / "src",
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            _pip("wheel", "--no-deps", "--wheel-dir", str(folder), str(tree))
    else:
        others.append(f"driftloop=={driftloop.__version__}")
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as listed:
        listed.write("\n".join(others) + "\n")
        listed.flush()
        _pip("download", "--only-binary=:all:", "--no-deps", "--dest", str(folder),
             "--requirement", listed.name)
    hashes = {str(utils.parse_wheel_filename(wheel.name)[0]): bundles.sha256_of(wheel)
              for wheel in folder.glob("*.whl")}
    missing = [pin for pin in pins if pin.split("==")[0] not in hashes]
    if missing:
        raise errors.DriftloopError(f"pip fetched no wheel for {', '.join(missing)}; they "
                                    "have no wheel for this platform, so --wheels cannot work")
    return hashes


def _pip(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *args, "--quiet"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise errors.DriftloopError(
            f"pip {args[0]} failed while fetching wheels: {' / '.join(tail)}; check pip's "
            "configuration (index, proxy) and try again")


def _copy_module(base_dir: Path, module: str, code: Path) -> None:
    """Copy the project's module `module` (a file or a package folder) into `code`."""
    code.mkdir(exist_ok=True)
    if (base_dir / module).is_dir():
        shutil.copytree(base_dir / module, code / module,
                        ignore=shutil.ignore_patterns("__pycache__"))
    elif (base_dir / f"{module}.py").is_file():
        shutil.copy2(base_dir / f"{module}.py", code / f"{module}.py")
    else:
        raise errors.ConfigError(
            f"the model contains types from the module {module!r}, which is neither installed "
            f"nor a file of the project folder {base_dir}; install it or move it there")


def _version_json(version: Any) -> types.JSON:
    return {"id": version.id, "version": version.version, "run_id": version.run_id,
            "metrics": version.metrics, "gate_report": version.gate_report,
            "created_at": _when(version.created_at), "batch_ids": list(version.batch_ids),
            "artifact_sha256": version.sha256}


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _write_json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
