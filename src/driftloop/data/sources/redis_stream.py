"""`RedisSource`: events of a Redis stream, read through a consumer group, in batches.

Built by `base.build_source` from a `core.config.RedisSourceSpec`; polled by the controller
(`controller.ingest`), which acknowledges each batch (XACK) only after recording it. Needs the
`redis` package (``pip install 'driftloop[streams]'``), imported when a poll starts.

One poll, in order:

1. this consumer's own pending entries (XREADGROUP from id 0): what it read before a crash or
   an error and never acknowledged;
2. entries pending for longer than `claim_idle` with other consumers of the group, e.g. one
   that died for good (XAUTOCLAIM);
3. new entries (XREADGROUP ``>``), until the stream has nothing more (it waits up to one second,
   or `seconds` while a batch is open) or `max_batches` batches are yielded
   (`events.at_most`). Entries read but not yielded then stay pending with this consumer, and
   step 1 of the next poll reads them first.

Events are gathered into batches of `rows` that close `seconds` after their first event
(`events.Batcher`). An entry deleted from the stream while pending is acknowledged and
skipped. The group is created, at the start of the stream, if it does not exist yet.
"""

from __future__ import annotations

import socket
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from driftloop.core import config, errors
from driftloop.core.types import JSON
from driftloop.data.sources import base, events

Entry = tuple[bytes, dict[bytes, bytes] | None]
ACK_CHUNK = 10_000


