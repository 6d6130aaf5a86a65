"""Data sources: where new batches come from (files, SQL, Redis Streams, NATS JetStream, a
REST endpoint).

The controller calls `build_source(spec, base_dir)` and then `source.poll(cursor)`.
`build_source` imports the module of the spec's kind only (`base.BUILT_IN`), so a pipeline on
files never imports the stream or HTTP sources.
"""

from __future__ import annotations

from driftloop.data.sources.base import RawBatch, Source, build_source

__all__ = ["RawBatch", "Source", "build_source"]
