"""Artifact files that no stored record references, for `driftloop gc`.

A controller killed between writing a model file and recording its version (or a batch file
and its batch row) leaves a file nothing points to; so does a write cut short (a ``.partial-``
file). A file is referenced when its content address, the sha256 its name starts with, is the
hash of a model version or of a batch's rows in the metadata store, in any pipeline. Only
files named the way `ArtifactStore.put_bytes` names them are considered; anything else in the
folder is left alone, and so is any file younger than `min_age`: a tick may be between
writing it and recording it right now.

The artifact folder must belong to this metadata store: files another store references look
unreferenced here.

    >>> from datetime import UTC, datetime, timedelta
    >>> from driftloop.core.clock import FakeClock
    >>> from driftloop.store.artifacts import ArtifactStore
    >>> from driftloop.store.metadata import MetadataStore
    >>> store = MetadataStore.open("sqlite://", clock=FakeClock(datetime(2024, 1, 1, tzinfo=UTC)))
    >>> files = ArtifactStore("memory://doctest-orphans")
    >>> kept, lost = files.put_bytes(b"kept", ".skops"), files.put_bytes(b"lost", ".skops")
    >>> _ = store.pipelines.ensure("p", {})
    >>> _ = store.versions.add("p", run_id=None, artifact_uri=kept.uri, sha256=kept.sha256,
    ...                             metrics={})
    >>> [o.uri == lost.uri for o in find_orphans(store, files, min_age=timedelta(0))]
    [True]
    >>> store.close()
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from driftloop.store import artifacts, metadata
from driftloop.store import tables as T

_NAME = re.compile(r"(?P<sha>[0-9a-f]{64})[\w.]*?(?P<partial>\.partial-[0-9a-f]{32})?")


@dataclass(frozen=True)
class Orphan:
    """An unreferenced artifact file: where (`name`: under the store's root), how many bytes,
    when it was last written, and whether it is a write cut short."""

    uri: str
    name: str
    size: int
    modified: datetime | None
    partial: bool


def referenced(store: metadata.MetadataStore) -> set[str]:
    """The sha256 of every model version's file and calibrator, of every stored batch and of
    every exported file kept on a version (an ONNX export), in all pipelines."""
    versions = sa.select(T.model_versions.c.sha256)
    calibrators = sa.select(T.model_versions.c.calibration_sha256).where(
        T.model_versions.c.calibration_sha256.is_not(None))
    batches = sa.select(T.batches.c.data_sha256).where(T.batches.c.data_sha256.is_not(None))
    exported = sa.select(T.model_transfers.c.sha256).where(
        T.model_transfers.c.sha256.is_not(None))
    with store.db.read() as conn:
        return set(conn.scalars(sa.union(versions, calibrators, batches, exported)))


def find_orphans(
    store: metadata.MetadataStore, files: artifacts.ArtifactStore, *, min_age: timedelta,
    now: datetime | None = None,
) -> list[Orphan]:
    """The files of `files` no record of `store` references and older than `min_age`,
    in path order."""
    now = now or datetime.now(UTC)
    known = referenced(store)
    found = []
    for path, info in sorted(files.fs.find(files.root, detail=True).items()):
        match = _NAME.fullmatch(posixpath.basename(path))
        if match is None or (match["sha"] in known and not match["partial"]):
            continue
        modified = _modified(info)
        if modified is not None and now - modified < min_age:
            continue
        found.append(Orphan(
            files.fs.unstrip_protocol(path), posixpath.relpath(path, files.root),
            int(info.get("size") or 0), modified, match["partial"] is not None))
    return found


def remove(
    store: metadata.MetadataStore, files: artifacts.ArtifactStore, orphans: Sequence[Orphan],
) -> list[Orphan]:
    """Delete `orphans`, except any a record came to reference since they were found (the
    references are read again first); returns those deleted."""
    known = referenced(store)
    gone = []
    for orphan in orphans:
        match = _NAME.fullmatch(posixpath.basename(orphan.uri))
        if match is None or (match["sha"] in known and not orphan.partial):
            continue
        if files.delete(orphan.uri):  # else removed by someone else meanwhile
            gone.append(orphan)
    return gone


def _modified(info: dict[str, Any]) -> datetime | None:
    """When a file was last written, from what its fsspec filesystem reports (local: `mtime`,
    S3: `LastModified`, memory: `created`)."""
    for key in ("mtime", "LastModified", "last_modified", "created"):
        value = info.get(key)
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None
