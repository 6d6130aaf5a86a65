"""The `source:` section of the pipeline spec: one pydantic model per source kind.

`core.config.PipelineSpec.source` is the `SourceSpec` union, discriminated by `kind` (`files`
when left out); `data.sources.base.build_source` turns a spec into its source. The models are
re-exported by `core.config`, where callers find them.

    >>> RedisSourceSpec(stream="events").batch
    BatchSpec(rows=1000, seconds=5.0)
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

import pydantic
from pydantic import Field

from driftloop.core.spec_base import Duration, Spec

_NAME = r"^[^\s.*>/\\]+$"
"""A JetStream stream or consumer name: no whitespace, dots, wildcards or path separators."""


STORAGE_OPTIONS = (
    "fsspec storage options of the filesystem, e.g. {endpoint_url: http://127.0.0.1:9000} for "
    "an S3-compatible server; credentials are best left to the environment"
)


class FileSourceSpec(Spec):
    """A folder or glob of CSV / Parquet files, local or any fsspec URL."""

    kind: Literal["files"] = "files"
    path: str = Field(description="Glob or fsspec URL, e.g. data/*.csv or s3://bucket/in/*.parquet")
    format: Literal["csv", "parquet", "auto"] = "auto"
    options: dict[str, Any] = Field(default={}, description=STORAGE_OPTIONS)


class SqlSourceSpec(Spec):
    """A table or query read incrementally by a timestamp column."""

    kind: Literal["sql"] = "sql"
    url: str = Field(description="SQLAlchemy URL of the database to read from")
    table: str | None = None
    query: str | None = None
    timestamp: str = Field(description="Column that orders rows; the cursor remembers the last")
    batch_rows: int = Field(default=50_000, gt=0)

    @pydantic.model_validator(mode="after")
    def _table_or_query(self) -> SqlSourceSpec:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of `table` or `query`")
        return self


class BatchSpec(Spec):
    """How stream events are gathered into batches: a batch closes when it holds `rows` events
    or `seconds` after its first event arrived, whichever comes first. ``rows: 1`` hands every
    event on by itself (online learning)."""

    rows: int = Field(default=1000, gt=0, le=1_000_000, description="Events per batch at most")
    seconds: float = Field(
        default=5.0, gt=0, le=86_400, description="Longest time a batch stays open"
    )


def _max_batches() -> Any:
    """The `max_batches` field of the stream specs (a new one for each: pydantic owns it)."""
    return Field(
        default=100,
        gt=0,
        le=1_000_000,
        description="Batches one poll (one tick) takes at most; the rest stays on the server "
        "for the next tick, so a tick under a steady stream of events still ends",
    )


class RedisSourceSpec(Spec):
    """A Redis stream read through a consumer group (XREADGROUP, XACK after recording)."""

    kind: Literal["redis"] = "redis"
    url: str = Field(
        default="redis://127.0.0.1:6379/0",
        pattern=r"^(redis|rediss|unix)://",
        description="redis://[user:password@]host:port/db, rediss:// (TLS) or unix://",
    )
    stream: str = Field(min_length=1, description="The stream key")
    group: str = Field(default="driftloop", min_length=1, description="The consumer group")
    consumer: str | None = Field(
        default=None,
        min_length=1,
        description="This reader's name in the group; default: the host name. Keep it stable: "
        "after a crash the same name re-reads its own pending events at once",
    )
    format: Literal["json", "fields"] = Field(
        default="json",
        description="json: field `field` of each entry holds one JSON object; fields: the "
        "entry's field map is the record (values read as JSON scalars where they parse)",
    )
    field: str = Field(default="data", min_length=1)
    claim_idle: Duration = Field(
        default=timedelta(minutes=1),
        description="Events pending this long with another consumer are claimed (XAUTOCLAIM)",
    )
    batch: BatchSpec = BatchSpec()
    max_batches: int = _max_batches()


class NatsSourceSpec(Spec):
    """A NATS JetStream stream read through a durable pull consumer (explicit acks)."""

    kind: Literal["nats"] = "nats"
    url: str = Field(
        default="nats://127.0.0.1:4222",
        pattern=r"^(nats|tls|ws|wss)://",
        description="nats://[user:password@]host:port (comma-separate several servers)",
    )
    stream: str = Field(pattern=_NAME, description="The JetStream stream")
    subject: str = Field(min_length=1, description="Subject filter, e.g. events.> ")
    durable: str = Field(default="driftloop", pattern=_NAME, description="The durable consumer")
    ack_wait: Duration = Field(
        default=timedelta(seconds=30),
        description="An event not acknowledged this long after delivery is delivered again",
    )
    batch: BatchSpec = BatchSpec()
    max_batches: int = _max_batches()

    @pydantic.model_validator(mode="after")
    def _ack_outlasts_batch(self) -> NatsSourceSpec:
        if self.ack_wait.total_seconds() <= self.batch.seconds:
            raise ValueError(
                f"ack_wait ({self.ack_wait.total_seconds():g}s) must be longer than "
                f"batch.seconds ({self.batch.seconds:g}s), or events are delivered again while "
                "their batch is still open"
            )
        return self


def _source_kind(value: Any) -> str:
    """The tag of a source: its `kind`, `files` when left out."""
    if isinstance(value, dict):
        return str(value.get("kind", "files"))
    return str(getattr(value, "kind", "files"))


SourceSpec = Annotated[
    Annotated[FileSourceSpec, pydantic.Tag("files")]
    | Annotated[SqlSourceSpec, pydantic.Tag("sql")]
    | Annotated[RedisSourceSpec, pydantic.Tag("redis")]
    | Annotated[NatsSourceSpec, pydantic.Tag("nats")],
    pydantic.Discriminator(_source_kind),
]

SOURCE_KINDS = ("files", "sql", "redis", "nats")
"""The `kind` tags of `SourceSpec` (error messages drop them from field paths)."""
