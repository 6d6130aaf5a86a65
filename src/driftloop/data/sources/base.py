"""What every data source is: `Source.poll(cursor)` yields `RawBatch`es of new data.

The controller builds a source from the pipeline spec with `build_source`, polls it with the
cursor it stored last time, records each batch (accepted or quarantined), and only then stores
`batch.cursor` and calls `source.acknowledge(batch)`. A crash in between re-reads the batch next
tick; the metadata store dedupes on `fingerprint` and on stream message ids, so that is harmless.

Each source class registers itself under its `kind` (the `kind` of its spec in
`core.source_specs`) just by being defined; `build_source` looks the kind up there, after
importing the module of a built-in kind not registered yet (`BUILT_IN`).

Streams (Redis Streams, NATS JetStream): the same interface
-----------------------------------------------------------
A stream source yields batches of events gathered by count or time (`batch: {rows, seconds}` in
the spec); `RawBatch.messages` holds the message id of each row of `frame` (in row order), or of
the one unreadable event of a batch whose `frame` is None. The server keeps delivering a message
until it is acknowledged, so the caller's duty is::

    for raw in source.poll(cursor):
        fresh = raw.without(already_recorded(raw.messages))  # None: all seen before a crash
        if fresh is not None:
            record(fresh)              # durably: rows, artifact and message ids, committed
        source.acknowledge(raw)        # only now; before the iterator is advanced or closed

`controller.ingest.ingest` does exactly this, with the metadata store's `batch_messages` as the
record of ids. Batch pipelines take its batches as they come; an online pipeline (a model that
learns from every event) uses the same loop with ``batch: {rows: 1}`` or a few rows and small
`seconds`, through `ingest(project, on_accepted=learn)`: `learn(batch, rows)` is called once per
recorded batch, right after its commit and before its ack, in the order batches are recorded
(events delivered again after a crash may come after newer ones). A crash between the commit
and `learn` does not deliver those events again: a learner that keeps state checkpoints the
last batch id it learned from and, on start, catches up on later batches from the store.
A batch not acknowledged when its poll ends is delivered again by a later poll. A stream poll
ends when the stream has nothing more or after `max_batches` batches (`events.at_most`), so
one tick takes a bounded share of a backlog and the next tick goes on from there. File, SQL and
replay sources have no messages, and `acknowledge` does nothing for them.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import importlib
import inspect
import logging
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from driftloop.core import config, errors
from driftloop.core.types import JSON
from driftloop.data import row_names as row_names_

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pandas is imported when data is read, not to poll for new data
    import pandas as pd


@dataclass(frozen=True)
class RawBatch:
    """A unit of new data, or an unreadable one.

    `frame` is None exactly when `error` says why the data could not be read ("empty file",
    "not valid CSV: ..."). `cursor` is the source state to store once this batch is recorded.
    `messages` are the stream message ids the batch is made of, one per row of `frame` (one
    for an unreadable event); empty for sources without messages. `row_names` says how a
    quarantine reason names the rows of `frame` (file lines, rows from 1, event ids).
    """

    source_uri: str
    fingerprint: str
    frame: pd.DataFrame | None
    error: str | None
    cursor: JSON
    messages: tuple[str, ...] = ()
    row_names: row_names_.RowNames = dataclasses.field(default_factory=row_names_.RowNames)

    def without(self, recorded: Collection[str]) -> RawBatch | None:
        """This batch minus the rows of messages in `recorded`; None if nothing is left.

        >>> import pandas as pd
        >>> frame = pd.DataFrame({"x": [1, 2, 3]})
        >>> raw = RawBatch("s#1..3", "f", frame, None, {}, messages=("1", "2", "3"))
        >>> rest = raw.without({"1", "3"})
        >>> rest.messages, rest.frame["x"].tolist(), rest.fingerprint == raw.fingerprint
        (('2',), [2], False)
        >>> raw.without({"1", "2", "3"}) is None
        True
        """
        keep = [i for i, message in enumerate(self.messages) if message not in recorded]
        if len(keep) == len(self.messages):
            return self
        if not keep:
            return None
        messages = tuple(self.messages[i] for i in keep)
        frame, names = self.frame, self.row_names
        if frame is not None and len(frame) == len(self.messages):
            frame, names = frame.iloc[keep].reset_index(drop=True), names.take(keep)
        digest = hashlib.sha256("\n".join((self.fingerprint, *messages)).encode()).hexdigest()
        return dataclasses.replace(
            self, frame=frame, messages=messages, fingerprint=digest, row_names=names
        )


_REGISTRY: dict[str, type[Source]] = {}

BUILT_IN = {
    "files": "files",
    "sql": "sql",
    "redis": "redis_stream",
    "nats": "nats_stream",
    "http": "rest",
}
"""The module in `driftloop.data.sources` of each built-in kind. Named here, not found by
importing every module, so that a pipeline imports its own source's module only."""


