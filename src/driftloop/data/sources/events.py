"""Stream events into batches: read one message as a flat record (or say why it cannot be),
gather records into `RawBatch`es by count or time, and end a poll after `max_batches` of them.

Used by the stream sources (`redis_stream`, `nats_stream`); they do the talking to the server,
this module the rest. A batch is named by its message ids (sha256 of the source key and the
ids), never by its content: two events with equal fields are still two events. Its rows are
named by them too: a quarantine reason says ``"event 1700000000000-0"``, not a row number.

An unreadable event becomes a batch of its own with `frame` None and `error` saying why, so the
controller quarantines it with that reason and acknowledges it like any other: it is recorded
once and never delivered again.

A poll ends when the stream has nothing more or after `max_batches` batches (`at_most`), so a
tick under a steady stream of events ends and hands on to evaluate, decide and train. The bound
is a count of batches rather than a time budget: a backlog then takes a known number of ticks
whatever the machine's speed (and tests need no clock), and one tick holds at most
`max_batches` x `rows` events. A trickle that never lets a poll find the stream empty ends it
after at most `max_batches` x `seconds`. Events not taken stay unacknowledged on the server
(Redis: pending with this consumer, read first by the next poll; NATS: nak'ed when the poll
ends, delivered again at once), so the next tick takes them, and none is lost or counted twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from driftloop.core import errors
from driftloop.data import row_names
from driftloop.data.sources import base

if TYPE_CHECKING:  # imported when a batch is cut
    pass

Record = dict[str, Any]
Parsed = tuple[Record | None, str | None]


def parse_json(data: bytes) -> Parsed:
    """One message holding one JSON object: `(record, None)`, or `(None, why not)`.

    >>> parse_json(b'{"x": 1.5, "y": "a"}')
    ({'x': 1.5, 'y': 'a'}, None)
    >>> parse_json(b'{"x": ')[1]
    'not valid JSON: Expecting value at line 1 column 7'
    >>> parse_json(b'[1, 2]')[1]
    'not a JSON object but an array'
    >>> parse_json(b'{"x": {"deep": 1}}')[1]
    "field 'x' holds a nested object; an event must be a flat record"
    """
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except RecursionError:
        return None, "not valid JSON: nested too deeply"
    if not isinstance(value, dict):
        return None, f"not a JSON object but {kind_of(value)}"
    return check_record(value)


def parse_fields(fields: Mapping[bytes, bytes]) -> Parsed:
    """A field map (a Redis stream entry) as a record; each value is read as a JSON scalar
    where it parses as one (``1.5``, ``true``, ``null``, ``"text"``) and kept as text otherwise.

    >>> parse_fields({b"x": b"1.5", b"ok": b"true", b"name": b"north", b"code": b"007"})
    ({'x': 1.5, 'ok': True, 'name': 'north', 'code': '007'}, None)
    """
    record: Record = {}
    for raw_key, raw_value in fields.items():
        try:
            key, text = raw_key.decode(), raw_value.decode()
        except UnicodeDecodeError:
            return None, "a field name or value is not UTF-8 text"
        try:
            value = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            value = text
        record[key] = value if not isinstance(value, dict | list) else text
    return check_record(record)


def check_record(record: Record) -> Parsed:
    """`record` if it is a non-empty flat mapping of scalars, else why not."""
    if not record:
        return None, "an empty record"
    for key, value in record.items():
        if isinstance(value, dict | list):
            return (
                None,
                f"field {key!r} holds a nested {kind_of(value).split()[-1]}; an event "
                "must be a flat record",
            )
    return record, None


def kind_of(value: Any) -> str:
    """How a JSON value is named in messages: "an object", "an array", "null", ..."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def require_positive(owner: str, **values: float) -> None:
    """`ConfigError` naming the first of `values` that is not > 0.

    >>> require_positive("RedisSource", rows=10, seconds=0)
    Traceback (most recent call last):
    ...
    driftloop.core.errors.ConfigError: `seconds` of RedisSource must be > 0; got 0
    """
    for name, value in values.items():
        if value <= 0:
            raise errors.ConfigError(f"`{name}` of {owner} must be > 0; got {value}")


