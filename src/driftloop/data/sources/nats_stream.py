"""`NatsSource`: events of a NATS JetStream stream, read through a durable pull consumer.

Built by `base.build_source` from a `core.config.NatsSourceSpec`; polled by the controller
(`controller.ingest`), which acknowledges each batch only after recording it. Needs the
`nats-py` package (``pip install 'driftloop[streams]'``), imported when a poll starts.

The durable consumer (explicit acks, `ack_wait`, delivering the stream from its start) is
created on the first poll if it does not exist; the stream must exist. Each message is one JSON
object. A poll fetches until the consumer has nothing more (it waits up to one second, or
`seconds` while a batch is open) or `max_batches` batches are yielded (`events.at_most`).
Messages it was delivered but that were not acknowledged when it ends are negatively
acknowledged, so they come again at once rather than after `ack_wait`; after a crash they come
again after `ack_wait`.

A message's id is its stream sequence number and the stream's creation time (`message_id`):
``26@2026-11-29T20:46:42.123456Z``. Sequence numbers alone name messages within one life of a
stream only: a stream deleted and created again under the same name starts again at 1, and its
new messages would be taken for old ones already recorded. The creation time (from the stream
info, read once per poll after the consumer is bound, so it is the life the consumer reads)
tells the lives apart. Ids recorded before the creation time was part of them are bare
sequence numbers: they still name their batch's messages, but are not matched against new
deliveries, so a message recorded but not yet acknowledged when upgrading would be recorded
again; upgrade after an ingest that ended cleanly (it acknowledges all it recorded).

nats-py is asyncio. Each poll runs its own event loop on a thread of its own (`_Loop`) and calls
into it from the caller's thread, so a poll works the same from plain code, a CLI or a thread of
an async server; the connection, the loop and the thread end with the poll, leaving no task.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Coroutine, Generator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from driftloop.core import config, errors
from driftloop.core.types import JSON
from driftloop.data.sources import base, events

T = TypeVar("T")
FETCH_MAX = 500
"""Messages asked for by one fetch at most (a batch of more is gathered over several)."""


class NatsSource(base.Source):
    """Messages on `subject` of JetStream stream `stream`, read by durable consumer `durable`.

    >>> source = NatsSource("nats://me:pw@mq:4222", stream="EVENTS", subject="events.>")
    >>> source.key, source.location
    ('nats:mq:4222/EVENTS', 'nats://mq:4222/EVENTS')
    >>> repr(source).split(",")[0]
    "NatsSource(url='nats://me:***@mq:4222'"
    """

    kind: ClassVar[str] = "nats"

    def __init__(
        self,
        url: str = "nats://127.0.0.1:4222",
        stream: str = "EVENTS",
        subject: str = "events.>",
        durable: str = "driftloop",
        rows: int = 1000,
        seconds: float = 5.0,
        ack_wait: float = 30.0,
        max_batches: int = 100,
    ) -> None:
        events.require_positive(
            "NatsSource", rows=rows, seconds=seconds, ack_wait=ack_wait, max_batches=max_batches)
        self.url = url
        self.stream = stream
        self.subject = subject
        self.durable = durable
        self.rows = rows
        self.seconds = seconds
        self.ack_wait = ack_wait
        self.max_batches = max_batches
        self._open: _Session | None = None  # the open poll's connection, for `acknowledge`

    @classmethod
    def from_spec(cls, spec: config.NatsSourceSpec, base_dir: Path) -> NatsSource:
        return cls(
            spec.url,
            stream=spec.stream,
            subject=spec.subject,
            durable=spec.durable,
            rows=spec.batch.rows,
            seconds=spec.batch.seconds,
            ack_wait=spec.ack_wait.total_seconds(),
            max_batches=spec.max_batches,
        )

    @property
    def servers(self) -> list[str]:
        return [server.strip() for server in self.url.split(",") if server.strip()]

    @property
    def server(self) -> str:
        """host:port of each server, without credentials."""
        parts = [urlsplit(server) for server in self.servers]
        return ",".join(f"{part.hostname}:{part.port or 4222}" for part in parts)

    @property
    def key(self) -> str:
        return f"nats:{self.server}/{self.stream}"

    @property
    def location(self) -> str:
        return f"nats://{self.server}/{self.stream}"

    def __repr__(self) -> str:
        shown = ",".join(
            server.replace(f":{part.password}@", ":***@", 1) if part.password else server
            for server, part in ((server, urlsplit(server)) for server in self.servers)
        )
        return super().__repr__().replace(repr(self.url), repr(shown), 1)

    def poll(self, cursor: JSON | None) -> Iterator[base.RawBatch]:
        """Yield up to `max_batches` batches of the events the consumer delivers; `cursor` is
        not needed (the durable consumer keeps the place); each batch's ``{"last": id}`` is for
        people."""
        del cursor
        return events.at_most(self._batches(), self.max_batches)

    def _batches(self) -> Generator[base.RawBatch, None, None]:
        nats = _nats()
        loop = _Loop()
        session: _Session | None = None
        try:
            session = loop.run(self._connect(nats, loop))
            self._open = session
            batcher = events.Batcher(self.key, self.location, self.rows, self.seconds)
            while True:
                wait = batcher.wait()
                timeout = min(self.seconds, 1.0) if wait is None else max(wait, 0.01)
                count = min(max(batcher.room(), 1), FETCH_MAX)
                fetched = loop.run(session.fetch(count, timeout))
                while session.untaken:
                    msg = session.untaken.popleft()
                    message = session.take(msg)
                    if message is None:
                        continue
                    record, error = events.parse_json(msg.data)
                    if record is None:
                        yield batcher.unreadable(message, error or "unreadable")
                        continue
                    batcher.add(message, record)
                    if batcher.room() <= 0:
                        yield batcher.cut()
                if batcher.due():
                    yield batcher.cut()
                elif not fetched and not len(batcher):
                    return
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            raise self._error(exc) from exc
        finally:
            self._open = None
            try:
                if session is not None:
                    loop.run(session.close())
            finally:
                loop.close()

    def acknowledge(self, batch: base.RawBatch) -> None:
        """Ack the batch's messages (they must come from the poll that is still open)."""
        session = self._open
        if session is None or not batch.messages:
            return  # not held: delivered again later and recognised as recorded
        try:
            session.loop.run(session.ack(batch.messages))
        except (TimeoutError, _nats().errors.Error, OSError) as exc:
            raise self._error(exc) from exc

    async def _connect(self, nats: Any, loop: _Loop) -> _Session:
        from nats.js import api
        from nats.js import errors as js_errors

        async def quiet(exc: Exception) -> None:
            """Errors reach the poll through the calls that fail; no log noise."""

        client = await nats.connect(
            servers=self.servers,
            connect_timeout=5,
            allow_reconnect=False,
            max_reconnect_attempts=0,
            error_cb=quiet,
        )
        try:
            jetstream = client.jetstream()
            consumer = api.ConsumerConfig(
                ack_policy=api.AckPolicy.EXPLICIT,
                deliver_policy=api.DeliverPolicy.ALL,
                ack_wait=self.ack_wait,
                # Room for an open batch, the batch being recorded and one fetch in flight.
                max_ack_pending=max(1000, 2 * self.rows + FETCH_MAX),
            )
            try:
                subscription = await jetstream.pull_subscribe(
                    self.subject, durable=self.durable, stream=self.stream, config=consumer
                )
                # After binding: a stream created again since has deleted this consumer, so
                # nothing is delivered under a creation time that is not the consumer's stream's.
                created = (await jetstream.stream_info(self.stream)).created
            except js_errors.NotFoundError:
                raise errors.PermanentError(
                    f"JetStream stream {self.stream!r} does not exist at {self.server}: create "
                    "it (e.g. `nats stream add`) or check source.stream",
                    source=self.key,
                ) from None
        except BaseException:
            await client.close()
            raise
        return _Session(loop, client, subscription, created)

    def _error(self, exc: BaseException) -> errors.DriftloopError:
        if isinstance(exc, errors.DriftloopError):
            return exc
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = f"stream {self.stream!r} at {self.server}"
        if _is_api_error(exc):
            return errors.PermanentError(
                f"cannot read {where}: {reason}; check source.stream, source.subject and "
                "source.durable",
                source=self.key,
            )
        return errors.TemporaryError(
            f"cannot read {where}: {reason}; will retry", delay=5.0, source=self.key
        )


