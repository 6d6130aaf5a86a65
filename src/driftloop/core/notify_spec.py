"""The `notify:` section of a pipeline spec: webhooks told about what the loop did.

Each hook names a URL, the events it wants and the shared secret its requests are signed with.
A secret is written only as a reference to an environment variable (``${NAME}``), read when a
notification is sent: the spec is stored in the metadata database, a secret must not be. A URL
may hold such references too (a Slack incoming-webhook URL is itself a secret).

    notify:
      - url: ${SLACK_WEBHOOK_URL}
        events: [promoted, rolled_back, quarantined, drift]
        secret: ${DRIFTLOOP_WEBHOOK_SECRET}
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Annotated, Literal

import pydantic
from pydantic import Field

from driftloop.core import secrecy
from driftloop.core.spec_base import Duration
from driftloop.core.spec_base import Spec as _Spec

Event = Literal[
    "retrained", "promoted", "rolled_back", "quarantined", "drift", "fairness", "waiting",
]
"""What a hook can be told: a model version registered (`retrained`), the champion moved to a
new version (`promoted`), a version rolled back, a batch quarantined, a retraining decision
that saw data or concept drift, a fairness problem (a version whose gate found one, or the
fairness trigger firing on live data), a promotion waiting for its deployment window or an
earlier region's rollout (`waiting`)."""

EVENTS: tuple[Event, ...] = (
    "retrained", "promoted", "rolled_back", "quarantined", "drift", "fairness", "waiting",
)

_REFERENCE = secrecy.VARIABLE


class HookSpec(_Spec):
    """One webhook: where, which events, the signing secret, and how often to retry.

    A failed delivery is retried after `backoff`, doubling each time up to `max_backoff`,
    `attempts` times in all; then it is kept as ``dead`` (shown by `driftloop notifications`).

    >>> HookSpec(url="http://127.0.0.1:9/hook", secret="${HOOK_SECRET}").events[:2]
    ['retrained', 'promoted']
    >>> HookSpec(url="http://127.0.0.1:9/hook", secret="plain")
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for HookSpec
    secret
      Value error, write the secret as a reference to an environment variable, e.g. ...
    """

    url: str = Field(description="Where to POST; may hold ${ENV} references")
    events: list[Event] = Field(default=list(EVENTS), min_length=1)
    secret: str | None = Field(
        default=None, description="${ENV} reference to the HMAC-SHA256 signing secret"
    )
    attempts: int = Field(default=12, ge=1, description="Deliveries tried before giving up")
    backoff: Duration = Field(default=timedelta(seconds=30), description="First retry delay")
    max_backoff: Duration = Field(default=timedelta(hours=1), description="Longest retry delay")
    timeout: Duration = Field(default=timedelta(seconds=10), description="Per request")

    @pydantic.field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        literal = _REFERENCE.sub("x", url)
        if not re.match(r"^(\$\{|https?://)", url) or " " in literal:
            raise ValueError(
                f"{url!r} is not an http(s) URL; write e.g. https://hooks.example/T0/B0 or "
                "${SLACK_WEBHOOK_URL}"
            )
        return url

    @pydantic.field_validator("secret")
    @classmethod
    def _secret(cls, secret: str | None) -> str | None:
        if secret is not None and not _REFERENCE.fullmatch(secret):
            raise ValueError(
                "write the secret as a reference to an environment variable, e.g. "
                "${DRIFTLOOP_WEBHOOK_SECRET}: the spec is stored in the metadata database, "
                "where a secret must not be"
            )
        return secret

    @property
    def key(self) -> str:
        """The hook's name in the outbox: a hash of its URL as written (references unexpanded)."""
        return hashlib.sha256(self.url.encode()).hexdigest()[:16]

    def delay(self, attempt: int) -> timedelta:
        """How long to wait after failed attempt number `attempt` (1, 2, ...).

        >>> [HookSpec(url="http://127.0.0.1/h").delay(n).total_seconds() for n in (1, 2, 8, 9)]
        [30.0, 60.0, 3600.0, 3600.0]
        """
        delay: timedelta = min(self.backoff * 2 ** (attempt - 1), self.max_backoff)
        return delay


Hooks = Annotated[list[HookSpec], Field(description="Webhooks told about what the loop did")]