def at_most(batches: Generator[base.RawBatch, None, None], limit: int) -> Iterator[base.RawBatch]:
    """The first `limit` of `batches`; then (or when the caller stops early) `batches` is
    closed, so the poll behind it ends and gives back what it holds but did not yield.

    >>> def poll():
    ...     try:
    ...         yield from "abc"
    ...     finally:
    ...         print("closed")
    >>> list(at_most(poll(), 2))
    closed
    ['a', 'b']
    """
    with contextlib.closing(batches):
        for count, raw in enumerate(batches, 1):
            yield raw
            if count >= limit:
                return


def message_fingerprint(source_key: str, messages: tuple[str, ...]) -> str:
    """The name of the batch made of `messages` of the source keyed `source_key`.

    >>> message_fingerprint("redis:h/s", ("1-0", "2-0")) == message_fingerprint("redis:h/s",
    ...     ("1-0", "2-0"))
    True
    """
    return hashlib.sha256("\n".join((source_key, *messages)).encode()).hexdigest()


class Batcher:
    """Gathers events into batches of at most `rows` that close `seconds` after their first
    event arrived. `clock` gives monotonic seconds (injected by tests).

    >>> ticks = iter([0.0, 0.5, 3.0])
    >>> batcher = Batcher("redis:h/s", "redis://h/s", rows=10, seconds=2, clock=lambda: next(ticks))
    >>> batcher.add("1-0", {"x": 1}); batcher.due()
    False
    >>> batcher.due()
    True
    >>> raw = batcher.cut(); raw.source_uri, raw.messages, raw.frame["x"].tolist()
    ('redis://h/s#1-0..1-0', ('1-0',), [1])
    """

    def __init__(
        self,
        source_key: str,
        uri: str,
        rows: int,
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source_key = source_key
        self.uri = uri
        self.rows = rows
        self.seconds = seconds
        self.clock = clock
        self._messages: list[str] = []
        self._records: list[Record] = []
        self._opened: float | None = None

    def __len__(self) -> int:
        return len(self._messages)

    def add(self, message: str, record: Record) -> None:
        """Put one readable event into the open batch (opening it if needed)."""
        if self._opened is None:
            self._opened = self.clock()
        self._messages.append(message)
        self._records.append(record)

    def room(self) -> int:
        """How many more events the open batch takes."""
        return self.rows - len(self._messages)

    def wait(self) -> float | None:
        """Seconds until the open batch is due by time (None: no batch is open)."""
        if self._opened is None:
            return None
        return max(0.0, self._opened + self.seconds - self.clock())

    def due(self) -> bool:
        """The open batch is full, or has been open `seconds`."""
        if not self._messages:
            return False
        return self.room() <= 0 or self.wait() == 0.0

    def cut(self) -> base.RawBatch:
        """Close the open batch and return it."""
        messages = tuple(self._messages)
        import pandas as pd

        frame = pd.DataFrame.from_records(self._records)
        self._messages, self._records, self._opened = [], [], None
        return base.RawBatch(
            source_uri=f"{self.uri}#{messages[0]}..{messages[-1]}",
            fingerprint=message_fingerprint(self.source_key, messages),
            frame=frame,
            error=None,
            cursor={"last": messages[-1]},
            messages=messages,
            row_names=row_names.RowNames("event", ids=messages),
        )

    def unreadable(self, message: str, error: str) -> base.RawBatch:
        """The batch of one event that cannot be read (quarantined with `error`)."""
        return base.RawBatch(
            source_uri=f"{self.uri}#{message}",
            fingerprint=message_fingerprint(self.source_key, (message,)),
            frame=None,
            error=f"event {message}: {error}",
            cursor={"last": message},
            messages=(message,),
        )