def message_id(sequence: int, created: datetime | None) -> str:
    """The id of the message at `sequence` of the stream created at `created` (None: a server
    that does not say; the sequence alone then).

    >>> message_id(26, datetime(2026, 11, 29, 20, 46, 42, 123456, tzinfo=UTC))
    '26@2026-11-29T20:46:42.123456Z'
    """
    if created is None:
        return str(sequence)
    stamp = created.astimezone(UTC) if created.tzinfo else created
    return f"{sequence}@{stamp:%Y-%m-%dT%H:%M:%S.%fZ}"


class _Session:
    """One poll's connection and pull subscription, and the messages delivered to it that are
    not acknowledged yet (by message id: the stream sequence and the stream's creation time)."""

    def __init__(
        self, loop: _Loop, client: Any, subscription: Any, created: datetime | None
    ) -> None:
        self.loop = loop
        self.client = client
        self.subscription = subscription
        self.created = created
        self.held: dict[str, Any] = {}
        self.acked: set[str] = set()
        self.untaken: collections.deque[Any] = collections.deque()

    async def fetch(self, count: int, timeout: float) -> int:
        """Fetch up to `count` messages into `untaken`; how many came."""
        try:
            messages = await self.subscription.fetch(count, timeout=timeout)
        except TimeoutError:  # nats' TimeoutError and FetchTimeoutError are these
            return 0
        self.untaken.extend(messages)
        return len(messages)

    def take(self, msg: Any) -> str | None:
        """The id of a newly delivered message, or None for one delivered again in this poll
        (kept to be acknowledged through its newest delivery)."""
        message = message_id(msg.metadata.sequence.stream, self.created)
        if message in self.held:
            self.held[message] = msg
            return None
        if message in self.acked:  # its ack crossed this delivery: ack it again
            self.loop.run(msg.ack())
            return None
        self.held[message] = msg
        return message

    async def ack(self, messages: tuple[str, ...]) -> None:
        for message in messages:
            msg = self.held.pop(message, None)
            if msg is not None:
                await msg.ack()
                self.acked.add(message)
        await self.client.flush()

    async def close(self) -> None:
        """Nak what is still held or was fetched but not taken (a poll ended by `max_batches`
        leaves some): delivered again at once. Then close the connection. On a broken
        connection the naks are lost: those messages come again after `ack_wait`."""
        try:
            if not self.client.is_closed:
                for msg in [*self.held.values(), *self.untaken]:
                    await msg.nak()
                await self.client.flush()
                await self.subscription.unsubscribe()
        except (_nats().errors.Error, OSError, TimeoutError):
            pass  # the poll's own outcome (a batch, or the error that ended it) is what counts
        finally:
            self.held.clear()
            self.untaken.clear()
            await self.client.close()


class _Loop:
    """An asyncio event loop running on a thread of its own; `run` a coroutine on it from any
    other thread and wait for the result. `close` cancels what is left and ends the thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._main, name="driftloop-nats", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.run(_cancel_others())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


async def _cancel_others() -> None:
    """Cancel every task of the running loop but this one, and wait for them to end."""
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _is_api_error(exc: BaseException) -> bool:
    from nats.js import errors as js_errors

    return isinstance(exc, js_errors.APIError) and not isinstance(
        exc, js_errors.ServiceUnavailableError
    )


def _nats() -> Any:
    try:
        import nats
        import nats.errors
    except ImportError as exc:
        raise errors.ConfigError(
            "source kind 'nats' needs the nats-py package: pip install 'driftloop[streams]'"
        ) from exc
    return nats
