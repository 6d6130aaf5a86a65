"""`RestSource` (kind ``http``): records of a REST endpoint, polled with a cursor, page by page.

Built by `base.build_source` from a `core.config.HttpSourceSpec`; polled by the controller.
One listing is the endpoint's answer to one cursor value: ``GET url?since=<cursor>&page=1``,
then page 2, ... (`page.param`) or the next URL (`page.next`: the Link header's rel="next" or
a field of a JSON page), up to a page without records or without a next URL. Each page with
records is one batch. Requests go through httpx with `timeout`; one that fails on the network
(a refused or dropped connection, a timeout, a body cut short) or with 429 / 5xx is tried
again `retries` times, after `backoff`, then twice as long each time (or what Retry-After
asks, up to a minute); then the poll stops with a `TemporaryError` and the next tick continues.

Nothing lost, nothing twice. Every record is named (its `id` field with its cursor value, or
else its content) and a page's batch carries those names as the stream sources' message ids
do (`RawBatch.messages`): the controller stores them with the batch, in one transaction, and
drops from a later page any record already stored (`controller.ingest`, `store._messages`).
The cursor stored with each batch is where the listing stands: the cursor value it runs from,
the page (number or URL) to read next, and the largest cursor value seen so far with the
names of the records that hold it; at the end of a poll the controller stores where it ended
(`settled`), also when its last pages held nothing new. A restart, or a tick after a failed
page, continues at the next page. When a listing ends, the next one runs from the largest
value seen; the endpoint is expected to answer ``field >= cursor`` (so records sharing the
boundary value are not lost), and the records at the boundary that were read before are
dropped by their names, kept in the cursor for that (so this holds however long the source is
idle). Without a `cursor` every poll
reads the whole listing and only the stored names keep records from being recorded again;
those are pruned after a week and a thousand newer batches (`store._messages`), so leave the
cursor out only for an endpoint that forgets what it served.

What paging cannot give: page numbers over a listing that changes while it is read can shift
records between pages. A record updated meanwhile comes again at its new cursor value (a new
version, recorded once more, as it should be); a record deleted meanwhile can shift another
past a page boundary, and only a next-URL (keyset) pagination is immune to that.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import parse_qsl, urljoin, urlsplit

from driftloop.core import config, errors, secrecy
from driftloop.core.types import JSON
from driftloop.data import row_names
from driftloop.data.sources import base

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pandas: imported when a page is read, not when the source is registered
    import pandas as pd

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_WAIT = 60.0
"""Longest wait between two tries, also when Retry-After asks for more."""


class RestSource(base.Source):
    """Records of `url`, read with `cursor` ``(param, field)`` and `page` pagination.

    >>> source = RestSource("https://api.example.org/v1/rows?region=north", cursor=("since",
    ...     "updated_at"), page_param="page", headers={"Authorization": "Bearer x"})
    >>> source.key
    'http:https://api.example.org/v1/rows?region=north'
    >>> "Bearer" in repr(source)
    False
    """

    kind: ClassVar[str] = "http"

    def __init__(
        self,
        url: str,
        format: Literal["json", "csv"] = "json",
        records: str | None = None,
        cursor: tuple[str, str] | None = None,
        page_param: str | None = None,
        page_start: int = 1,
        page_next: str | None = None,
        id: str | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 1.0,
        max_pages: int = 100,
    ) -> None:
        if format not in ("json", "csv"):
            raise errors.ConfigError(f"`format` of RestSource must be json or csv; got {format!r}")
        if page_param is not None and page_next is not None:
            raise errors.ConfigError("RestSource pages by `page_param` or `page_next`, not both")
        if retries < 0 or backoff < 0 or timeout <= 0 or max_pages < 1:
            raise errors.ConfigError(
                "RestSource needs retries >= 0, backoff >= 0, timeout > 0 and max_pages >= 1; "
                f"got {retries}, {backoff}, {timeout}, {max_pages}")
        self.url = url
        self.format = format
        self.records = records
        self.cursor = cursor
        self.page_param = page_param
        self.page_start = page_start
        self.page_next = page_next
        self.id = id
        self.params = dict(params or {})
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_pages = max_pages
        self._settled: JSON | None = None  # the last poll's final cursor, for `settled`

    @classmethod
    def from_spec(cls, spec: config.HttpSourceSpec, base_dir: Path) -> RestSource:
        del base_dir
        return cls(
            spec.url,
            format=spec.format,
            records=spec.records,
            cursor=(spec.cursor.param, spec.cursor.field) if spec.cursor else None,
            page_param=spec.page.param if spec.page else None,
            page_start=spec.page.start if spec.page else 1,
            page_next=spec.page.next if spec.page else None,
            id=spec.id,
            params=spec.params,
            headers={name: secrecy.expand(value, f"source.headers.{name}")
                     for name, value in spec.headers.items()},
            timeout=spec.timeout.total_seconds(),
            retries=spec.retries,
            backoff=spec.backoff.total_seconds(),
            max_pages=spec.max_pages,
        )

    @property
    def key(self) -> str:
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")  # never user:password
        return "http:" + secrecy.redact_url(parts._replace(netloc=netloc).geturl())

    def __repr__(self) -> str:  # header values are credentials: only their names are shown
        shown = super().__repr__().replace(f"headers={self.headers!r}",
                                           f"headers={sorted(self.headers)!r}", 1)
        return shown.replace(repr(self.url), repr(self.key[len("http:"):]), 1)

    def poll(self, cursor: JSON | None) -> Iterator[base.RawBatch]:
        """Yield the pages with records not read before, up to `max_pages`; see the module
        docstring for the cursor ``{"since", "skip", "next", "high", "at"}``."""
        import httpx

        from driftloop.data import bodies

        listing = _Listing.load(cursor)
        fresh = listing.next is None  # a listing started by this poll ends the poll
        self._settled = None
        with httpx.Client(headers=self.headers, timeout=self.timeout,
                          follow_redirects=True) as client:
            for _ in range(self.max_pages):
                url, params = self._request(listing)
                response = self._get(client, url, params)
                frame, error = bodies.read_body(response.content, self.format, self.records)
                if frame is None:
                    raise errors.PermanentError(
                        f"cannot read {_shown(response.url)}: {error}; check source.format and "
                        "source.records", source=self.key)
                following = self._following(listing, response, frame)
                batch = self._batch(listing, frame, str(response.url), following)
                self._settled = listing.dump()
                if batch is not None:
                    yield batch
                if listing.next is None and not fresh:  # the resumed listing ended
                    fresh = True
                elif listing.next is None:
                    return

    def settled(self) -> JSON | None:
        """Where the last poll left the listing, also past pages that held nothing new."""
        return self._settled

    def _request(self, listing: _Listing) -> tuple[str, dict[str, str]]:
        """The URL and query parameters of the listing's next page."""
        if isinstance(listing.next, str):  # a next URL carries its own parameters
            return listing.next, {}
        # httpx replaces a URL's query with `params`: the URL's own parameters go in them
        params = {**dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True)),
                  **self.params}
        if self.cursor is not None and listing.since is not None:
            params[self.cursor[0]] = _text(listing.since)
        if self.page_param is not None:
            page = self.page_start if listing.next is None else int(listing.next)
            params[self.page_param] = str(page)
        return self.url, params

    def _following(self, listing: _Listing, response: Any, frame: pd.DataFrame) -> Any:
        """Where the listing goes on after this page; None: it has ended."""
        if self.page_param is not None:
            if frame.empty:
                return None
            current = self.page_start if listing.next is None else int(listing.next)
            return current + 1
        if self.page_next == "link":
            target = response.links.get("next", {}).get("url")
        elif self.page_next is not None:
            found: Any = json.loads(response.content)
            for part in self.page_next.split("."):
                found = found.get(part) if isinstance(found, dict) else None
            target = found if isinstance(found, str) and found else None
        else:
            target = None
        return None if target is None else urljoin(str(response.url), target)

    def _batch(
        self, listing: _Listing, frame: pd.DataFrame, url: str, following: Any
    ) -> base.RawBatch | None:
        """This page's records not read before as a batch (None if there are none); moves
        `listing` past the page either way."""
        values = self._values(frame, url)
        names = self._names(frame, values)
        keep, seen = [], set()
        for position, (name, value) in enumerate(zip(names, values, strict=True)):
            if name in seen or (name in listing.skip and _same(value, listing.since)):
                continue
            seen.add(name)
            keep.append(position)
            listing.saw(value, name)
        listing.advance(following)
        if not keep:
            return None
        messages = tuple(names[i] for i in keep)
        digest = hashlib.sha256("\n".join((self.key, *messages)).encode()).hexdigest()
        labels = [str(frame[self.id].iloc[i]) if self.id else str(i + 1) for i in keep]
        return base.RawBatch(
            source_uri=_shown(url),
            fingerprint=digest,
            frame=frame.iloc[keep].reset_index(drop=True),
            error=None,
            cursor=listing.dump(),
            messages=messages,
            row_names=row_names.RowNames("record", ids=tuple(labels)),
        )

    def _values(self, frame: pd.DataFrame, url: str) -> list[Any]:
        """Each record's cursor value (None without a cursor)."""
        if self.cursor is None or frame.empty:
            return [None] * len(frame)
        field = self.cursor[1]
        if field not in frame.columns:
            raise errors.PermanentError(
                f"the records of {_shown(url)} have no field {field!r}; check source.cursor.field "
                f"(they have {', '.join(map(str, frame.columns[:10]))})", source=self.key)
        return [_plain(value) for value in frame[field].tolist()]

    def _names(self, frame: pd.DataFrame, values: list[Any]) -> list[str]:
        """Each record's name: sha256 of its id and cursor value, or of its whole content."""
        if frame.empty:
            return []
        if self.id is not None and self.id not in frame.columns:
            raise errors.PermanentError(
                f"the records have no field {self.id!r}; check source.id", source=self.key)
        if self.id is not None:
            keys = [json.dumps([_plain(i), v], default=str)
                    for i, v in zip(frame[self.id].tolist(), values, strict=True)]
        else:
            keys = frame.to_json(orient="records", lines=True, date_format="iso").splitlines()
        return [hashlib.sha256(key.encode()).hexdigest() for key in keys]

    def _get(self, client: Any, url: str, params: dict[str, str]) -> Any:
        """GET with retries; the response (2xx), or a `TemporaryError` / `PermanentError`."""
        import httpx

        for attempt in range(self.retries + 1):
            wait = min(self.backoff * 2**attempt, MAX_WAIT)
            try:
                response = client.get(url, params=params or None)  # {} would drop url's query
                response.read()  # a body cut short fails here, and is tried again
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if response.status_code < 300:
                    return response
                reason = f"HTTP {response.status_code}"
                if response.status_code not in RETRY_STATUS:
                    excerpt = response.text[:200].strip()
                    raise errors.PermanentError(
                        f"GET {_shown(response.url)} answered {reason}: {excerpt!r}; check "
                        "source.url, source.params and source.headers", source=self.key)
                wait = _retry_after(response.headers.get("retry-after"), wait)
            if attempt < self.retries:
                log.warning("GET %s: %s; again in %.1f s", _shown(url), reason, wait)
                time.sleep(wait)
        raise errors.TemporaryError(
            f"GET {_shown(url)} failed {self.retries + 1} times (last: {reason}); the next tick "
            "goes on from this page", delay=30.0, source=self.key)