class Source(abc.ABC):
    """A place new data comes from. Subclasses set `kind` and are registered on definition."""

    kind: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if kind is None or inspect.isabstract(cls):
            return
        if kind in _REGISTRY and _REGISTRY[kind] is not cls:
            raise TypeError(
                f"source kind {kind!r} is already registered by {_REGISTRY[kind].__qualname__}"
            )
        _REGISTRY[kind] = cls

    @property
    @abc.abstractmethod
    def key(self) -> str:
        """Names this source for the stored cursor; stable across runs, free of secrets."""

    @abc.abstractmethod
    def poll(self, cursor: JSON | None) -> Iterator[RawBatch]:
        """Yield the batches that are new since `cursor` (None: from the beginning), in order."""

    def settled(self) -> JSON | None:
        """The cursor to store once a poll has run to its end and every batch it yielded is
        recorded, when the poll read past its last batch (pages or entries that held nothing
        new); None: the last batch's cursor stands. Only the `http` source needs it."""
        return None

    def acknowledge(self, batch: RawBatch) -> None:
        """Tell the server that `batch` is recorded, so its messages are not delivered again.

        Called by the controller after the batch (or the record that it was seen before) is
        committed, while the poll that yielded it is still open. Sources without messages
        (files, SQL) keep their place in the cursor instead; for them this does nothing.
        """
        del batch

    @classmethod
    @abc.abstractmethod
    def from_spec(cls, spec: Any, base_dir: Path) -> Source:
        """Build the source from its spec; relative paths resolve against `base_dir`."""

    def __repr__(self) -> str:
        names = list(inspect.signature(type(self).__init__).parameters)[1:]
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{type(self).__name__}({shown})"


def registered() -> dict[str, type[Source]]:
    """The source classes by kind (a copy), the built-in ones imported first.

    >>> sorted(registered())
    ['files', 'http', 'nats', 'redis', 'sql']
    """
    for kind in BUILT_IN:
        _load(kind)
    return dict(_REGISTRY)


def _load(kind: str) -> None:
    """Import the module of built-in `kind`, which registers its class, if not done yet."""
    if kind not in _REGISTRY and kind in BUILT_IN:
        importlib.import_module(f"driftloop.data.sources.{BUILT_IN[kind]}")


def build_source(
    spec: config.FileSourceSpec
    | config.SqlSourceSpec
    | config.RedisSourceSpec
    | config.NatsSourceSpec
    | config.HttpSourceSpec,
    base_dir: Path | str = ".",
) -> Source:
    """The source a spec describes; `base_dir` is the folder of the spec file.

    >>> spec = config.FileSourceSpec(path="incoming/*.csv")
    >>> build_source(spec, Path("/srv/pipe")).location
    '/srv/pipe/incoming/*.csv'
    """
    _load(spec.kind)
    try:
        cls = _REGISTRY[spec.kind]
    except KeyError:
        raise errors.ConfigError(
            f"source.kind: unknown source kind {spec.kind!r}; known kinds: "
            f"{', '.join(sorted(registered()))}"
        ) from None
    source = cls.from_spec(spec, Path(base_dir))
    log.debug("source %s", source.key)
    return source
