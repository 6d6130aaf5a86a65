"""Content-addressed artifact store on fsspec: batches (Parquet), models (skops) and small JSON
documents (a model's confidence calibrator), sha256-checked.

The controller puts accepted batches and trained models here and records the returned
`Artifact` (uri + sha256) in the metadata store; training, the gate and the server read them back
through `get_frame` / `get_model`, which refuse bytes that no longer match their hash.

Layout: ``<root>/<sha[:2]>/<sha><suffix>``. The root is a local folder (default ``./artifacts``)
or any fsspec URL (``memory://``, ``file://``, ``s3://``...). The same bytes are written once.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import posixpath
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from driftloop.core import errors

if TYPE_CHECKING:  # imported when a frame is stored or read
    import pandas as pd

PICKLE_SUFFIX = ".pickle"


@dataclass(frozen=True)
class Artifact:
    """Where some stored bytes live, their sha256 and their size in bytes."""

    uri: str
    sha256: str
    size: int


class ArtifactStore:
    """Immutable, content-addressed files under one fsspec root.

    >>> store = ArtifactStore("memory://doctest-artifacts")
    >>> artifact = store.put_bytes(b"hello", suffix=".txt")
    >>> artifact.uri
    'memory:///doctest-artifacts/2c/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824.txt'
    >>> store.get_bytes(artifact.uri, artifact.sha256)
    b'hello'
    """

    def __init__(
        self, url: str = "./artifacts", *, trusted_modules: Sequence[str] = (),
        **storage_options: Any,
    ) -> None:
        self.url = url
        self.trusted_modules = tuple(trusted_modules)
        self.storage_options = storage_options

    def __repr__(self) -> str:
        return f"ArtifactStore({self.url!r})"

    @functools.cached_property
    def _location(self) -> tuple[Any, str]:
        """The filesystem and root path of `url`, found on first use: a command that reads
        only records (`driftloop models list`) never imports fsspec."""
        import fsspec

        fs, root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        return fs, root.rstrip("/") or "/"

    @property
    def fs(self) -> Any:
        """The fsspec filesystem the artifacts are on."""
        return self._location[0]

    @property
    def root(self) -> str:
        """The root folder of the artifacts on `fs`."""
        return self._location[1]

    # -- bytes -----------------------------------------------------------------------------

    def put_bytes(self, data: bytes, suffix: str = "") -> Artifact:
        """Store `data` under its sha256; if the same bytes are already there, write nothing.

        The write goes to a temporary name first and is moved into place, so a crash never
        leaves a partial file under a content address.
        """
        sha = hashlib.sha256(data).hexdigest()
        path = posixpath.join(self.root, sha[:2], sha + suffix)
        if not (self.fs.exists(path) and self.fs.size(path) == len(data)):
            self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
            partial = f"{path}.partial-{uuid.uuid4().hex}"
            self.fs.pipe_file(partial, data)
            self.fs.mv(partial, path)
        return Artifact(uri=self.fs.unstrip_protocol(path), sha256=sha, size=len(data))

    def get_bytes(self, uri: str, sha256: str) -> bytes:
        """The bytes at `uri`, only if their sha256 is `sha256`.

        Raises `errors.NotFoundError` if nothing is there and `errors.IntegrityError` if the
        bytes differ from what was stored.
        """
        path = self._path(uri)
        try:
            data: bytes = self.fs.cat_file(path)
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise errors.NotFoundError(
                f"artifact {uri} does not exist in the store {self.url}; it was deleted or the "
                "store URL changed. Restore the file or retrain",
                uri=uri,
            ) from exc
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise errors.IntegrityError(
                f"artifact {uri} does not match its recorded hash: expected sha256 {sha256}, "
                f"got {actual}; the file was changed after it was stored; restore it or retrain",
                uri=uri,
            )
        return data

    # -- frames ----------------------------------------------------------------------------

    def put_frame(self, frame: pd.DataFrame) -> Artifact:
        """Store a frame as Parquet (pyarrow)."""
        buffer = io.BytesIO()
        frame.to_parquet(buffer, engine="pyarrow")
        return self.put_bytes(buffer.getvalue(), suffix=".parquet")

    def get_frame(self, uri: str, sha256: str) -> pd.DataFrame:
        """Read back a frame stored by `put_frame`, after checking its hash."""
        import pandas as pd

        return pd.read_parquet(io.BytesIO(self.get_bytes(uri, sha256)), engine="pyarrow")

    # -- JSON ------------------------------------------------------------------------------

    def put_json(self, document: Any) -> Artifact:
        """Store a JSON document (e.g. a calibrator's breakpoints: numbers, never code)."""
        return self.put_bytes(json.dumps(document, sort_keys=True).encode(), suffix=".json")

    def get_json(self, uri: str, sha256: str) -> Any:
        """Read back a document stored by `put_json`, after checking its hash.

        >>> store = ArtifactStore("memory://doctest-json")
        >>> stored = store.put_json({"x": [0.5, 1.0]})
        >>> store.get_json(stored.uri, stored.sha256)
        {'x': [0.5, 1.0]}
        """
        return json.loads(self.get_bytes(uri, sha256))

    # -- models ----------------------------------------------------------------------------

    def put_model(self, estimator: Any, format: str = "skops") -> Artifact:
        """Store a scikit-learn compatible estimator in the skops format; `format="pickle"`
        stores a river online learner, which skops cannot represent (`store.pickled`)."""
        if format == "pickle":
            from driftloop.store import pickled

            return self.put_bytes(pickled.dumps(estimator), suffix=PICKLE_SUFFIX)
        import skops.io

        return self.put_bytes(skops.io.dumps(estimator), suffix=".skops")

    def get_model(self, uri: str, sha256: str) -> Any:
        """Load a model stored by `put_model`.

        skops refuses to build any type it is not told to trust. Two walls decide which: the
        bytes must match the sha256 recorded when driftloop wrote them (a mismatch raises
        `errors.IntegrityError` before skops sees a single byte), and every type the file
        lists (`skops.io.get_untrusted_types`) must lie in an allowed module
        (`store.skops_trust`: scikit-learn, numpy, scipy, driftloop's model wrappers and
        `trusted_modules`, which the project fills with its trainer modules and the spec's
        ``trainer.trusted_modules``); a file with any other type is refused with
        `errors.IntegrityError` even when its hash matches. River learners (``.pickle``) are
        unpickled on the same two conditions (`store.pickled`).
        """
        data = self.get_bytes(uri, sha256)
        if uri.endswith(PICKLE_SUFFIX):  # verified bytes driftloop wrote: see store.pickled
            from driftloop.store import pickled

            return pickled.loads(data)
        import skops.io

        from driftloop.store import skops_trust

        trusted = skops_trust.check(data, skops_trust.DEFAULT_PREFIXES + self.trusted_modules)
        return skops.io.loads(data, trusted=trusted)

    # -- paths -----------------------------------------------------------------------------

    def delete(self, uri: str) -> bool:
        """Remove the file at `uri`; False if it was already gone (someone else removed it)."""
        try:
            self.fs.rm_file(self._path(uri))
        except FileNotFoundError:
            return False
        return True

    def _path(self, uri: str) -> str:
        """The filesystem path of a URI this store handed out (or a key relative to its root)."""
        if "://" in uri or uri.startswith("/"):
            return str(self.fs._strip_protocol(uri))
        return posixpath.join(self.root, uri)


class ReplayArtifactStore(ArtifactStore):
    """Keeps frames and models as live objects in this process; for backtests only.

    A backtest replays hundreds of trainings whose artifacts nobody reads after the replay, so
    serialising each model (skops) and each batch (Parquet) would only cost time. Objects are
    addressed by a fresh random sha256 each; nothing is written, nothing outlives the process.

    >>> store = ReplayArtifactStore()
    >>> artifact = store.put_model({"weights": [1, 2]})
    >>> store.get_model(artifact.uri, artifact.sha256)
    {'weights': [1, 2]}
    """

    def __init__(self) -> None:
        super().__init__("memory://replay")
        self._objects: dict[str, Any] = {}

    def __repr__(self) -> str:
        return "ReplayArtifactStore()"

    def _keep(self, value: Any) -> Artifact:
        key = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
        self._objects[key] = value
        return Artifact(uri=f"replay:///{key}", sha256=key, size=0)

    def _take(self, uri: str, sha256: str) -> Any:
        if sha256 not in self._objects or not uri.endswith(sha256):
            raise errors.NotFoundError(f"no replayed artifact {uri}", uri=uri)
        return self._objects[sha256]

    def put_frame(self, frame: pd.DataFrame) -> Artifact:
        return self._keep(frame)

    def get_frame(self, uri: str, sha256: str) -> pd.DataFrame:
        frame: pd.DataFrame = self._take(uri, sha256)
        return frame

    def put_json(self, document: Any) -> Artifact:
        return self._keep(document)

    def get_json(self, uri: str, sha256: str) -> Any:
        return self._take(uri, sha256)

    def put_model(self, estimator: Any, format: str = "skops") -> Artifact:
        # A model that keeps changing (an online learner) is kept as a copy of its state now.
        snapshot = getattr(estimator, "snapshot", None)
        return self._keep(snapshot() if callable(snapshot) else estimator)

    def get_model(self, uri: str, sha256: str) -> Any:
        return self._take(uri, sha256)