class RedisSource(base.Source):
    """Stream `stream` at `url`, read as `consumer` of group `group`.

    >>> source = RedisSource("redis://:secret@cache:6379/2", stream="clicks", consumer="a")
    >>> source.key, source.location
    ('redis:cache:6379/2/clicks', 'redis://cache:6379/2/clicks')
    """

    kind: ClassVar[str] = "redis"

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        stream: str = "events",
        group: str = "driftloop",
        consumer: str | None = None,
        format: Literal["json", "fields"] = "json",
        field: str = "data",
        rows: int = 1000,
        seconds: float = 5.0,
        claim_idle: float = 60.0,
        max_batches: int = 100,
    ) -> None:
        if format not in ("json", "fields"):
            raise errors.ConfigError(
                f"`format` of RedisSource must be json or fields; got {format!r}"
            )
        events.require_positive("RedisSource", rows=rows, seconds=seconds, max_batches=max_batches)
        if claim_idle < 0:
            raise errors.ConfigError(f"`claim_idle` of RedisSource must be >= 0; got {claim_idle}")
        self.url = url
        self.stream = stream
        self.group = group
        self.consumer = consumer or socket.gethostname()
        self.format = format
        self.field = field
        self.rows = rows
        self.seconds = seconds
        self.claim_idle = claim_idle
        self.max_batches = max_batches
        self._client: Any = None  # the open poll's connection, for `acknowledge`

    @classmethod
    def from_spec(cls, spec: config.RedisSourceSpec, base_dir: Path) -> RedisSource:
        return cls(
            spec.url,
            stream=spec.stream,
            group=spec.group,
            consumer=spec.consumer,
            format=spec.format,
            field=spec.field,
            rows=spec.batch.rows,
            seconds=spec.batch.seconds,
            claim_idle=spec.claim_idle.total_seconds(),
            max_batches=spec.max_batches,
        )

    @property
    def server(self) -> str:
        """host:port/db (or the socket path) of the server, without credentials."""
        parts = urlsplit(self.url)
        if parts.scheme == "unix":
            return f"unix:{parts.path}"
        db = parts.path.strip("/") or "0"
        return f"{parts.hostname}:{parts.port or 6379}/{db}"

    @property
    def key(self) -> str:
        return f"redis:{self.server}/{self.stream}"

    @property
    def location(self) -> str:
        return f"redis://{self.server}/{self.stream}"

    def __repr__(self) -> str:
        parts = urlsplit(self.url)
        shown = self.url.replace(parts.password, "***", 1) if parts.password else self.url
        return super().__repr__().replace(repr(self.url), repr(shown), 1)

    def poll(self, cursor: JSON | None) -> Iterator[base.RawBatch]:
        """Yield up to `max_batches` batches of pending, then new, events; `cursor` is not
        needed (the group keeps the place) and the one each batch carries, ``{"last": id}``, is
        for people to read."""
        del cursor
        return events.at_most(self._batches(), self.max_batches)

    def _batches(self) -> Generator[base.RawBatch, None, None]:
        client = self._connect()
        self._client = client
        batcher = events.Batcher(self.key, self.location, self.rows, self.seconds)
        seen: set[str] = set()
        try:
            self._ensure_group(client)
            for entries in self._pending(client):
                yield from self._take(client, entries, batcher, seen)
            while True:
                wait = batcher.wait()
                block = min(self.seconds, 1.0) if wait is None else wait
                reply = client.xreadgroup(
                    self.group,
                    self.consumer,
                    {self.stream: ">"},
                    count=max(batcher.room(), 1),
                    block=max(1, int(block * 1000)),
                )
                entries = _entries(reply)
                yield from self._take(client, entries, batcher, seen)
                if batcher.due():
                    yield batcher.cut()
                elif not entries and not len(batcher):
                    return
        except self._redis().RedisError as exc:
            raise self._error(exc) from exc
        finally:
            self._client = None
            client.close()

    def acknowledge(self, batch: base.RawBatch) -> None:
        """XACK the batch's entries; on the open poll's connection, else on a new one."""
        if not batch.messages:
            return
        client = self._client or self._connect()
        try:
            ids = list(batch.messages)
            for start in range(0, len(ids), ACK_CHUNK):
                client.xack(self.stream, self.group, *ids[start : start + ACK_CHUNK])
        except self._redis().RedisError as exc:
            raise self._error(exc) from exc
        finally:
            if client is not self._client:
                client.close()

    def _pending(self, client: Any) -> Iterator[list[Entry]]:
        """Own pending entries, then idle entries of other consumers (claimed), page by page."""
        last: bytes | str = "0"
        while entries := _entries(
            client.xreadgroup(self.group, self.consumer, {self.stream: last}, count=self.rows)
        ):
            yield entries
            last = entries[-1][0]
        start: bytes | str = "0-0"
        while True:
            reply = client.xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                min_idle_time=int(self.claim_idle * 1000),
                start_id=start,
                count=self.rows,
            )
            start, claimed = reply[0], reply[1]
            if claimed:
                yield claimed
            if start in (b"0-0", "0-0"):
                return

    def _take(
        self, client: Any, entries: list[Entry], batcher: events.Batcher, seen: set[str]
    ) -> Iterator[base.RawBatch]:
        """Put entries into the open batch; yield it when full, and each unreadable event."""
        gone = []
        for raw_id, fields in entries:
            message = raw_id.decode()
            if message in seen:
                continue
            seen.add(message)
            if not fields:  # deleted (XDEL, trimmed) while pending: nothing left to record
                gone.append(message)
                continue
            record, error = self._parse(fields)
            if record is None:
                yield batcher.unreadable(message, error or "unreadable")
                continue
            batcher.add(message, record)
            if batcher.room() <= 0:
                yield batcher.cut()
        if gone:
            client.xack(self.stream, self.group, *gone)

    def _parse(self, fields: dict[bytes, bytes]) -> events.Parsed:
        if self.format == "fields":
            return events.parse_fields(fields)
        data = fields.get(self.field.encode())
        if data is None:
            names = ", ".join(sorted(repr(name.decode(errors="replace")) for name in fields))
            return None, f"no field {self.field!r} (the entry has {names}); set source.field"
        return events.parse_json(data)

    def _ensure_group(self, client: Any) -> None:
        try:
            client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except self._redis().ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _connect(self) -> Any:
        redis = self._redis()
        return redis.Redis.from_url(
            self.url, protocol=2, socket_connect_timeout=10, socket_timeout=self.seconds + 30
        )

    @staticmethod
    def _redis() -> Any:
        try:
            import redis
        except ImportError as exc:
            raise errors.ConfigError(
                "source kind 'redis' needs the redis package: pip install 'driftloop[streams]'"
            ) from exc
        return redis

    def _error(self, exc: Exception) -> errors.DriftloopError:
        redis = self._redis()
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = f"stream {self.stream!r} at {self.server}"
        if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
            return errors.TemporaryError(
                f"cannot read {where}: {reason}; will retry", delay=5.0, source=self.key
            )
        return errors.PermanentError(
            f"cannot read {where}: {reason}; check source.url, source.stream and source.group",
            source=self.key,
        )


def _entries(reply: Any) -> list[Entry]:
    """The entries of the one stream in an XREADGROUP reply (RESP2: ``[[stream, entries]]``)."""
    return list(reply[0][1]) if reply else []
