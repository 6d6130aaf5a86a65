"""Model versions to and from MLflow's model directory format, without importing mlflow.

`export_mlflow` writes what ``mlflow.sklearn.save_model`` writes with
``serialization_format="skops"``: the ``MLmodel`` file with the ``sklearn`` and
``python_function`` flavours, the signature of the pipeline's input schema, the version's skops
file (its bytes as stored, sha256-checked), ``requirements.txt``, ``python_env.yaml`` and
``conda.yaml`` pinned from this environment. ``mlflow.pyfunc.load_model`` then loads it (MLflow
3 asks for ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true`` before it loads any model file).

`import_mlflow` registers the ``sklearn`` flavour of an MLflow model directory as the
pipeline's next version, recording where it came from (`store.transfers`). A skops file is
loaded only when every type it lists is in driftloop's allow-list (`store.skops_trust`; the
list the ``MLmodel`` file names is ignored, since whoever wrote the file wrote it too). A
pickled model (``pickle`` or ``cloudpickle``) can run any code when loaded, so it is refused
unless the caller passes ``trust_pickle`` for a directory they know the origin of; the model is
then stored as skops, and must pass the same allow-list to be served.
"""

from __future__ import annotations

import json
import platform
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as dist_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from driftloop.core import errors
from driftloop.data import calendar
from driftloop.store import skops_trust, transfers
from driftloop.validation import schema as schemas

if TYPE_CHECKING:
    from driftloop.controller import project as projects
    from driftloop.store import entities

MODEL_FILE = "model.skops"
PINNED = ("scikit-learn", "numpy", "scipy", "pandas", "skops")
"""The packages an exported model needs to load, pinned to the versions installed here."""


@dataclass(frozen=True)
class Transferred:
    """An export written or an import registered: its record and the version."""

    version: int
    transfer: entities.Transfer


def signature_inputs(project: projects.Project, model: Any) -> list[dict[str, Any]]:
    """MLflow column specs of the model's input columns, from the pipeline's schema (calendar
    columns derived from the timestamp are integers)."""
    stored = project.store.pipelines.get(project.name).schema
    if stored is None:
        raise errors.FormatError(
            f"pipeline {project.name!r} has no schema yet; ingest data first",
            pipeline=project.name)
    schema = schemas.Schema.from_json(stored)
    names = getattr(model, "feature_names_in_", None)
    columns = ([str(n) for n in names] if names is not None
               else calendar.model_columns(project.spec, schema.names))
    known = set(schema.names)
    specs = []
    for name in columns:
        if name not in known:
            specs.append({"type": "long", "name": name, "required": True})
            continue
        column = schema.column(name)
        specs.append({"type": _mlflow_type(column), "name": name,
                      "required": column.missing_rate == 0})
    return specs


def export_mlflow(project: projects.Project, number: int, out: Path, *, actor: str) -> Transferred:
    """Write version `number` as an MLflow model directory `out` (new or empty)."""
    import skops.io

    if out.exists() and any(out.iterdir()):
        raise errors.FormatError(f"{out} exists and is not empty; choose a new folder",
                                     path=str(out))
    version = project.store.versions.get(project.name, number)
    if not version.artifact_uri.endswith(".skops"):
        raise errors.FormatError(
            f"v{number} is not a scikit-learn model stored with skops ({version.artifact_uri}); "
            "only those have an MLflow sklearn flavour", pipeline=project.name, version=number)
    data = project.artifacts.get_bytes(version.artifact_uri, version.sha256)
    model = project.artifacts.get_model(version.artifact_uri, version.sha256)
    trusted = sorted(skops.io.get_untrusted_types(data=data))
    python = platform.python_version()
    mlmodel: dict[str, Any] = {
        "flavors": {
            "python_function": {
                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                "loader_module": "mlflow.sklearn", "model_path": MODEL_FILE,
                "predict_fn": "predict", "python_version": python,
            },
            "sklearn": {
                "code": None, "pickled_model": MODEL_FILE, "serialization_format": "skops",
                "sklearn_version": dist_metadata.version("scikit-learn"),
                "skops_trusted_types": trusted,
            },
        },
        "metadata": {"driftloop_pipeline": project.name, "driftloop_version": number,
                     "sha256": version.sha256},
        "model_size_bytes": len(data),
        "model_uuid": uuid.uuid4().hex,
        "signature": {"inputs": json.dumps(signature_inputs(project, model)),
                      "outputs": _outputs(model), "params": None},
        "utc_time_created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
    }
    requirements = ["mlflow"] + [f"{name}=={dist_metadata.version(name)}" for name in PINNED]
    out.mkdir(parents=True, exist_ok=True)
    (out / MODEL_FILE).write_bytes(data)
    (out / "MLmodel").write_text(yaml.safe_dump(mlmodel, sort_keys=True))
    (out / "requirements.txt").write_text("\n".join(requirements) + "\n")
    (out / "python_env.yaml").write_text(yaml.safe_dump({
        "python": python, "build_dependencies": ["pip", "setuptools", "wheel"],
        "dependencies": ["-r requirements.txt"]}, sort_keys=False))
    (out / "conda.yaml").write_text(yaml.safe_dump({
        "name": "mlflow-env", "channels": ["conda-forge"],
        "dependencies": [f"python={python}", "pip", {"pip": requirements}]}, sort_keys=False))
    transfer = transfers.TransferStore(project.store).add(
        project.name, number, direction="export", format="mlflow", location=str(out.resolve()),
        artifact=None, passed=True,
        report={"files": sorted(p.name for p in out.iterdir()), "skops_trusted_types": trusted},
        actor=actor)
    return Transferred(number, transfer)


