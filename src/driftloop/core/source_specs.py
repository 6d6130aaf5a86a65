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


class CursorSpec(Spec):
    """How an `http` source asks only for what is new: the largest `field` value read so far
    is sent in query parameter `param` (``?since=2024-05-01T10:00:00Z``)."""

    param: str = Field(min_length=1, description="Query parameter the cursor is sent in")
    field: str = Field(
        min_length=1,
        description="Record field that grows with each change (an update time, a sequence); "
        "the endpoint should return records with field >= the cursor, in that order",
    )


class PageSpec(Spec):
    """How an `http` source pages through one listing: a page-number parameter (``param``,
    counting from `start`, until a page holds no records) or the next page's URL (``next``:
    ``link`` for the Link header's rel="next", or a dotted field of a JSON page, e.g.
    ``links.next``)."""

    param: str | None = Field(default=None, min_length=1, description="Page-number parameter")
    start: int = Field(default=1, ge=0, description="The first page's number")
    next: str | None = Field(
        default=None, min_length=1, description="link, or the JSON field holding the next URL"
    )

    @pydantic.model_validator(mode="after")
    def _one_way(self) -> PageSpec:
        if (self.param is None) == (self.next is None):
            raise ValueError("give exactly one of `param` (page numbers) or `next` (next URL)")
        return self


class HttpSourceSpec(Spec):
    """A REST endpoint polled for new records, page by page; each page is one batch."""

    kind: Literal["http"] = "http"
    url: str = Field(pattern=r"^https?://", description="The endpoint, http:// or https://")
    format: Literal["json", "csv"] = "json"
    records: str | None = Field(
        default=None,
        min_length=1,
        description="Dotted field of a JSON page that holds the record array (e.g. data or "
        "result.items); leave out when the page is the array itself",
    )
    cursor: CursorSpec | None = Field(
        default=None, description="Ask only for records newer than those read (else every poll "
        "reads the whole listing, and records already recorded are dropped)"
    )
    page: PageSpec | None = Field(default=None, description="Pagination; none: one request")
    id: str | None = Field(
        default=None,
        min_length=1,
        description="Record field that names a record; with the cursor field it names one "
        "version of it. Without it a record is named by its content (equal records are one)",
    )
    params: dict[str, str] = Field(default={}, description="Fixed query parameters")
    headers: dict[str, str] = Field(
        default={},
        description="Request headers; ${NAME} is replaced by environment variable NAME, so "
        "secrets stay out of the file: {Authorization: Bearer ${API_TOKEN}}",
    )
    timeout: Duration = Field(default=timedelta(seconds=30), description="Per request")
    retries: int = Field(
        default=3, ge=0, le=20, description="Retries of a request that failed on the network or "
        "with 429 / 5xx, waiting `backoff`, then twice as long each time"
    )
    backoff: Duration = Field(default=timedelta(seconds=1))
    max_pages: int = Field(
        default=100, gt=0, le=1_000_000, description="Pages one poll (one tick) reads at most; "
        "the next tick goes on from there"
    )

    @pydantic.model_validator(mode="after")
    def _fits_format(self) -> HttpSourceSpec:
        if self.format == "csv" and self.records is not None:
            raise ValueError("`records` is for JSON pages; a CSV page is the records")
        if self.format == "csv" and self.page is not None and self.page.next not in (None, "link"):
            raise ValueError("a CSV page has no fields: page.next must be `link` (the Link "
                             "header) or use page.param")
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
    | Annotated[NatsSourceSpec, pydantic.Tag("nats")]
    | Annotated[HttpSourceSpec, pydantic.Tag("http")],
    pydantic.Discriminator(_source_kind),
]

SOURCE_KINDS = ("files", "sql", "redis", "nats", "http")
"""The `kind` tags of `SourceSpec` (error messages drop them from field paths)."""
