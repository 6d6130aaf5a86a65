"""What every data source is: `Source.poll(cursor)` yields `RawBatch`es of new data.

The controller builds a source from the pipeline spec with `build_source`, polls it with the
cursor it stored last time, records each batch (accepted or quarantined), and only then stores
`batch.cursor`. A crash in between re-reads the batch next tick; the metadata store dedupes on
`fingerprint`, so that is harmless.

Each source class registers itself under its `kind` (the `kind` of its spec in
`core.config`) just by being defined; `build_source` looks the kind up there.
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from driftloop.core import config, errors
from driftloop.core.types import JSON


@dataclass(frozen=True)
class RawBatch:
    """A unit of new data, or an unreadable one.

    `frame` is None exactly when `error` says why the data could not be read ("empty file",
    "not valid CSV: ..."). `cursor` is the source state to store once this batch is recorded.
    """

    source_uri: str
    fingerprint: str
    frame: pd.DataFrame | None
    error: str | None
    cursor: JSON


_REGISTRY: dict[str, type[Source]] = {}


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

    @classmethod
    @abc.abstractmethod
    def from_spec(cls, spec: Any, base_dir: Path) -> Source:
        """Build the source from its spec; relative paths resolve against `base_dir`."""

    def __repr__(self) -> str:
        names = list(inspect.signature(type(self).__init__).parameters)[1:]
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{type(self).__name__}({shown})"


def registered() -> dict[str, type[Source]]:
    """The source classes by kind (a copy).

    >>> sorted(registered())
    ['files', 'sql']
    """
    return dict(_REGISTRY)


def build_source(
    spec: config.FileSourceSpec | config.SqlSourceSpec, base_dir: Path | str = "."
) -> Source:
    """The source a spec describes; `base_dir` is the folder of the spec file.

    >>> spec = config.FileSourceSpec(path="incoming/*.csv")
    >>> build_source(spec, Path("/srv/pipe")).location
    '/srv/pipe/incoming/*.csv'
    """
    try:
        cls = _REGISTRY[spec.kind]
    except KeyError:
        raise errors.ConfigError(
            f"source.kind: unknown source kind {spec.kind!r}; known kinds: "
            f"{', '.join(sorted(_REGISTRY))}"
        ) from None
    return cls.from_spec(spec, Path(base_dir))