def import_mlflow(
    project: projects.Project, folder: Path, *, actor: str, trust_pickle: bool = False,
) -> Transferred:
    """Register the sklearn flavour of the MLflow model directory `folder` as a new version."""
    described = folder / "MLmodel"
    if not described.is_file():
        raise errors.FormatError(f"{folder} is not an MLflow model directory (no MLmodel)",
                                     path=str(folder))
    mlmodel = yaml.safe_load(described.read_text()) or {}
    flavors = mlmodel.get("flavors") or {}
    flavor = flavors.get("sklearn")
    if not isinstance(flavor, dict):
        raise errors.FormatError(
            f"{folder} has no sklearn flavour (it has {', '.join(flavors) or 'none'}); "
            "driftloop imports scikit-learn models only", path=str(folder))
    kind = str(flavor.get("serialization_format", "pickle"))
    path = (folder / str(flavor.get("pickled_model", MODEL_FILE))).resolve()
    if folder.resolve() not in path.parents or not path.is_file():
        raise errors.FormatError(f"{folder}: model file {path.name} missing", path=str(path))
    model = _load(path, kind, project.artifacts.trusted_modules, trust_pickle)
    if not callable(getattr(model, "predict", None)):
        raise errors.FormatError(f"{path} holds a {type(model).__name__}, not a model",
                                     path=str(path))
    _check_columns(project, model)
    artifact = project.artifacts.put_model(model)
    project.artifacts.get_model(artifact.uri, artifact.sha256)  # the allow-list holds for it
    version = project.store.versions.add(
        project.name, run_id=None, artifact_uri=artifact.uri, sha256=artifact.sha256,
        metrics={})
    report = {"serialization_format": kind, "trusted_pickle": kind != "skops",
              "mlflow_version": mlmodel.get("mlflow_version"),
              "model_uuid": mlmodel.get("model_uuid"), "run_id": mlmodel.get("run_id"),
              "sklearn_version": flavor.get("sklearn_version")}
    transfer = transfers.TransferStore(project.store).add(
        project.name, version.version, direction="import", format="mlflow",
        location=str(folder.resolve()), artifact=(artifact.uri, artifact.sha256), passed=True,
        report=report, actor=actor)
    return Transferred(version.version, transfer)


def _load(path: Path, kind: str, modules: tuple[str, ...], trust_pickle: bool) -> Any:
    data = path.read_bytes()
    if kind == "skops":
        import skops.io

        trusted = skops_trust.check(data, skops_trust.DEFAULT_PREFIXES + modules)
        return skops.io.loads(data, trusted=trusted)
    if kind not in ("pickle", "cloudpickle"):
        raise errors.FormatError(f"{path}: unknown serialization format {kind!r}",
                                     path=str(path))
    if not trust_pickle:
        raise errors.IntegrityError(
            f"{path} is a {kind} file: loading it runs whatever code it names, and driftloop "
            "never unpickles files it did not write. If you know where it came from, import it "
            "with --trust-pickle (it is stored as skops and must pass the type allow-list), or "
            "save it in MLflow with serialization_format='skops'", path=str(path))
    import pickle

    with path.open("rb") as handle:  # the caller vouched for this file (trust_pickle)
        return pickle.load(handle)  # cloudpickle writes plain pickle too


def _check_columns(project: projects.Project, model: Any) -> None:
    stored = project.store.pipelines.get(project.name).schema
    names = getattr(model, "feature_names_in_", None)
    if stored is None or names is None:
        return
    schema = schemas.Schema.from_json(stored)
    expected = calendar.model_columns(project.spec, schema.names)
    got = [str(n) for n in names]
    if got != expected:
        raise errors.FormatError(
            f"the model reads columns {got}; pipeline {project.name!r} gives its models "
            f"{expected} (names and order must match)", pipeline=project.name)


def _mlflow_type(column: schemas.ColumnSchema) -> str:
    if column.kind == "boolean":
        return "boolean"
    if column.kind == "categorical":
        return "string"
    if column.kind == "datetime":
        return "datetime"
    if column.dtype.startswith(("int", "uint")):
        return "long"
    return "float" if column.dtype == "float32" else "double"


def _outputs(model: Any) -> str | None:
    classes = getattr(model, "classes_", None)
    kind = getattr(getattr(classes, "dtype", None), "kind", "f" if classes is None else "O")
    dtype = {"i": "int64", "u": "int64", "f": "float64", "b": "bool"}.get(kind)
    if dtype is None:
        return None  # text classes: MLflow infers no tensor type for them either
    return json.dumps([{"type": "tensor", "tensor-spec": {"dtype": dtype, "shape": [-1]}}])
