"""The content-addressed artifact store: round trips, dedupe, fsspec URLs, tamper refusal."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from driftloop.core import errors
from driftloop.store import artifacts

ELEC2 = Path("/work/shared/data/elec2.csv")


@pytest.fixture
def store(tmp_path: Path) -> artifacts.ArtifactStore:
    return artifacts.ArtifactStore(str(tmp_path / "artifacts"))


def _local(uri: str) -> Path:
    assert uri.startswith("file://")
    return Path(uri.removeprefix("file://"))


@pytest.fixture(scope="module")
def elec2() -> pd.DataFrame:
    if ELEC2.exists():
        return pd.read_csv(ELEC2, nrows=3000)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.random((3000, 6)), columns=[f"f{i}" for i in range(6)])
    frame["class"] = (frame["f1"] > 0.5).astype(int)
    return frame


def test_bytes_round_trip_and_layout(store: artifacts.ArtifactStore, tmp_path: Path) -> None:
    data = b"some model bytes"
    artifact = store.put_bytes(data, suffix=".bin")
    sha = hashlib.sha256(data).hexdigest()
    assert artifact == artifacts.Artifact(uri=artifact.uri, sha256=sha, size=len(data))
    assert _local(artifact.uri) == tmp_path / "artifacts" / sha[:2] / f"{sha}.bin"
    assert store.get_bytes(artifact.uri, sha) == data


def test_put_is_idempotent(store: artifacts.ArtifactStore, tmp_path: Path) -> None:
    first = store.put_bytes(b"abc")
    path = _local(first.uri)
    mtime = path.stat().st_mtime_ns
    second = store.put_bytes(b"abc")
    assert second == first
    assert path.stat().st_mtime_ns == mtime  # not rewritten
    files = [p for p in (tmp_path / "artifacts").rglob("*") if p.is_file()]
    assert files == [path]


def test_frame_round_trip(store: artifacts.ArtifactStore, elec2: pd.DataFrame) -> None:
    frame = elec2.assign(label=np.where(elec2["class"] == 1, "UP", "DOWN"))
    artifact = store.put_frame(frame)
    assert artifact.uri.endswith(".parquet")
    back = store.get_frame(artifact.uri, artifact.sha256)
    pd.testing.assert_frame_equal(back, frame)
    assert store.put_frame(frame.copy()) == artifact


def test_model_round_trip_predictions_equal(
    store: artifacts.ArtifactStore, elec2: pd.DataFrame
) -> None:
    X, y = elec2.drop(columns="class"), elec2["class"]
    model = make_pipeline(StandardScaler(), HistGradientBoostingClassifier(max_iter=30))
    model.fit(X, y)
    artifact = store.put_model(model)
    assert artifact.uri.endswith(".skops")
    loaded = store.get_model(artifact.uri, artifact.sha256)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))


def test_memory_url() -> None:
    store = artifacts.ArtifactStore(f"memory://driftloop-test-{uuid.uuid4().hex}")
    artifact = store.put_bytes(b"in memory", suffix=".txt")
    assert artifact.uri.startswith("memory://")
    assert store.get_bytes(artifact.uri, artifact.sha256) == b"in memory"
    frame = pd.DataFrame({"a": [1.5, 2.5], "b": ["x", "y"]})
    stored = store.put_frame(frame)
    pd.testing.assert_frame_equal(store.get_frame(stored.uri, stored.sha256), frame)


def test_file_url(tmp_path: Path) -> None:
    store = artifacts.ArtifactStore(f"file://{tmp_path}/arts")
    artifact = store.put_bytes(b"x")
    assert (tmp_path / "arts" / artifact.sha256[:2] / artifact.sha256).exists()
    assert store.get_bytes(artifact.uri, artifact.sha256) == b"x"


def test_tampered_file_is_refused(store: artifacts.ArtifactStore) -> None:
    artifact = store.put_bytes(b"precious bytes")
    path = _local(artifact.uri)
    data = bytearray(path.read_bytes())
    data[3] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(errors.IntegrityError) as caught:
        store.get_bytes(artifact.uri, artifact.sha256)
    message = str(caught.value)
    assert artifact.uri in message
    assert artifact.sha256 in message
    assert hashlib.sha256(bytes(data)).hexdigest() in message
    assert "restore it or retrain" in message


def test_tampered_model_is_refused_before_deserialisation(
    store: artifacts.ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = StandardScaler().fit(np.arange(10.0).reshape(-1, 2))
    artifact = store.put_model(model)
    path = _local(artifact.uri)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("skops was asked to read unverified bytes")

    monkeypatch.setattr(skops.io, "loads", refuse)
    monkeypatch.setattr(skops.io, "get_untrusted_types", refuse)
    with pytest.raises(errors.IntegrityError):
        store.get_model(artifact.uri, artifact.sha256)


def test_missing_file_is_not_found(store: artifacts.ArtifactStore) -> None:
    artifact = store.put_bytes(b"soon gone")
    _local(artifact.uri).unlink()
    with pytest.raises(errors.NotFoundError, match="does not exist"):
        store.get_bytes(artifact.uri, artifact.sha256)
    with pytest.raises(errors.NotFoundError):
        store.get_frame(artifact.uri.replace(artifact.sha256, "0" * 64), "0" * 64)


def test_relative_key_resolves_under_root(store: artifacts.ArtifactStore) -> None:
    artifact = store.put_bytes(b"k", suffix=".txt")
    key = f"{artifact.sha256[:2]}/{artifact.sha256}.txt"
    assert store.get_bytes(key, artifact.sha256) == b"k"


def test_default_root_is_local_artifacts_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    artifact = artifacts.ArtifactStore().put_bytes(b"here")
    assert _local(artifact.uri).is_relative_to(tmp_path / "artifacts")
