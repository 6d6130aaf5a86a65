"""Data sources: where new batches come from (files, SQL, Redis Streams, NATS JetStream, a
REST endpoint).

The controller calls `build_source(spec, base_dir)` and then `source.poll(cursor)`. Importing
this package imports every built-in source module, so each class is registered under its kind.
"""

from __future__ import annotations

from driftloop.data.sources import base, files, nats_stream, redis_stream, rest, sql
from driftloop.data.sources.base import RawBatch, Source, build_source

__all__ = [
    "RawBatch",
    "Source",
    "base",
    "build_source",
    "files",
    "nats_stream",
    "redis_stream",
    "rest",
    "sql",
]