class _Listing:
    """Where the current listing stands; loaded from and dumped to the stored cursor."""

    def __init__(self, since: Any, skip: set[str], next_: Any, high: Any, at: set[str]) -> None:
        self.since = since  # the cursor value the listing runs from
        self.skip = skip  # names of records at `since` recorded by earlier listings
        self.next = next_  # page number or URL to read next; None: the first page
        self.high = high  # the largest cursor value seen in this listing
        self.at = at  # names of the records seen holding `high`

    @classmethod
    def load(cls, cursor: JSON | None) -> _Listing:
        state = cursor or {}
        return cls(state.get("since"), set(state.get("skip", ())), state.get("next"),
                   state.get("high", state.get("since")), set(state.get("at", ())))

    def dump(self) -> JSON:
        return {"since": self.since, "skip": sorted(self.skip), "next": self.next,
                "high": self.high, "at": sorted(self.at)}

    def saw(self, value: Any, name: str) -> None:
        if value is None:
            return
        if self.high is None or _order(value) > _order(self.high):
            self.high, self.at = value, {name}
        elif _same(value, self.high):
            self.at.add(name)

    def advance(self, following: Any) -> None:
        """Move past the page; when the listing ended, the next runs from the largest value."""
        self.next = following
        if following is not None:
            return
        if _same(self.high, self.since):
            self.skip |= self.at
        else:
            self.since, self.skip = self.high, set(self.at)
        self.at = set(self.skip)


def _order(value: Any) -> tuple[int, Any]:
    """A sort key for cursor values: numbers, then times (ISO 8601 text), then other text.

    >>> _order("2024-05-01T12:00:00+02:00") == _order("2024-05-01T10:00:00Z")
    True
    """
    if isinstance(value, bool | int | float):
        return (0, float(value))
    text = str(value)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return (2, text)
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return (1, when)


def _same(a: Any, b: Any) -> bool:
    return a is not None and b is not None and _order(a) == _order(b)


def _plain(value: Any) -> Any:
    """A frame value as plain JSON (numpy scalars unwrapped, NaN as None)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, datetime):  # pandas' Timestamp too
        return value.isoformat()
    return value


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


def _retry_after(header: str | None, default: float) -> float:
    """Seconds a Retry-After header asks for (a number), at most `MAX_WAIT`; else `default`."""
    try:
        return min(max(float(header), 0.0), MAX_WAIT) if header else default
    except ValueError:
        return default


def _shown(url: object) -> str:
    """A page's URL as records and messages show it: no password, no secret query value
    (``?api_key=***``; `core.secrecy`)."""
    return secrecy.redact_url(str(url))
