"""The second wall of the skops loader: a model file whose sha256 matches the database still
loads only if every type it lists lies in an allowed module (`store.skops_trust`)."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skops.io
from sklearn.preprocessing import FunctionTransformer
from sklearn.tree import DecisionTreeClassifier

from driftloop.controller import project as projects
from driftloop.core import config, errors
from driftloop.store import artifacts


def double(values: np.ndarray) -> np.ndarray:
    """A trainer-module function a model may carry (a FunctionTransformer's `func`)."""
    return values * 2


def retyped(data: bytes, module: str, name: str) -> bytes:
    """The skops file `data` with its first TypeNode renamed to `module`.`name`: a file crafted
    by someone who can write the artifact folder (and the hash in the database)."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    schema = json.loads(archive.read("schema.json"))
    node = schema["content"]["content"]["func"]
    node["__module__"], node["__class__"] = module, name
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as crafted:
        crafted.writestr("schema.json", json.dumps(schema))
    return out.getvalue()


@pytest.fixture
def store(tmp_path: Path) -> artifacts.ArtifactStore:
    return artifacts.ArtifactStore(str(tmp_path / "artifacts"))


def test_an_os_system_node_is_refused_although_its_hash_matches(
    store: artifacts.ArtifactStore,
) -> None:
    crafted = store.put_bytes(skops.io.dumps(FunctionTransformer(func=os.system)), ".skops")
    with pytest.raises(errors.IntegrityError, match=r"posix\.system: not in the allowed"):
        store.get_model(crafted.uri, crafted.sha256)  # the sha256 is the recorded one


def test_names_that_walk_out_of_an_allowed_module_are_refused(
    store: artifacts.ArtifactStore,
) -> None:
    plain = skops.io.dumps(FunctionTransformer(func=np.log1p))
    # sklearn.datasets._base imports os: an allowed prefix, but the object is the os module
    crafted = store.put_bytes(retyped(plain, "sklearn.datasets._base", "os"), ".skops")
    with pytest.raises(errors.IntegrityError, match=r"sklearn\.datasets\._base\.os"):
        store.get_model(crafted.uri, crafted.sha256)


def test_trainer_modules_are_allowed_only_when_declared(tmp_path: Path) -> None:
    data = skops.io.dumps(FunctionTransformer(func=double))
    closed = artifacts.ArtifactStore(str(tmp_path / "a"))
    stored = closed.put_bytes(data, ".skops")
    with pytest.raises(errors.IntegrityError, match=r"test_skops_trust\.double"):
        closed.get_model(stored.uri, stored.sha256)
    opened = artifacts.ArtifactStore(str(tmp_path / "a"), trusted_modules=["test_skops_trust"])
    model = opened.get_model(stored.uri, stored.sha256)
    assert model.transform(np.ones((1, 2))).tolist() == [[2.0, 2.0]]


def test_models_of_the_allowed_libraries_load(store: artifacts.ArtifactStore) -> None:
    x = np.random.default_rng(0).random((50, 3))
    model = DecisionTreeClassifier(max_depth=2).fit(x, x[:, 0] > 0.5)
    stored = store.put_model(model)
    assert (store.get_model(stored.uri, stored.sha256).predict(x) == model.predict(x)).all()


def test_the_project_trusts_its_trainer_modules_and_what_the_spec_declares() -> None:
    spec = config.parse_spec("""
name: p
store: sqlite://
source: {kind: files, path: "data/*.csv"}
target: y
trainer:
  function: train:make_model
  trusted_modules: [lightgbm]
  search:
    trials: 2
    candidates:
      forest: {function: "families.trees:forest"}
""")
    assert projects.trusted_modules(spec) == ["train", "families.trees", "lightgbm"]
